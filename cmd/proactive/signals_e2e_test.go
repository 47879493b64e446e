package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/internal/testenv"
)

// signalsPlatform starts serve in process with the rule file rulesYAML, the
// embedded broker and a dispatcher token; seed registers what the test needs
// in the store first.
func signalsPlatform(t *testing.T, rulesYAML string, seed func(*devices.Store)) (p *platform, influx *testenv.InfluxServer, broker, token string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rulesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	influx = testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_RULES"] = filepath.Join(dir, "*.yaml")
	store, err := devices.Open(t.Context(), env["PROACTIVE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	seed(store)
	_, token, err = devices.NewTokens(store, devices.TokenOptions{}).Create(t.Context(), "e2e", devices.Role("dispatcher"), "")
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	p = startServe(t, env)
	p.waitReady(t)
	return p, influx, "tcp://" + env["PROACTIVE_MQTT_LISTEN"], token
}

// apiJSON sends a request with the token and decodes a 2xx answer into out.
func apiJSON(t *testing.T, p *platform, token, method, path string, body any, out any) error {
	t.Helper()
	var rd bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&rd).Encode(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+p.http+path, &rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, msg.String())
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// alertState is the state of rule's alert on dev in GET /api/v1/alerts,
// "" when it has none.
func alertState(t *testing.T, p *platform, token, rule, dev string) proactive.AlertState {
	t.Helper()
	for _, a := range alertsOf(t, p, token) {
		if a.Rule == rule && string(a.Device) == dev {
			return a.State
		}
	}
	return ""
}

// tickets lists the device's tickets through the API.
func tickets(t *testing.T, p *platform, token, dev string) []proactive.Ticket {
	t.Helper()
	var page struct {
		Items []proactive.Ticket `json:"items"`
	}
	if err := apiJSON(t, p, token, http.MethodGet, "/api/v1/tickets?device_id="+dev, nil, &page); err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// A rule gated on an error code: telemetry over the threshold alone opens
// nothing; the device's event over MQTT fires the alert and opens a ticket
// for its component, and the event is stored in InfluxDB. An event without
// a code is a dead letter the API shows.
func TestServeEventGatesRule(t *testing.T) {
	t.Parallel()
	p, influx, broker, token := signalsPlatform(t,
		"rules:\n  - name: compressor_trip\n    component: compressor\n    severity: warning\n"+
			"    when: avg(compressor_current, \"10m\") > 5 && events(\"E1*\", \"1h\") > 0\n",
		func(s *devices.Store) { seedOutreach(t, s, "+4915550000002") })
	c := device(t, broker, "fridge-1", false)

	publish(t, c, "devices/fridge-1/telemetry", `{"metrics": {"compressor_current": 12}}`)
	publish(t, c, "devices/fridge-1/telemetry", `{"metrics": {"compressor_current": 11}}`)
	// Both samples evaluated: the counter moves after evaluation.
	waitMetric(t, p, "proactive_rules_samples_total", 2)
	if st := alertState(t, p, token, "compressor_trip", "fridge-1"); st != "" {
		t.Errorf("telemetry alone: alert %q, want none", st)
	}
	if tk := tickets(t, p, token, "fridge-1"); len(tk) != 0 {
		t.Errorf("telemetry alone opened tickets %+v", tk)
	}

	// A code outside the prefix gates nothing: the sample after it is
	// evaluated with it in the window.
	publish(t, c, "devices/fridge-1/events", `{"code": "E201"}`)
	publish(t, c, "devices/fridge-1/telemetry", `{"metrics": {"compressor_current": 12}}`)
	waitMetric(t, p, "proactive_rules_samples_total", 3)
	if st := alertState(t, p, token, "compressor_trip", "fridge-1"); st != "" {
		t.Errorf("after E201: alert %q, want none", st)
	}

	publish(t, c, "devices/fridge-1/events", `{"code": "E101", "component": "compressor"}`)
	// The embedded broker acknowledges once the event is written.
	pts := influx.Points(t, "events")
	if len(pts) != 2 || pts[1].Tags["device_id"] != "fridge-1" || pts[1].Tags["code"] != "E101" ||
		pts[1].Tags["component"] != "compressor" || pts[1].Fields["n"] != 1 {
		t.Errorf("events points %+v, want E201 then E101 of fridge-1's compressor with n=1", pts)
	}
	tk := testenv.EventuallyValue(t, 0, func() (proactive.Ticket, error) {
		if tk := tickets(t, p, token, "fridge-1"); len(tk) > 0 {
			return tk[0], nil
		}
		return proactive.Ticket{}, fmt.Errorf("no ticket for fridge-1 after the event; logs:\n%s", tail(p.logs.String(), 3000))
	})
	if tk.Rule != "compressor_trip" || tk.Component != "compressor" || tk.Device != "fridge-1" {
		t.Errorf("ticket %+v, want compressor_trip on fridge-1's compressor", tk)
	}
	if st := alertState(t, p, token, "compressor_trip", "fridge-1"); st != proactive.AlertFiring {
		t.Errorf("after the event: alert %q, want firing", st)
	}

	publish(t, c, "devices/fridge-1/events", `{"component": "compressor", "text": "no code"}`)
	dl := testenv.EventuallyValue(t, 0, func() (ingest.DeadLetter, error) {
		var page struct {
			Items []ingest.DeadLetter `json:"items"`
		}
		if err := apiJSON(t, p, token, http.MethodGet, "/api/v1/dead-letters", nil, &page); err != nil {
			return ingest.DeadLetter{}, err
		}
		for _, d := range page.Items {
			if d.Topic == "devices/fridge-1/events" {
				return d, nil
			}
		}
		return ingest.DeadLetter{}, fmt.Errorf("no dead letter of the events topic in %+v", page.Items)
	})
	if dl.Reason != ingest.ReasonBadEventCode || dl.Device != "fridge-1" {
		t.Errorf("dead letter %+v, want reason bad_event_code of fridge-1", dl)
	}
	if n := influx.Count(t, "events"); n != 2 {
		t.Errorf("%d events stored, want only the two good ones", n)
	}
}

// Maintenance recorded through the API reaches the running rules through
// the maintenance feed: since_maintenance() starts counting, and a rule
// with reset_on_maintenance forgets the samples before the replacement.
func TestServeMaintenanceResetsRules(t *testing.T) {
	t.Parallel()
	p, _, broker, token := signalsPlatform(t,
		"rules:\n"+
			"  - name: fan_high\n    component: fan\n    severity: warning\n    reset_on_maintenance: true\n"+
			"    when: avg(fan_current, \"1h\") > 5\n"+
			"  - name: motor_serviced\n    component: motor\n    severity: info\n"+
			"    when: since_maintenance() < duration(\"1h\")\n",
		func(s *devices.Store) {
			if _, err := s.CreateDevice(t.Context(), proactive.Device{ID: "hp-1", Model: "heatpump-x", TimeZone: "UTC"}); err != nil {
				t.Fatal(err)
			}
		})
	c := device(t, broker, "hp-1", false)

	publish(t, c, "devices/hp-1/telemetry", `{"metrics": {"fan_current": 10}}`)
	waitMetric(t, p, "proactive_rules_samples_total", 1)
	if st := alertState(t, p, token, "fan_high", "hp-1"); st != proactive.AlertFiring {
		t.Errorf("fan_high %q, want firing", st)
	}
	if st := alertState(t, p, token, "motor_serviced", "hp-1"); st != "" {
		t.Errorf("motor_serviced %q before any maintenance, want none", st)
	}

	at := time.Now().UTC().Format(time.RFC3339Nano)
	for _, comp := range []string{"fan", "motor"} {
		var rec proactive.Maintenance
		if err := apiJSON(t, p, token, http.MethodPost, "/api/v1/devices/hp-1/maintenance",
			map[string]any{"time": at, "component": comp, "kind": "replaced"}, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.ID == 0 || rec.Component != comp {
			t.Errorf("POST maintenance of %s answered %+v", comp, rec)
		}
	}
	// Maintenance evaluates nothing by itself, and the feed polls every 5s:
	// the device keeps reporting 5 A until its rules see the replacements.
	// The feed hands records on in ID order, so the sample that fires
	// motor_serviced also saw the fan's: avg(fan_current) is then 5 and
	// fan_high resolves. Without the reset it would stay above 5 forever.
	// (Two components, since one component holds one firing alert.)
	testenv.Eventually(t, 30*time.Second, func() error {
		publish(t, c, "devices/hp-1/telemetry", `{"metrics": {"fan_current": 5}}`)
		if st := alertState(t, p, token, "motor_serviced", "hp-1"); st != proactive.AlertFiring {
			return fmt.Errorf("motor_serviced %q, want firing; logs:\n%s", st, tail(p.logs.String(), 2000))
		}
		return nil
	})
	if st := alertState(t, p, token, "fan_high", "hp-1"); st != "" {
		t.Errorf("fan_high %q after the replacement, want resolved", st)
	}
	// The transition is counted just after the state changes.
	testenv.Eventually(t, 0, func() error {
		if !hasMetric(p.http, `proactive_rules_alert_transitions_total{rule="fan_high",state="resolved"}`) {
			return fmt.Errorf("fan_high's resolution not counted")
		}
		return nil
	})
}
