package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestExampleConfigIsTheDefaults(t *testing.T) {
	cfg, err := Load("../../proactive.example.yaml", envMap(nil))
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if want := Default(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("proactive.example.yaml differs from Default():\nexample:\n%s\ndefaults:\n%s", cfg.Printable(), want.Printable())
	}
}

// Every leaf of Config must be settable from the environment, so that the
// contract's PROACTIVE_* names (and all others) work.
func TestEveryKeyFromEnvironment(t *testing.T) {
	contract := []string{
		"PROACTIVE_MQTT_URL", "PROACTIVE_MQTT_LISTEN", "PROACTIVE_INFLUX_URL", "PROACTIVE_INFLUX_TOKEN",
		"PROACTIVE_INFLUX_ORG", "PROACTIVE_INFLUX_BUCKET", "PROACTIVE_DB", "PROACTIVE_HTTP_ADDR",
		"PROACTIVE_PUBLIC_URL", "PROACTIVE_RULES", "PROACTIVE_TWILIO_ACCOUNT_SID", "PROACTIVE_TWILIO_AUTH_TOKEN",
		"PROACTIVE_TWILIO_FROM", "PROACTIVE_TWILIO_MESSAGING_SERVICE_SID", "PROACTIVE_TWILIO_API_URL",
	}
	var names []string
	cfg := Default()
	walkLeaves(reflect.ValueOf(&cfg).Elem(), "", func(_, env string, _ reflect.Value) { names = append(names, env) })
	for _, c := range contract {
		found := false
		for _, n := range names {
			found = found || n == c
		}
		if !found {
			t.Errorf("contract variable %s is not a configuration key", c)
		}
	}

	env := map[string]string{
		"PROACTIVE_MQTT_URL":                     "mqtts://broker.example:8883",
		"PROACTIVE_INFLUX_URL":                   "https://influx.example",
		"PROACTIVE_INFLUX_TOKEN":                 "tok",
		"PROACTIVE_INFLUX_BATCH_SIZE":            "123",
		"PROACTIVE_INFLUX_FLUSH_INTERVAL":        "250ms",
		"PROACTIVE_INGEST_REQUIRE_REGISTRATION":  "true",
		"PROACTIVE_RULES":                        "a/*.yaml, b.yaml",
		"PROACTIVE_DB":                           "postgres://u:p@db/proactive",
		"PROACTIVE_TWILIO_ACCOUNT_SID":           "AC1",
		"PROACTIVE_TWILIO_AUTH_TOKEN":            "secret",
		"PROACTIVE_TWILIO_MESSAGING_SERVICE_SID": "MG1",
		"PROACTIVE_NOTIFY_GROUP_WAIT":            "0s",
		"PROACTIVE_NOTIFY_INCIDENT_MIN_SHARE":    "0.35",
		"PROACTIVE_PUBLIC_URL":                   "https://proactive.example",
	}
	got, err := Load("", envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case got.MQTT.URL != "mqtts://broker.example:8883",
		got.Influx.URL != "https://influx.example",
		got.Influx.Token.Reveal() != "tok",
		got.Influx.BatchSize != 123,
		time.Duration(got.Influx.FlushInterval) != 250*time.Millisecond,
		!got.Ingest.RequireRegistration,
		!reflect.DeepEqual(got.Rules.Paths, []string{"a/*.yaml", "b.yaml"}),
		got.DB.Reveal() != "postgres://u:p@db/proactive",
		got.Notify.GroupWait != 0, got.Notify.Incident.MinShare != 0.35:
		t.Errorf("environment not applied: %+v", got)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte("influx:\n  batch_size: 0\n  flush_interval: 1s\nmqtt:\n  url: ftp://x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, envMap(map[string]string{"PROACTIVE_LOG_LEVEL": "loud", "PROACTIVE_INFLUX_QUEUE_SIZE": "many",
		"PROACTIVE_NOTIFY_GROUP_WAIT": "-1s", "PROACTIVE_NOTIFY_INCIDENT_MIN_DEVICES": "1", "PROACTIVE_NOTIFY_INCIDENT_MIN_SHARE": "1.5",
		"PROACTIVE_NOTIFY_INCIDENT_WINDOW": "0s", "PROACTIVE_NOTIFY_BRAND": "A brand name far too long for an SMS"}))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, key := range []string{"influx.batch_size", "mqtt.url", "log.level", "influx.queue_size (PROACTIVE_INFLUX_QUEUE_SIZE)",
		"notify.group_wait", "notify.incident.min_devices", "notify.incident.min_share", "notify.incident.window", "notify.brand"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}

	if err := os.WriteFile(path, []byte("influx:\n  batchsize: 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, envMap(nil)); err == nil || !strings.Contains(err.Error(), "batchsize") {
		t.Errorf("unknown key not reported: %v", err)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	env := map[string]string{
		"PROACTIVE_INFLUX_TOKEN":       "influx-secret-1",
		"PROACTIVE_MQTT_PASSWORD":      "mqtt-secret-2",
		"PROACTIVE_DB":                 "postgres://u:db-secret-3@h/x",
		"PROACTIVE_TWILIO_ACCOUNT_SID": "AC1",
		"PROACTIVE_TWILIO_AUTH_TOKEN":  "twilio-secret-4",
		"PROACTIVE_TWILIO_FROM":        "+15550001111",
		"PROACTIVE_PUBLIC_URL":         "https://proactive.example",
	}
	cfg, err := Load("", envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	asJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg, "token", cfg.Influx.Token)
	for _, out := range []string{cfg.Printable(), fmt.Sprintf("%v %+v", cfg, cfg), string(asJSON), logged.String()} {
		for _, s := range []string{"influx-secret-1", "mqtt-secret-2", "db-secret-3", "twilio-secret-4"} {
			if strings.Contains(out, s) {
				t.Errorf("secret %q printed:\n%s", s, out)
			}
		}
	}
}

func TestBroker(t *testing.T) {
	for _, tc := range []struct{ url, listen, want string }{
		{"", ":1883", "mqtt://127.0.0.1:1883"},
		{"", "0.0.0.0:11883", "mqtt://127.0.0.1:11883"},
		{"", "[::]:1884", "mqtt://127.0.0.1:1884"},
		{"", "10.0.0.5:1883", "mqtt://10.0.0.5:1883"},
		{"mqtts://broker.example:8883", ":1883", "mqtts://broker.example:8883"},
	} {
		var cfg Config
		cfg.MQTT.URL, cfg.MQTT.Listen = tc.url, tc.listen
		if got := cfg.Broker(); got != tc.want {
			t.Errorf("Broker of url %q, listen %q = %q, want %q", tc.url, tc.listen, got, tc.want)
		}
	}
}

func TestLocalURL(t *testing.T) {
	for addr, want := range map[string]string{
		":8080": "http://127.0.0.1:8080", "0.0.0.0:9": "http://127.0.0.1:9", "[::]:80": "http://127.0.0.1:80",
		"10.0.0.5:8080": "http://10.0.0.5:8080", "[::1]:8080": "http://[::1]:8080",
	} {
		if got, err := LocalURL(addr); err != nil || got != want {
			t.Errorf("LocalURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"mqtts://ingest:hunter2@broker:8883": "mqtts://ingest:xxxxx@broker:8883",
		"http://127.0.0.1:8086":              "http://127.0.0.1:8086",
		"http://a b:%zz@x":                   "[unparseable url]",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// The contact policy's keys: 0 turns a cooldown, the alert age and trust
// off; out-of-range values are refused, all at once.
func TestContactPolicyKeys(t *testing.T) {
	off, err := Load("", envMap(map[string]string{"PROACTIVE_NOTIFY_CONTACT_COOLDOWN": "0", "PROACTIVE_NOTIFY_MAX_ALERT_AGE": "0",
		"PROACTIVE_NOTIFY_MIN_PRECISION": "0", "PROACTIVE_NOTIFY_MIN_OUTCOMES": "8"}))
	if err != nil {
		t.Fatalf("0 refused: %v", err)
	}
	if off.Notify.ContactCooldown != 0 || off.Notify.MaxAlertAge != 0 || off.Notify.MinPrecision != 0 || off.Notify.MinOutcomes != 8 {
		t.Errorf("notify = %+v", off.Notify)
	}
	if d := Default().Notify; time.Duration(d.MaxAlertAge) != time.Hour || d.MinOutcomes != 5 || d.MinPrecision != 0.6 {
		t.Errorf("defaults %+v, want 1h, 5, 0.6", d)
	}
	_, err = Load("", envMap(map[string]string{"PROACTIVE_NOTIFY_CONTACT_COOLDOWN": "-1h", "PROACTIVE_NOTIFY_MAX_ALERT_AGE": "-1m",
		"PROACTIVE_NOTIFY_MIN_PRECISION": "1.5", "PROACTIVE_NOTIFY_MIN_OUTCOMES": "0"}))
	for _, key := range []string{"notify.contact_cooldown", "notify.max_alert_age", "notify.min_precision", "notify.min_outcomes"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	if _, err := Load("", envMap(map[string]string{"PROACTIVE_NOTIFY_MIN_PRECISION": "most"})); err == nil || !strings.Contains(err.Error(), "not a number") {
		t.Errorf("a precision that is no number: %v", err)
	}
}

func TestLimits(t *testing.T) {
	cfg, err := Load("", envMap(map[string]string{
		"PROACTIVE_MQTT_MAX_CONNECTIONS": "500", "PROACTIVE_MQTT_MAX_PACKET_SIZE": "2048", "PROACTIVE_MQTT_CONNECT_TIMEOUT": "3s",
		"PROACTIVE_INGEST_MAX_METRICS_PER_DEVICE": "50", "PROACTIVE_INGEST_MAX_RATE_PER_DEVICE": "0", "PROACTIVE_INGEST_MAX_CLOCK_SKEW": "1d",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.MaxConnections != 500 || cfg.MQTT.MaxPacketSize != 2048 || time.Duration(cfg.MQTT.ConnectTimeout) != 3*time.Second ||
		cfg.Ingest.MaxMetricsPerDevice != 50 || cfg.Ingest.MaxRatePerDevice != 0 || time.Duration(cfg.Ingest.MaxClockSkew) != 24*time.Hour {
		t.Errorf("limits from the environment not applied: %+v %+v", cfg.MQTT, cfg.Ingest)
	}
	_, err = Load("", envMap(map[string]string{
		"PROACTIVE_MQTT_MAX_CONNECTIONS": "0", "PROACTIVE_MQTT_MAX_PACKET_SIZE": "300000000", "PROACTIVE_MQTT_CONNECT_TIMEOUT": "0s",
		"PROACTIVE_INGEST_MAX_METRICS_PER_DEVICE": "0", "PROACTIVE_INGEST_MAX_RATE_PER_DEVICE": "-1", "PROACTIVE_INGEST_MAX_CLOCK_SKEW": "0s",
	}))
	for _, key := range []string{"mqtt.max_connections", "mqtt.max_packet_size", "mqtt.connect_timeout",
		"ingest.max_metrics_per_device", "ingest.max_rate_per_device", "ingest.max_clock_skew"} {
		if err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
}

// JSON logs carry durations in seconds, not slog's nanoseconds; text logs
// keep Go's notation for people.
func TestLoggerDurations(t *testing.T) {
	for format, want := range map[string]string{"json": `"wait":1.5`, "text": "wait=1.5s"} {
		c := Default()
		c.Log.Format = format
		var b strings.Builder
		c.Logger(&b).Info("x", slog.Group("g", "wait", 1500*time.Millisecond))
		if !strings.Contains(b.String(), want) {
			t.Errorf("%s log %q, want %s", format, b.String(), want)
		}
	}
}

// notify.webhook_retention: 30 days by default, 0 keeps everything, a
// negative one is refused.
func TestWebhookRetentionKey(t *testing.T) {
	if d := time.Duration(Default().Notify.WebhookRetention); d != 30*24*time.Hour {
		t.Errorf("default retention %s, want 720h", d)
	}
	for v, want := range map[string]time.Duration{"0": 0, "7d": 7 * 24 * time.Hour, "2160h": 90 * 24 * time.Hour} {
		cfg, err := Load("", envMap(map[string]string{"PROACTIVE_NOTIFY_WEBHOOK_RETENTION": v}))
		if err != nil || time.Duration(cfg.Notify.WebhookRetention) != want {
			t.Errorf("retention %q: %s, %v; want %s", v, time.Duration(cfg.Notify.WebhookRetention), err, want)
		}
	}
	_, err := Load("", envMap(map[string]string{"PROACTIVE_NOTIFY_WEBHOOK_RETENTION": "-1h"}))
	if err == nil || !strings.Contains(err.Error(), "notify.webhook_retention") {
		t.Errorf("a negative retention: %v", err)
	}
}
