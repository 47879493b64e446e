package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// signalRules fire only with what telemetry alone does not show: an error
// code, and a replacement.
const signalRules = `rules:
  - name: wear_with_code
    component: compressor
    when: avg(compressor_current, "1h") > 1.25 * avg(compressor_current, "1d") && events("E1*", "2d") > 0
    for: 30m
    severity: warning
  - name: new_compressor
    component: compressor
    when: since_maintenance() < duration("12h")
    severity: info
`

// TestRulesBacktestSignals: rules backtest and simulate score --from-influx
// see the device events stored in InfluxDB and the maintenance records of
// the database or of --maintenance FILE, as the live engine does.
func TestRulesBacktestSignals(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(72 * time.Hour)
	writeBacktestSamples(t, influx, backtestFleet(start))
	// fridge-2's current climbs from 36h on; its error code comes at 30h.
	// fridge-0 has a code of another family, which gates nothing.
	influx.Write(t, fmt.Sprintf("events,device_id=fridge-2,code=E101,component=compressor n=1i,text=\"overcurrent trip\" %d\n"+
		"events,device_id=fridge-0,code=E200 n=1i %d\n", start.Add(30*time.Hour).UnixMilli(), start.Add(40*time.Hour).UnixMilli()))
	replaced := start.Add(40 * time.Hour)
	ruleFile := writeBacktestFile(t, "signals.yaml", signalRules)
	maintFile := writeBacktestFile(t, "maint.csv", "device_id,time,component,kind,notes\nfridge-1,"+replaced.Format(time.RFC3339)+",compressor,replaced,\n")

	dbWith := filepath.Join(t.TempDir(), "with.db")
	store, err := devices.Open(t.Context(), dbWith)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []proactive.DeviceID{"fridge-1", "fridge-3"} {
		if _, err := store.CreateDevice(t.Context(), proactive.Device{ID: id, Model: "fridge-a1", TimeZone: "UTC"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.AddMaintenance(t.Context(), []proactive.Maintenance{
		{Device: "fridge-1", Time: replaced, Component: "compressor", Kind: proactive.MaintenanceReplaced},
		{Device: "fridge-3", Time: replaced, Component: "compressor", Kind: proactive.MaintenanceReplaced},
	}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	backtest := func(t *testing.T, db string, args ...string) (fires map[string][]string, stderr string) {
		t.Helper()
		var out, errOut bytes.Buffer
		env := envMap(map[string]string{"PROACTIVE_INFLUX_URL": influx.URL(), "PROACTIVE_INFLUX_BUCKET": influx.Bucket(), "PROACTIVE_DB": db})
		args = append([]string{"proactive", "rules", "backtest", "--rules", ruleFile, "--json", "--no-save",
			"--from", start.Format(time.RFC3339), "--to", end.Format(time.RFC3339)}, args...)
		if err := run(t.Context(), args, env, &out, &errOut); err != nil {
			t.Fatalf("backtest: %v\nstderr:\n%s", err, errOut.String())
		}
		var rep struct {
			Alerts []struct {
				Rule   string `json:"rule"`
				Device string `json:"device_id"`
				State  string `json:"state"`
			} `json:"alerts"`
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out.String())
		}
		fires = map[string][]string{}
		for _, a := range rep.Alerts {
			if a.State == "firing" {
				fires[a.Rule] = append(fires[a.Rule], a.Device)
			}
		}
		return fires, errOut.String()
	}

	t.Run("database", func(t *testing.T) {
		fires, stderr := backtest(t, dbWith)
		if got := strings.Join(fires["wear_with_code"], ","); got != "fridge-2" {
			t.Errorf("wear_with_code fired on %q, want fridge-2 (the one drift with its error code)", got)
		}
		if got := strings.Join(fires["new_compressor"], ","); got != "fridge-1,fridge-3" {
			t.Errorf("new_compressor fired on %q, want fridge-1,fridge-3 (the replacements in the database)", got)
		}
		if !strings.Contains(stderr, "2 maintenance record(s) from the database") {
			t.Errorf("stderr does not say where maintenance came from:\n%s", stderr)
		}
	})
	t.Run("file", func(t *testing.T) {
		fires, stderr := backtest(t, dbWith, "--maintenance", maintFile)
		if got := strings.Join(fires["new_compressor"], ","); got != "fridge-1" {
			t.Errorf("new_compressor fired on %q, want fridge-1 (the file's replacement, not the database's)", got)
		}
		if !strings.Contains(stderr, "1 maintenance record(s) from "+maintFile) {
			t.Errorf("stderr:\n%s", stderr)
		}
	})
	t.Run("one device", func(t *testing.T) {
		fires, _ := backtest(t, dbWith, "--device", "fridge-3")
		if got := strings.Join(fires["new_compressor"], ","); got != "fridge-3" {
			t.Errorf("new_compressor fired on %q with --device fridge-3", got)
		}
	})
	t.Run("no database", func(t *testing.T) {
		fires, stderr := backtest(t, filepath.Join(t.TempDir(), "absent.db"))
		if len(fires["new_compressor"]) != 0 || strings.Join(fires["wear_with_code"], ",") != "fridge-2" {
			t.Errorf("fires %v, want only wear_with_code on fridge-2", fires)
		}
		if !strings.Contains(stderr, "0 maintenance record(s) from nowhere (no database at") {
			t.Errorf("stderr:\n%s", stderr)
		}
	})
	t.Run("bad file", func(t *testing.T) {
		bad := writeBacktestFile(t, "bad.csv", "device_id,time,component,kind\nfridge-1,yesterday,compressor,replaced\n")
		var out, errOut bytes.Buffer
		env := envMap(map[string]string{"PROACTIVE_INFLUX_URL": influx.URL(), "PROACTIVE_INFLUX_BUCKET": influx.Bucket(), "PROACTIVE_DB": dbWith})
		err := run(t.Context(), []string{"proactive", "rules", "backtest", "--rules", ruleFile, "--maintenance", bad}, env, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "bad.csv: line 2: time:") {
			t.Errorf("error %v, want the file's line and column", err)
		}
	})
	t.Run("score", func(t *testing.T) {
		truth := writeBacktestFile(t, "truth.csv", "device,model,component,fault,shape,onset,breakdown,then,time\n"+
			"fridge-2,fridge-a1,compressor,wear,linear,"+start.Add(36*time.Hour).Format(time.RFC3339)+","+
			start.Add(70*time.Hour).Format(time.RFC3339)+",stay,"+start.Add(70*time.Hour).Format(time.RFC3339)+"\n")
		var out, errOut bytes.Buffer
		env := envMap(map[string]string{"PROACTIVE_INFLUX_URL": influx.URL(), "PROACTIVE_INFLUX_BUCKET": influx.Bucket(), "PROACTIVE_DB": dbWith})
		err := run(t.Context(), []string{"proactive", "simulate", "score", "--truth", truth, "--from-influx", "--rules", ruleFile,
			"--from", start.Format(time.RFC3339), "--to", end.Format(time.RFC3339), "--maintenance", maintFile, "--json"}, env, &out, &errOut)
		if err != nil {
			t.Fatalf("score: %v\nstderr:\n%s", err, errOut.String())
		}
		if !strings.Contains(errOut.String(), "1 maintenance record(s) from "+maintFile) {
			t.Errorf("stderr:\n%s", errOut.String())
		}
		var rep struct {
			Rules []struct {
				Rule     string `json:"rule"`
				Detected int    `json:"detected"`
			} `json:"rules"`
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		detected := map[string]int{}
		for _, r := range rep.Rules {
			detected[r.Rule] = r.Detected
		}
		if detected["wear_with_code"] != 1 {
			t.Errorf("score %s, want wear_with_code to detect fridge-2's fault (its error code is in InfluxDB)", out.String())
		}
		err = run(t.Context(), []string{"proactive", "simulate", "score", "--truth", truth, "--alerts", truth, "--maintenance", maintFile}, env, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "--maintenance and --rules are for --from-influx") {
			t.Errorf("--maintenance with --alerts: %v", err)
		}
	})
}
