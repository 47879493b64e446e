// Package config is the configuration of the proactive binary: its YAML
// file, the PROACTIVE_* environment variables that override every key, the
// defaults, and the validation that reports every problem at once.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/proactivehq/proactive"
)

// Config is the whole configuration. Every leaf is settable in the YAML file
// (by its yaml path) and by the environment variable PROACTIVE_<PATH> (dots
// become underscores, upper case) or the name in its env tag.
type Config struct {
	Log struct {
		Level  string `yaml:"level"`  // debug | info | warn | error
		Format string `yaml:"format"` // text | json | auto (text on a terminal)
	} `yaml:"log"`
	MQTT struct {
		URL          string `yaml:"url"`
		Listen       string `yaml:"listen"`
		ClientID     string `yaml:"client_id"`
		Username     string `yaml:"username"`
		Password     Secret `yaml:"password"`
		TopicPrefix  string `yaml:"topic_prefix"`
		TLSCAFile    string `yaml:"tls_ca_file"`
		DeviceTopics bool   `yaml:"device_topics"`
		// DeviceAuth makes the embedded broker authenticate every device
		// against the registry (username and client id = device id,
		// password = its secret) and hold it to its own topics.
		DeviceAuth bool `yaml:"device_auth"`
		// SharedGroup makes several instances on one external broker split
		// the device messages ($share/<group>/...) instead of each taking
		// all of them.
		SharedGroup string `yaml:"shared_group"`
		// The embedded broker's limits: open connections, the largest
		// packet (refused before it is read), the time to send CONNECT.
		MaxConnections int      `yaml:"max_connections"`
		MaxPacketSize  int      `yaml:"max_packet_size"`
		ConnectTimeout Duration `yaml:"connect_timeout"`
	} `yaml:"mqtt"`
	Influx struct {
		URL           string   `yaml:"url"`
		Token         Secret   `yaml:"token"`
		Org           string   `yaml:"org"`
		Bucket        string   `yaml:"bucket"`
		BatchSize     int      `yaml:"batch_size"`
		FlushInterval Duration `yaml:"flush_interval"`
		QueueSize     int      `yaml:"queue_size"`
	} `yaml:"influx"`
	Ingest struct {
		// Source is where the ingester takes messages from: mqtt (the
		// embedded or external broker) or kafka (the topics below, shared
		// with the other instances through a consumer group).
		Source              string `yaml:"source"`
		RequireRegistration bool   `yaml:"require_registration"`
		// Per-device limits: distinct metric names, messages per second
		// (0 = none; a burst of ten seconds' worth), and how far ahead
		// of its receipt a timestamp may be.
		MaxMetricsPerDevice int      `yaml:"max_metrics_per_device"`
		MaxRatePerDevice    int      `yaml:"max_rate_per_device"`
		MaxClockSkew        Duration `yaml:"max_clock_skew"`
	} `yaml:"ingest"`
	// Kafka is the log that instances share past one machine
	// (docs/scaling.md): records keyed by device id, the MQTT payload as
	// value, the MQTT topic in header "topic".
	Kafka struct {
		Brokers     []string `yaml:"brokers"`
		Topic       string   `yaml:"topic"`
		EventsTopic string   `yaml:"events_topic"`
		Group       string   `yaml:"group"`
		// Forward sends the MQTT intake to the topics instead of the
		// ingester, for brokers without a Kafka bridge.
		Forward bool `yaml:"forward"`
		// SnapshotDir, in storage the instances share, holds a rule
		// snapshot per partition for its next owner; empty: the next
		// owner rebuilds from InfluxDB.
		SnapshotDir string `yaml:"snapshot_dir"`
		// SessionTimeout is how long the group waits for a silent
		// instance before its partitions move: the failover time.
		SessionTimeout Duration `yaml:"session_timeout"`
	} `yaml:"kafka"`
	DB   DSN `yaml:"db"`
	HTTP struct {
		Addr string `yaml:"addr"`
		// InsecureCookies lets the web page's session cookie go over plain
		// HTTP to a host other than localhost (browsers keep Secure cookies
		// on localhost); behind TLS leave it false.
		InsecureCookies bool `yaml:"insecure_cookies"`
		// Timeouts of a request's read (body included), of its answer
		// (CPU profiles and traces set their own) and of an idle
		// kept-alive connection.
		ReadTimeout  Duration `yaml:"read_timeout"`
		WriteTimeout Duration `yaml:"write_timeout"`
		IdleTimeout  Duration `yaml:"idle_timeout"`
		// TrustedProxies (CIDRs) are the reverse proxies whose
		// X-Forwarded-For names the client, for the failed-auth limits.
		TrustedProxies []string `yaml:"trusted_proxies"`
		// MetricsToken, when set, is the bearer token /metrics requires.
		MetricsToken Secret `yaml:"metrics_token"`
	} `yaml:"http"`
	PublicURL string `yaml:"public_url"`
	Rules     struct {
		// Enabled false runs no rules on this instance (ingest, HTTP and
		// notify only): with several instances on a broker without
		// per-device affinity, one instance runs the rules.
		Enabled        bool     `yaml:"enabled"`
		Paths          []string `yaml:"paths" env:"PROACTIVE_RULES"`
		RebuildTimeout Duration `yaml:"rebuild_timeout"`
		// SnapshotPath is where the rule windows and alert states are
		// checkpointed, so that a restart replays only the gap since;
		// empty disables snapshots.
		SnapshotPath     string   `yaml:"snapshot_path"`
		SnapshotInterval Duration `yaml:"snapshot_interval"`
		// TickInterval is how often since_seen() rules are evaluated
		// without new data.
		TickInterval Duration `yaml:"tick_interval"`
	} `yaml:"rules"`
	Twilio struct {
		AccountSID          string `yaml:"account_sid"`
		AuthToken           Secret `yaml:"auth_token"`
		From                string `yaml:"from"`
		MessagingServiceSID string `yaml:"messaging_service_sid"`
		APIURL              string `yaml:"api_url"`
		// AdvancedOptOut: Twilio answers STOP, START and HELP itself; the
		// platform only records them.
		AdvancedOptOut bool `yaml:"advanced_opt_out"`
		// WhatsAppFrom is the WhatsApp sender's number (E.164); with it,
		// customers who prefer WhatsApp get their messages there (without
		// it, theirs fail and a person follows up).
		WhatsAppFrom string `yaml:"whatsapp_from"`
		// WhatsAppTemplates maps a message kind (offer, offer_reminder,
		// visit_reminder, survey, dispatch, ...) to the Content SID of its
		// approved WhatsApp template: the messages the business starts
		// need one.
		WhatsAppTemplates map[string]string `yaml:"whatsapp_templates"`
	} `yaml:"twilio"`
	// SMTP sends the emails of customers who prefer email.
	SMTP struct {
		// URL is smtp://user:password@host:port (STARTTLS) or smtps://...
		// (TLS); a secret, since it holds the password.
		URL  Secret `yaml:"url"`
		From string `yaml:"from"`
	} `yaml:"smtp"`
	// Notify tunes the outreach loop (package notify).
	Notify struct {
		ContactCooldown Duration `yaml:"contact_cooldown"`
		// The contact policy (product.md, "Who is contacted"): an alert
		// older than MaxAlertAge texts nobody; a rule with at least
		// MinOutcomes outcomes and a precision under MinPrecision has its
		// tickets held to review. 0 turns MaxAlertAge, MinPrecision and
		// ContactCooldown off.
		MaxAlertAge          Duration `yaml:"max_alert_age"`
		MinOutcomes          int      `yaml:"min_outcomes"`
		MinPrecision         float64  `yaml:"min_precision"`
		OfferExpiry          Duration `yaml:"offer_expiry"`
		OfferReminder        Duration `yaml:"offer_reminder"`
		SlotLength           Duration `yaml:"slot_length"`
		TravelBuffer         Duration `yaml:"travel_buffer"`
		SlotLead             Duration `yaml:"slot_lead"`
		SlotHorizon          Duration `yaml:"slot_horizon"`
		SlotCount            int      `yaml:"slot_count"`
		SlotHold             Duration `yaml:"slot_hold"`
		DailyCap             int      `yaml:"daily_cap"`
		CriticalInQuietHours bool     `yaml:"critical_in_quiet_hours"`
		VisitReminderAt      string   `yaml:"visit_reminder_at"`
		SurveyTimeout        Duration `yaml:"survey_timeout"`
		NPSInterval          Duration `yaml:"nps_interval"` // least time between two NPS questions to a customer; 0: never
		CES                  bool     `yaml:"ces"`          // the effort question after the NPS answer
		HelpContact          string   `yaml:"help_contact"`
		Brand                string   `yaml:"brand"` // opens the offer and the HELP answer
		MaxAttempts          int      `yaml:"max_attempts"`
		SendTimeout          Duration `yaml:"send_timeout"`
		// Webhooks: a delivery gets WebhookAttempts attempts of at most
		// WebhookTimeout each, WebhookBackoff after the first failure,
		// doubled after each next one up to an hour; then it is dead.
		WebhookAttempts int      `yaml:"webhook_attempts"`
		WebhookTimeout  Duration `yaml:"webhook_timeout"`
		WebhookBackoff  Duration `yaml:"webhook_backoff"`
		// WebhookRetention is how long delivered and dead deliveries are
		// kept in the outbox; 0 keeps them all.
		WebhookRetention Duration `yaml:"webhook_retention"`
		// GroupWait is how long an offer waits after its alert so that an
		// incident can form first; 0s sends it at once.
		GroupWait Duration `yaml:"group_wait"`
		// Incident: at least MinDevices devices, and at least MinShare of
		// the registered devices a rule applies to, firing it within
		// Window are one incident, whose customers are not texted.
		Incident struct {
			MinDevices int      `yaml:"min_devices"`
			MinShare   float64  `yaml:"min_share"`
			Window     Duration `yaml:"window"`
		} `yaml:"incident"`
	} `yaml:"notify"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Default is what a fresh machine runs with: embedded broker, local
// InfluxDB 1.8 through its v2-compatible API, SQLite.
func Default() Config {
	var c Config
	c.Log.Level = "info"
	c.Log.Format = "auto"
	c.MQTT.Listen = ":1883"
	c.MQTT.ClientID = "proactive-ingest"
	c.MQTT.TopicPrefix = "devices"
	c.MQTT.MaxConnections = 100000
	c.MQTT.MaxPacketSize = 64<<10 + 1024 // a 64 KiB payload and its headers
	c.MQTT.ConnectTimeout = Duration(10 * time.Second)
	c.Ingest.Source = "mqtt"
	c.Ingest.MaxMetricsPerDevice = 200
	c.Kafka.Topic = "proactive.telemetry"
	c.Kafka.EventsTopic = "proactive.events"
	c.Kafka.Group = "proactive"
	c.Kafka.SnapshotDir = "data/partitions"
	c.Kafka.SessionTimeout = Duration(45 * time.Second)
	c.Ingest.MaxRatePerDevice = 10
	c.Ingest.MaxClockSkew = Duration(7 * 24 * time.Hour)
	c.Influx.URL = "http://127.0.0.1:8086"
	c.Influx.Bucket = "telemetry/autogen"
	c.Influx.BatchSize = 5000
	c.Influx.FlushInterval = Duration(time.Second)
	c.Influx.QueueSize = 10000
	c.DB = "data/proactive.db"
	c.HTTP.Addr = ":8080"
	c.HTTP.ReadTimeout, c.HTTP.WriteTimeout, c.HTTP.IdleTimeout = Duration(30*time.Second), Duration(time.Minute), Duration(2*time.Minute)
	c.Rules.Enabled = true
	c.Rules.Paths = []string{"rules/*.yaml"}
	c.Rules.RebuildTimeout = Duration(2 * time.Minute)
	c.Rules.SnapshotPath = "data/rules.snapshot"
	c.Rules.SnapshotInterval = Duration(5 * time.Minute)
	c.Rules.TickInterval = Duration(time.Minute)
	c.Notify.ContactCooldown = Duration(7 * 24 * time.Hour)
	c.Notify.MaxAlertAge = Duration(time.Hour)
	c.Notify.MinOutcomes = 5
	c.Notify.MinPrecision = 0.6
	c.Notify.OfferExpiry = Duration(72 * time.Hour)
	c.Notify.OfferReminder = Duration(24 * time.Hour)
	c.Notify.SlotLength = Duration(2 * time.Hour)
	c.Notify.TravelBuffer = Duration(30 * time.Minute)
	c.Notify.SlotLead = Duration(2 * time.Hour)
	c.Notify.SlotHorizon = Duration(14 * 24 * time.Hour)
	c.Notify.SlotCount = 3
	c.Notify.SlotHold = Duration(4 * time.Hour)
	c.Notify.DailyCap = 3
	c.Notify.VisitReminderAt = "18:00"
	c.Notify.SurveyTimeout = Duration(48 * time.Hour)
	c.Notify.NPSInterval = Duration(90 * 24 * time.Hour)
	c.Notify.HelpContact = "reply CALL and we will phone you"
	c.Notify.Brand = "Proactive"
	c.Notify.MaxAttempts = 8
	c.Notify.SendTimeout = Duration(15 * time.Second)
	c.Notify.WebhookAttempts = 12
	c.Notify.WebhookTimeout = Duration(10 * time.Second)
	c.Notify.WebhookBackoff = Duration(30 * time.Second)
	c.Notify.WebhookRetention = Duration(30 * 24 * time.Hour)
	c.Notify.GroupWait = Duration(30 * time.Second)
	c.Notify.Incident.MinDevices = 5
	c.Notify.Incident.MinShare = 0.2
	c.Notify.Incident.Window = Duration(15 * time.Minute)
	c.ShutdownTimeout = Duration(15 * time.Second)
	return c
}

// Secret is a string that never prints: logs, errors and printed
// configuration show [redacted] in its place.
type Secret string

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// Reveal returns the secret itself, for the one place that uses it.
func (s Secret) Reveal() string { return string(s) }

func (Secret) isSecret() {}

// secret is a configuration value that may hold a secret: it may come from a
// _FILE variable, and never prints whole.
type secret interface{ isSecret() }

// DSN is the database: a SQLite path, which prints as it is (an operator
// needs to see which file is used), or a PostgreSQL URL or key=value
// string, which prints with its password replaced.
type DSN string

func (DSN) isSecret() {}

// Reveal returns the whole DSN, password included, for opening the database.
func (d DSN) Reveal() string { return string(d) }

var dsnPassword = regexp.MustCompile(`(?i)((?:^|[\s&?])(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)`)

// String implements fmt.Stringer.
func (d DSN) String() string {
	s := string(d)
	if scheme, _, ok := strings.Cut(s, "://"); ok && !strings.ContainsAny(scheme, "/\\ ") {
		u, err := url.Parse(s)
		if err != nil {
			return "[redacted]" // cannot tell where a password would be
		}
		s = u.Redacted()
	}
	return dsnPassword.ReplaceAllString(s, "${1}xxxxx")
}

// MarshalYAML implements yaml.Marshaler.
func (d DSN) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON implements json.Marshaler.
func (d DSN) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// LogValue implements slog.LogValuer.
func (d DSN) LogValue() slog.Value { return slog.StringValue(d.String()) }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON implements json.Marshaler, so that JSON output (and slog's
// JSON handler) shows [redacted] too.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Duration is a proactive.Duration, written like "500ms", "2m", "7d" or
// "2w" (proactive.ParseDuration); its YAML errors name the line.
type Duration proactive.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if err := (*proactive.Duration)(d).UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return proactive.FormatDuration(time.Duration(d)), nil }

// Load reads the file (when path is not empty), applies the environment
// and validates. It reports every problem at once: a bad value or an
// unknown key in the file does not stop the rest of the file, the
// environment or the validation from being checked.
//
// getenv reads the variables. environ, when given, is that same
// environment as os.Environ returns it: with it, a variable that is set
// but empty sets its key to empty (rather than leaving the default), and a
// PROACTIVE_* variable that nothing reads is an error naming the nearest
// known one. Each secret may also come from the file named by its
// variable with _FILE appended (Docker secrets).
func Load(path string, getenv func(string) string, environ ...string) (Config, error) {
	cfg := Default()
	var errs []error
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		errs = append(errs, decodeFile(&cfg, path, b)...)
	}
	errs = append(errs, applyEnv(&cfg, getenv, environ)...)
	errs = append(errs, cfg.validate()...)
	return cfg, errors.Join(errs...)
}

// Variables returns every environment variable Load reads, with the yaml
// key it sets: one per key, and the _FILE variable of each secret.
func Variables() map[string]string {
	cfg := Default()
	keys := map[string]string{}
	walkLeaves(reflect.ValueOf(&cfg).Elem(), "", func(key, env string, v reflect.Value) {
		keys[env] = key
		if isSecretLeaf(v) {
			keys[env+fileSuffix] = key
		}
	})
	return keys
}

// walkLeaves calls fn for every settable leaf with its yaml key and env name.
func walkLeaves(v reflect.Value, prefix string, fn func(key, env string, v reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			walkLeaves(fv, key, fn)
			continue
		}
		env := f.Tag.Get("env")
		if env == "" {
			env = "PROACTIVE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		}
		fn(key, env, fv)
	}
}

func setFromString(v reflect.Value, s string) error {
	switch v.Interface().(type) {
	case Duration:
		d, err := proactive.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	case []string:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
		return nil
	case map[string]string:
		// name=value pairs, comma-separated: offer=HX...,survey=HX...
		m := map[string]string{}
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			k, val, ok := strings.Cut(p, "=")
			k, val = strings.TrimSpace(k), strings.TrimSpace(val)
			if !ok || k == "" || val == "" {
				return fmt.Errorf("%q is not a list of name=value pairs", s)
			}
			if _, dup := m[k]; dup {
				return fmt.Errorf("%s is given twice", k)
			}
			m[k] = val
		}
		v.Set(reflect.ValueOf(m))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetInt(int64(n))
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%q is not a number", s)
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

func (c *Config) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json", "auto":
	default:
		bad("log.format", "%q is not one of text, json, auto", c.Log.Format)
	}
	if c.MQTT.URL == "" {
		if c.MQTT.Listen == "" {
			bad("mqtt.listen", "required when mqtt.url is empty (the embedded broker's address)")
		}
	} else if u, err := url.Parse(c.MQTT.URL); err != nil {
		bad("mqtt.url", "not a URL: %v", redactErr(err))
	} else {
		switch u.Scheme {
		case "mqtt", "tcp", "mqtts":
		default:
			bad("mqtt.url", "scheme %q is not mqtt://, tcp:// or mqtts://", u.Scheme)
		}
		if u.Host == "" {
			bad("mqtt.url", "has no host:port")
		}
	}
	if c.MQTT.DeviceAuth && c.MQTT.URL != "" {
		bad("mqtt.device_auth", "authenticates devices on the embedded broker only; with mqtt.url set, the external broker authenticates them")
	}
	if c.MQTT.SharedGroup != "" && c.MQTT.URL == "" {
		bad("mqtt.shared_group", "splits an external broker's messages between instances; the embedded broker serves one instance")
	} else if strings.ContainsAny(c.MQTT.SharedGroup, "/+#") {
		bad("mqtt.shared_group", "%q: no /, + or # in a share name", c.MQTT.SharedGroup)
	}
	if c.MQTT.TLSCAFile != "" {
		if _, err := os.Stat(c.MQTT.TLSCAFile); err != nil {
			bad("mqtt.tls_ca_file", "%v", err)
		}
	}
	if c.MQTT.ClientID == "" {
		bad("mqtt.client_id", "required: the broker keeps the ingester's session under it")
	}
	if c.MQTT.TopicPrefix == "" || strings.ContainsAny(c.MQTT.TopicPrefix, "+#") {
		bad("mqtt.topic_prefix", "must be a non-empty topic without wildcards")
	}
	if c.MQTT.MaxConnections <= 0 {
		bad("mqtt.max_connections", "must be positive, got %d", c.MQTT.MaxConnections)
	}
	if c.MQTT.MaxPacketSize < 1024 || c.MQTT.MaxPacketSize > 256<<20 {
		bad("mqtt.max_packet_size", "must be from 1024 to 268435456 bytes, got %d", c.MQTT.MaxPacketSize)
	}
	if c.MQTT.ConnectTimeout <= 0 {
		bad("mqtt.connect_timeout", "must be positive")
	}
	switch c.Ingest.Source {
	case "mqtt", "kafka":
	default:
		bad("ingest.source", "%q is not one of mqtt, kafka", c.Ingest.Source)
	}
	if (c.Ingest.Source == "kafka" || c.Kafka.Forward) && len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers", "required with ingest.source: kafka or kafka.forward: true (host:port, comma-separated in PROACTIVE_KAFKA_BROKERS)")
	}
	if c.Kafka.Topic == "" || c.Kafka.EventsTopic == "" || c.Kafka.Group == "" {
		bad("kafka", "topic, events_topic and group must not be empty")
	} else if c.Kafka.SessionTimeout < Duration(time.Second) {
		bad("kafka.session_timeout", "must be at least 1s")
	} else if c.Kafka.Topic == c.Kafka.EventsTopic {
		bad("kafka.events_topic", "must differ from kafka.topic")
	}
	if c.Ingest.MaxMetricsPerDevice <= 0 {
		bad("ingest.max_metrics_per_device", "must be positive, got %d", c.Ingest.MaxMetricsPerDevice)
	}
	if c.Ingest.MaxRatePerDevice < 0 {
		bad("ingest.max_rate_per_device", "must be 0 (no limit) or positive, got %d", c.Ingest.MaxRatePerDevice)
	}
	if c.Ingest.MaxClockSkew <= 0 {
		bad("ingest.max_clock_skew", "must be positive")
	}
	if u, err := url.Parse(c.Influx.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("influx.url", "must be an http:// or https:// URL, got %q", c.Influx.URL)
	}
	if c.Influx.Bucket == "" {
		bad("influx.bucket", "required (for InfluxDB 1.8: database/retention_policy)")
	}
	if c.Influx.BatchSize <= 0 {
		bad("influx.batch_size", "must be positive, got %d", c.Influx.BatchSize)
	}
	if c.Influx.FlushInterval <= 0 {
		bad("influx.flush_interval", "must be positive")
	}
	if c.Influx.QueueSize <= 0 {
		bad("influx.queue_size", "must be positive, got %d", c.Influx.QueueSize)
	}
	if c.DB == "" {
		bad("db", "required: a SQLite path or a postgres:// URL")
	}
	if c.HTTP.Addr == "" {
		bad("http.addr", "required")
	}
	if c.HTTP.ReadTimeout <= 0 || c.HTTP.WriteTimeout <= 0 || c.HTTP.IdleTimeout <= 0 {
		bad("http", "read_timeout, write_timeout and idle_timeout must be positive")
	}
	for _, p := range c.HTTP.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("http.trusted_proxies", "%q is not a CIDR such as 10.0.0.0/8 or an address", p)
			}
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || u.Host == "" {
			bad("public_url", "must be an absolute URL, got %q", c.PublicURL)
		}
	}
	if c.Twilio.AccountSID != "" {
		if c.PublicURL == "" {
			bad("public_url", "required with twilio.account_sid: Twilio signs its webhooks with the public URL, and replies could never be verified without it")
		}
		if c.Twilio.AuthToken == "" {
			bad("twilio.auth_token", "required with twilio.account_sid")
		}
		if c.Twilio.From == "" && c.Twilio.MessagingServiceSID == "" {
			bad("twilio.from", "twilio.from or twilio.messaging_service_sid is required with twilio.account_sid")
		}
	}
	if c.Twilio.WhatsAppFrom != "" {
		if c.Twilio.AccountSID == "" {
			bad("twilio.whatsapp_from", "needs twilio.account_sid: WhatsApp goes through Twilio's Messages API")
		}
		if !proactive.ValidE164(c.Twilio.WhatsAppFrom) {
			bad("twilio.whatsapp_from", "%q is not a number in E.164 form like +14155550123 (without whatsapp:)", c.Twilio.WhatsAppFrom)
		}
	}
	for _, kind := range slices.Sorted(maps.Keys(c.Twilio.WhatsAppTemplates)) {
		if sid := c.Twilio.WhatsAppTemplates[kind]; !proactive.ValidContentSID(sid) {
			bad("twilio.whatsapp_templates", "%s: %q is not a Content SID (HX and 32 hex digits)", kind, sid)
		}
	}
	if c.SMTP.URL != "" {
		u, err := url.Parse(c.SMTP.URL.Reveal())
		switch {
		case err != nil:
			// url.Parse's error repeats the URL, password included.
			bad("smtp.url", "not a URL like smtp://user:password@host:587")
		case (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "":
			bad("smtp.url", "must be smtp://[user:password@]host[:port] or smtps://..., not %s://%s", u.Scheme, u.Host)
		}
		if a, err := mail.ParseAddress(c.SMTP.From); err != nil || a.Address == "" {
			bad("smtp.from", "required with smtp.url: an address like \"Proactive <service@example.com>\", got %q", c.SMTP.From)
		}
		if c.PublicURL == "" {
			bad("public_url", "required with smtp.url: every email carries an unsubscribe link to it")
		}
	}
	for key, d := range map[string]Duration{
		"notify.offer_expiry":   c.Notify.OfferExpiry,
		"notify.offer_reminder": c.Notify.OfferReminder, "notify.slot_length": c.Notify.SlotLength,
		"notify.travel_buffer": c.Notify.TravelBuffer, "notify.slot_lead": c.Notify.SlotLead,
		"notify.slot_horizon": c.Notify.SlotHorizon, "notify.slot_hold": c.Notify.SlotHold,
		"notify.survey_timeout": c.Notify.SurveyTimeout, "notify.send_timeout": c.Notify.SendTimeout,
		"notify.incident.window": c.Notify.Incident.Window,
		"notify.webhook_timeout": c.Notify.WebhookTimeout, "notify.webhook_backoff": c.Notify.WebhookBackoff,
	} {
		if d <= 0 {
			bad(key, "must be positive")
		}
	}
	// 0 turns these off.
	for key, d := range map[string]Duration{"notify.contact_cooldown": c.Notify.ContactCooldown, "notify.max_alert_age": c.Notify.MaxAlertAge,
		"notify.nps_interval": c.Notify.NPSInterval, "notify.webhook_retention": c.Notify.WebhookRetention} {
		if d < 0 {
			bad(key, "must not be negative (0 turns it off)")
		}
	}
	if c.Notify.MinOutcomes <= 0 {
		bad("notify.min_outcomes", "must be positive, got %d", c.Notify.MinOutcomes)
	}
	if p := c.Notify.MinPrecision; !(p >= 0 && p <= 1) {
		bad("notify.min_precision", "must be between 0 and 1 (0 turns measured trust off), got %v", p)
	}
	if c.Notify.SlotCount < 2 || c.Notify.SlotCount > 3 {
		bad("notify.slot_count", "must be 2 or 3, got %d", c.Notify.SlotCount)
	}
	if c.Notify.WebhookAttempts <= 0 {
		bad("notify.webhook_attempts", "must be positive, got %d", c.Notify.WebhookAttempts)
	}
	if c.Notify.DailyCap <= 0 {
		bad("notify.daily_cap", "must be positive, got %d", c.Notify.DailyCap)
	}
	if c.Notify.GroupWait < 0 {
		bad("notify.group_wait", "must not be negative (0s sends offers at once)")
	}
	if c.Notify.Incident.MinDevices < 2 {
		bad("notify.incident.min_devices", "must be at least 2, got %d", c.Notify.Incident.MinDevices)
	}
	if s := c.Notify.Incident.MinShare; !(s > 0 && s <= 1) {
		bad("notify.incident.min_share", "must be a share above 0 and at most 1, got %v", s)
	}
	if c.Notify.MaxAttempts <= 0 {
		bad("notify.max_attempts", "must be positive, got %d", c.Notify.MaxAttempts)
	}
	if b := strings.TrimSpace(c.Notify.Brand); b == "" || utf8.RuneCountInString(b) > 20 {
		bad("notify.brand", "must be 1 to 20 characters (it opens every offer), got %q", c.Notify.Brand)
	}
	if _, err := proactive.ParseClock(c.Notify.VisitReminderAt); err != nil {
		bad("notify.visit_reminder_at", "%q is not a time of day like 18:00", c.Notify.VisitReminderAt)
	}
	if c.Rules.TickInterval <= 0 {
		bad("rules.tick_interval", "must be positive")
	}
	if c.Rules.SnapshotInterval <= 0 {
		bad("rules.snapshot_interval", "must be positive")
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be positive")
	}
	return errs
}

// redactErr keeps a URL parse error from echoing a password back.
func redactErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// Printable returns the configuration as YAML with every secret redacted.
func (c Config) Printable() string {
	b, _ := yaml.Marshal(c)
	return string(b)
}

// Logger returns the process logger at log.level, in log.format: for auto,
// text on a terminal, JSON otherwise.
func (c Config) Logger(w io.Writer) *slog.Logger {
	format := c.Log.Format
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	// Durations in seconds, as Prometheus and log pipelines count them,
	// not slog's integer nanoseconds.
	opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.Float64Value(a.Value.Duration().Seconds())
		}
		return a
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Broker is the broker the platform is configured with: mqtt.url,
// or else the embedded broker's listen address.
func (c Config) Broker() string {
	if c.MQTT.URL != "" {
		return c.MQTT.URL
	}
	host, port, err := net.SplitHostPort(c.MQTT.Listen)
	if err != nil {
		return "mqtt://" + c.MQTT.Listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "mqtt://" + net.JoinHostPort(host, port)
}

// LocalURL turns a listen address like http.addr (":8080", "0.0.0.0:8080",
// "[::]:8080", "10.0.0.5:8080") into the base URL of that server as seen
// from this machine.
func LocalURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("http.addr %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// RedactURL hides the password of a URL, like mqtt.url or influx.url, for
// logs.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "[unparseable url]"
	}
	return u.Redacted()
}
