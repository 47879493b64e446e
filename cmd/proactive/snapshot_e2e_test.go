package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/rules"
)

// A graceful stop writes the rule snapshot; the next start restores it,
// replays from InfluxDB only the gap since (samples another instance stored
// meanwhile), and the alert fires when it would have without the restart.
// The episode began 5h ago, before the tail a rebuild from InfluxDB alone
// evaluates (for + clear_for = 4h), so only the snapshot knows when. A
// corrupt snapshot then falls back to that rebuild.
func TestRestartFromSnapshot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ruleFile := filepath.Join(dir, "hot.yaml")
	if err := os.WriteFile(ruleFile, []byte("rules:\n  - name: hot\n    component: cabinet\n    severity: warning\n    when: avg(cabinet_temp, \"1h\") > 10\n    for: 2h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_RULES"] = ruleFile
	snapPath := env["PROACTIVE_RULES_SNAPSHOT_PATH"]
	store, err := devices.Open(t.Context(), env["PROACTIVE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := devices.NewTokens(store, devices.TokenOptions{}).Create(t.Context(), "admin", devices.RoleAdmin, "")
	store.Close()
	if err != nil {
		t.Fatal(err)
	}

	// One sample every 2 minutes from t0: [0, 30] over MQTT, [31, 45]
	// stored while the service is down, [46, 80] over MQTT after it.
	t0 := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Hour)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 2 * time.Minute) }
	payload := func(from, to int) string {
		var parts []string
		for i := from; i <= to; i++ {
			parts = append(parts, fmt.Sprintf(`{"ts": %d, "metrics": {"cabinet_temp": 12}}`, at(i).UnixMilli()))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	// The engine that never stops.
	specs, probs := rules.LoadFiles([]string{ruleFile})
	if probs != nil {
		t.Fatal(probs)
	}
	set, probs := rules.Compile(specs)
	if probs != nil {
		t.Fatal(probs)
	}
	control := rules.NewEvaluator(set, nil, 5*time.Minute)
	for i := 0; i <= 80; i++ {
		control.Observe(proactive.Sample{Device: "fridge-7", Time: at(i), Metrics: map[string]float64{"cabinet_temp": 12}})
	}
	want := control.Alerts()
	if len(want) != 1 || want[0].State != proactive.AlertFiring {
		t.Fatalf("the control raises %+v, want one firing alert", want)
	}

	p := startChild(t, env)
	p.waitReady(t)
	c := device(t, "tcp://"+env["PROACTIVE_MQTT_LISTEN"], "fridge-7", false)
	publish(t, c, "devices/fridge-7/telemetry", payload(0, 30))
	waitMetric(t, p, `proactive_rules_alerts{rule="hot",state="pending"}`, 1)
	c.Disconnect(100)
	p.terminate(t)
	if !strings.Contains(p.logs.String(), `"msg":"rule snapshot written"`) {
		t.Fatalf("no snapshot written at shutdown:\n%s", tail(p.logs.String(), 2000))
	}

	var lp strings.Builder
	for i := 31; i <= 45; i++ {
		fmt.Fprintf(&lp, "telemetry,device_id=fridge-7 cabinet_temp=12 %d\n", at(i).UnixMilli())
	}
	influx.Write(t, lp.String())

	p = startChild(t, env)
	p.waitReady(t)
	logs := p.logs.String()
	if !strings.Contains(logs, `"msg":"rule windows restored from the snapshot"`) || !strings.Contains(logs, `"devices":1`) {
		t.Fatalf("the snapshot was not restored:\n%s", tail(logs, 3000))
	}
	c = device(t, "tcp://"+env["PROACTIVE_MQTT_LISTEN"], "fridge-7", false)
	publish(t, c, "devices/fridge-7/telemetry", payload(46, 80))
	waitLog(t, p, `"msg":"alert firing","component":"rules","alert":{"rule":"hot","device_id":"fridge-7"`)
	got := alertsOf(t, p, token)
	if len(got) != 1 || got[0].State != want[0].State || !got[0].ActiveAt.Equal(want[0].ActiveAt) || !got[0].FiredAt.Equal(want[0].FiredAt) {
		t.Errorf("after the restart %+v, never stopped %+v", got, want)
	}
	c.Disconnect(100)
	p.terminate(t)

	// A corrupt snapshot: refused, and the windows come from InfluxDB.
	b, err := os.ReadFile(snapPath)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(snapPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p = startChild(t, env)
	p.waitReady(t)
	logs = p.logs.String()
	if !strings.Contains(logs, `"msg":"rule snapshot not used; rebuilding the rule windows from influxdb"`) ||
		!strings.Contains(logs, "checksum") || !strings.Contains(logs, `"msg":"rule windows rebuilt from influxdb"`) {
		t.Errorf("a corrupt snapshot did not fall back to the rebuild:\n%s", tail(logs, 3000))
	}
	p.terminate(t)
}

func waitMetric(t *testing.T, p *platform, series string, want float64) {
	t.Helper()
	testenv.Eventually(t, 0, func() error {
		if got := metric(t, p.http, series); got != want {
			return fmt.Errorf("%s is %v, want %v:\n%s", series, got, want, tail(p.logs.String(), 2000))
		}
		return nil
	})
}

func alertsOf(t *testing.T, p *platform, token string) []rules.AlertStatus {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+p.http+"/api/v1/alerts", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Items []rules.AlertStatus `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/alerts: %s %v", resp.Status, err)
	}
	return body.Items
}
