package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// runCmd runs `proactive ARGS...` with env and returns stdout and stderr.
func runCmd(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr testenv.Buffer
	err := run(t.Context(), append([]string{"proactive"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// The demo scenario, end to end: its fleet registered, published through
// `proactive serve` (embedded broker) into a real influxd, the example rules
// fire on the faulty devices live, and `simulate score --from-influx`
// reports each fault detected before its breakdown and no false alert.
func TestSimulateScoreEndToEnd(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t) // Flux on: the backtest reads with it
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_INFLUX_FLUSH_INTERVAL"] = "50ms"
	env["PROACTIVE_RULES"] = filepath.Join("..", "..", "rules", "examples", "*.yaml")
	dir := t.TempDir()
	fleet, truth := filepath.Join(dir, "fleet.csv"), filepath.Join(dir, "truth.csv")
	start := "2026-03-02T09:00:00Z"

	// The example rules are scoped to models: the registry gives them.
	if out, errOut, err := runCmd(t, env, "simulate", "--scenario", "demo", "--start", start, "--registry", fleet); err != nil {
		t.Fatalf("registry: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := runCmd(t, env, "devices", "import", fleet); err != nil {
		t.Fatalf("import: %v\n%s%s", err, out, errOut)
	}
	p := startServe(t, env)
	p.waitReady(t)
	maint := filepath.Join(dir, "maint.csv")
	if out, errOut, err := runCmd(t, env, "simulate", "--scenario", "demo", "--start", start, "--speed", "max", "--truth", truth,
		"--maintenance-out", maint, "--quiet"); err != nil {
		t.Fatalf("simulate: %v\n%s%s", err, out, errOut)
	}
	// The demo repairs nothing: the file has its header only, which the
	// maintenance import takes.
	if b, err := os.ReadFile(maint); err != nil || string(b) != "device_id,time,component,kind,notes\n" {
		t.Errorf("--maintenance-out wrote %q, %v", b, err)
	}
	if out, errOut, err := runCmd(t, env, "devices", "import", "--maintenance", maint); err != nil || !strings.Contains(out, "0 rows") {
		t.Errorf("import of the simulated maintenance: %v\n%s%s", err, out, errOut)
	}
	// The live engine fired on them too.
	for _, fired := range []string{"compressor_wear\",\"device_id\":\"fridge-003", "refrigerant_leak\",\"device_id\":\"fridge-008",
		"fan_bearing\",\"device_id\":\"heatpump-002"} {
		waitLog(t, p, `"msg":"alert firing","component":"rules","alert":{"rule":"`+fired+`"`)
	}

	out, errOut, err := runCmd(t, env, "simulate", "score", "--truth", truth, "--from-influx", "--json")
	if err != nil {
		t.Fatalf("score: %v\n%s%s", err, out, errOut)
	}
	var rep scoreJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("score --json: %v\n%s", err, out)
	}
	if rep.Faults != 3 || rep.Detected != 3 || rep.FalseAlerts != 0 || rep.Missed != 0 {
		t.Errorf("score: %d faults, %d detected, %d missed, %d false alerts; want 3 detected, none missed or false\n%s",
			rep.Faults, rep.Detected, rep.Missed, rep.FalseAlerts, out)
	}
	for _, f := range rep.FaultList {
		if f.Outcome != "detected" || f.LeadS <= 0 || f.Rule != f.Fault {
			t.Errorf("%s on %s: %s by %q, lead %s; want detected by its rule before the breakdown", f.Fault, f.Device, f.Outcome, f.Rule, time.Duration(f.LeadS*1e9))
		}
	}
	for _, r := range rep.Rules {
		if r.Faults > 0 && (r.Precision == nil || *r.Precision != 1) {
			t.Errorf("rule %s: precision %v", r.Rule, r.Precision)
		}
	}
	table, _, err := runCmd(t, env, "simulate", "score", "--truth", truth, "--from-influx")
	if err != nil || !strings.Contains(table, "Faults: 3 detected") || !strings.Contains(table, "False alerts: 0") {
		t.Errorf("score table: %v\n%s", err, table)
	}
	t.Logf("score:\n%s", table)

	// The tickets the live platform opened score the same.
	store, err := devices.Open(t.Context(), env["PROACTIVE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := devices.NewTokens(store, devices.TokenOptions{}).Create(t.Context(), "score", devices.RoleDispatcher, "")
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	apiEnv := maps.Clone(env)
	apiEnv["PROACTIVE_API_TOKEN"] = token
	out, errOut, err = runCmd(t, apiEnv, "simulate", "score", "--truth", truth, "--api", "http://"+p.http, "--json")
	if err != nil {
		t.Fatalf("score --api: %v\n%s%s", err, out, errOut)
	}
	rep = scoreJSON{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("score --api --json: %v\n%s", err, out)
	}
	if rep.Faults != 3 || rep.Detected != 3 || rep.FalseAlerts != 0 {
		t.Errorf("score of the tickets: %d faults, %d detected, %d false alerts; want 3 detected, none false\n%s",
			rep.Faults, rep.Detected, rep.FalseAlerts, out)
	}
	for _, f := range rep.FaultList {
		if f.Outcome != "detected" || f.LeadS <= 0 {
			t.Errorf("ticket for %s on %s: %s, lead %s", f.Fault, f.Device, f.Outcome, time.Duration(f.LeadS*1e9))
		}
	}
}

// Alerts files: a backtest report, a JSON array of plain alerts, and JSON
// lines, scored against a ground truth; bad records are reported together.
func TestSimulateScoreAlertsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	truth := write("truth.csv", "device,model,component,fault,shape,onset,breakdown,then,time\n"+
		"fridge-002,fridge-a1,compressor,compressor_wear,linear,2026-03-02T05:00:00Z,2026-03-03T05:00:00Z,hold,2026-03-03T05:00:00Z\n"+
		"fridge-004,fridge-a1,door,door_left_open,step,2026-03-02T05:00:00Z,,hold,2026-03-02T05:00:00Z\n")
	backtest := write("bt.json", `{"from": "2026-03-01T00:00:00Z", "to": "2026-03-04T00:00:00Z", "scored": false,
  "rules": [{"rule": "compressor_wear", "component": "compressor"}, {"rule": "silent_device", "component": "connectivity"}],
  "alerts": [
    {"rule": "compressor_wear", "device_id": "fridge-002", "component": "compressor", "state": "firing", "fired_at": "2026-03-02T17:00:00Z"},
    {"rule": "compressor_wear", "device_id": "fridge-002", "component": "compressor", "state": "resolved", "fired_at": "2026-03-02T17:00:00Z"},
    {"rule": "compressor_wear", "device_id": "fridge-001", "component": "compressor", "state": "firing", "fired_at": "2026-03-02T20:00:00Z"}
  ]}`)
	plain := write("alerts.json", `[{"Rule": "compressor_wear", "Device": "fridge-002", "Component": "compressor", "State": "firing", "FiredAt": "2026-03-02T17:00:00Z"}]`)
	lines := write("alerts.jsonl", `{"rule": "compressor_wear", "device": "fridge-002", "component": "compressor", "fired_at": "2026-03-02T17:00:00Z"}
{"rule": "compressor_wear", "device_id": "fridge-001", "component": "compressor", "fired_at": "2026-03-02T20:00:00Z"}
`)
	for _, tc := range []struct {
		file, want string
	}{
		// The backtest names its rules: the door fault is a decoy.
		{backtest, "detected 1 missed 0 unwatched 1 false 1/1 lead 12h0m0s"},
		{plain, "detected 1 missed 1 unwatched 0 false 0/0 lead 12h0m0s"},
		{lines, "detected 1 missed 1 unwatched 0 false 1/1 lead 12h0m0s"},
	} {
		out, errOut, err := runCmd(t, nil, "simulate", "score", "--truth", truth, "--alerts", tc.file, "--json")
		if err != nil {
			t.Fatalf("score %s: %v\n%s", tc.file, err, errOut)
		}
		var rep scoreJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		got := strings.Join([]string{"detected", strconv.Itoa(rep.Detected), "missed", strconv.Itoa(rep.Missed), "unwatched", strconv.Itoa(rep.Unwatched),
			"false", strconv.Itoa(rep.FalseAlerts) + "/" + strconv.Itoa(rep.FalseOnHealthy), "lead", time.Duration(rep.LeadMedianS * 1e9).String()}, " ")
		if got != tc.want {
			t.Errorf("score %s: %s, want %s\n%s", filepath.Base(tc.file), got, tc.want, out)
		}
	}
	out, _, err := runCmd(t, nil, "simulate", "score", "--truth", truth, "--alerts", backtest)
	for _, want := range []string{
		"compressor_wear  fridge-002  compressor  2026-03-02T05:00:00Z  2026-03-03T05:00:00Z  detected   compressor_wear  2026-03-02T17:00:00Z  12h",
		"door_left_open   fridge-004  door        2026-03-02T05:00:00Z  -                     unwatched",
		"compressor_wear  compressor    1         1         100%    2       1      50%        12h          12h  12h",
		"door          1         0         0%      0       0      -          -            -    -",
		"compressor_wear  fridge-001  compressor  2026-03-02T20:00:00Z  no fault",
		"Faults: 1 detected (lead median 12h, p10 12h, p90 12h), 0 late, 0 missed, 1 unwatched. False alerts: 1 (1 on devices without a fault).",
	} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("score table: %v: no line\n%s\nin:\n%s", err, want, out)
		}
	}

	bad := write("bad.jsonl", `{"rule": "x", "component": "c", "fired_at": "2026-03-02T17:00:00Z"}
{"rule": "x", "device_id": "d", "component": "c"}
`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--alerts", bad}, "alert 1: no device_id"},
		{[]string{"--alerts", bad}, "alert 2: no fired_at"},
		{[]string{"--alerts", lines, "--from-influx"}, "--alerts FILE, --from-influx or --api URL, one of them"},
		{[]string{}, "--alerts FILE, --from-influx or --api URL"},
		{[]string{"--alerts", lines, "--from", "-1d"}, "--from, --to, --maintenance and --rules are for --from-influx"},
	} {
		args := append([]string{"simulate", "score", "--truth", truth}, tc.args...)
		if _, _, err := runCmd(t, nil, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, _, err := runCmd(t, nil, "simulate", "score", "--alerts", lines); err == nil || !strings.Contains(err.Error(), "--truth FILE is required") {
		t.Errorf("without --truth: %v", err)
	}
}

// scoreJSON is the part of `simulate score --json` (simulator's
// ScoreReport.WriteJSON) that the tests read.
type scoreJSON struct {
	Faults         int     `json:"failures"`
	Detected       int     `json:"detected"`
	Missed         int     `json:"missed"`
	Unwatched      int     `json:"unwatched"`
	FalseAlerts    int     `json:"false_alerts"`
	FalseOnHealthy int     `json:"false_alerts_on_healthy_devices"`
	LeadMedianS    float64 `json:"lead_median_s"`
	FaultList      []struct {
		Device  string  `json:"device_id"`
		Fault   string  `json:"fault"`
		Outcome string  `json:"outcome"`
		Rule    string  `json:"rule"`
		LeadS   float64 `json:"lead_s"`
	} `json:"fault_outcomes"`
	Rules []struct {
		Rule      string   `json:"rule"`
		Faults    int      `json:"failures"`
		Precision *float64 `json:"precision"`
	} `json:"rules"`
}
