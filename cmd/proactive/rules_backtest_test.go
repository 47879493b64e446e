package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/rules"
)

const backtestRules = `rules:
  - name: compressor_wear
    component: compressor
    models: ["fridge-*"]
    when: avg(compressor_current, "1h") > 1.25 * avg(compressor_current, "1d")
    for: 30m
    severity: warning
    predict: forecast(compressor_current, 9.0)
    cooldown: 1w
  - name: silent_device
    component: connectivity
    when: since_seen() > duration("2h")
    severity: info
`

// backtestFleet is three days from start at 5-minute steps of fridge-0 to
// fridge-3: compressor current 4 A with a deterministic wobble; fridge-2's
// climbs from 36h on, and fridge-3 stops sending at 50h.
func backtestFleet(start time.Time) []proactive.Sample {
	var out []proactive.Sample
	for i := 0; i < 3*24*12; i++ {
		at := time.Duration(i) * 5 * time.Minute
		for d := range 4 {
			if d == 3 && at >= 50*time.Hour {
				continue
			}
			v := 4 + 0.1*float64((i*7+d*3)%5-2)
			if d == 2 && at > 36*time.Hour {
				v += (at - 36*time.Hour).Hours() * 0.12
			}
			out = append(out, proactive.Sample{Device: proactive.DeviceID(fmt.Sprintf("fridge-%d", d)), Model: "fridge-a1",
				Time: start.Add(at), Metrics: map[string]float64{"compressor_current": v}})
		}
	}
	return out
}

func writeBacktestSamples(t *testing.T, influx *testenv.InfluxServer, samples []proactive.Sample) {
	t.Helper()
	var b strings.Builder
	for _, s := range samples {
		fmt.Fprintf(&b, "telemetry,device_id=%s", s.Device)
		if s.Model != "" {
			fmt.Fprintf(&b, ",model=%s", s.Model)
		}
		sep := " "
		for k, v := range s.Metrics {
			fmt.Fprintf(&b, "%s%s=%v", sep, k, v)
			sep = ","
		}
		fmt.Fprintf(&b, " %d\n", s.Time.UnixMilli())
	}
	influx.Write(t, b.String())
}

func writeBacktestFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRulesBacktestCommand(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(72 * time.Hour)
	samples := backtestFleet(start)
	writeBacktestSamples(t, influx, samples)
	// Recent data, for a period relative to now: one device, the last day.
	now := time.Now().UTC().Truncate(5 * time.Minute)
	var recent []proactive.Sample
	for at := 24 * time.Hour; at > 0; at -= 5 * time.Minute {
		recent = append(recent, proactive.Sample{Device: "recent-1", Time: now.Add(-at), Metrics: map[string]float64{"compressor_current": 4}})
	}
	writeBacktestSamples(t, influx, recent)

	ruleFile := writeBacktestFile(t, "fleet.yaml", backtestRules)
	failures := writeBacktestFile(t, "failures.csv", fmt.Sprintf("device,time,component\n"+
		"fridge-2,%s,compressor\n"+ // caught by compressor_wear
		"fridge-0,%d,compressor\n"+ // missed (Unix ms)
		"fridge-3,%s,connectivity\n", // caught by silent_device
		start.Add(70*time.Hour).Format(time.RFC3339), start.Add(60*time.Hour).UnixMilli(), start.Add(60*time.Hour).Format(time.RFC3339)))
	getenv := envMap(map[string]string{
		"PROACTIVE_INFLUX_URL":    influx.URL(),
		"PROACTIVE_INFLUX_BUCKET": influx.Bucket(),
	})
	backtest := func(t *testing.T, args ...string) (stdout, stderr string, err error) {
		t.Helper()
		var out, errOut bytes.Buffer
		err = run(t.Context(), append([]string{"proactive", "rules", "backtest"}, args...), getenv, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	// What the same samples give in process, to compare the printed figures with.
	specs, probs := rules.LoadFiles([]string{ruleFile})
	set, probs2 := rules.Compile(specs)
	if len(probs)+len(probs2) > 0 {
		t.Fatalf("rules: %v %v", probs, probs2)
	}
	fails, err := readFailures(failures)
	if err != nil {
		t.Fatal(err)
	}
	want, err := rules.Backtest(t.Context(), set, rules.SliceSource(samples), rules.BacktestOptions{From: start, To: end, Failures: fails})
	if err != nil {
		t.Fatal(err)
	}
	if w := want.Rules[0]; w.Fires != 1 || len(w.FirstFires) != 1 || w.FirstFires[0].Device != "fridge-2" {
		t.Fatalf("fixture: compressor_wear %+v, want one fire on fridge-2", w)
	}
	if w := want.Rules[1]; w.Fires != 1 || len(w.FirstFires) != 1 || w.FirstFires[0].Device != "fridge-3" {
		t.Fatalf("fixture: silent_device %+v, want one fire on fridge-3", w)
	}

	t.Run("table", func(t *testing.T) {
		stdout, stderr, err := backtest(t, "--rules", ruleFile, "--from", start.Format(time.RFC3339), "--to", end.Format(time.RFC3339),
			"--failures", failures)
		if err != nil {
			t.Fatalf("backtest: %v\nstderr:\n%s", err, stderr)
		}
		t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
		wear, silent := want.Rules[0], want.Rules[1]
		for _, re := range []string{
			`(?m)^Backtest 2026-10-01T00:00:00Z to 2026-10-04T00:00:00Z \(3\.0 days\): ` + fmt.Sprint(len(samples)) + ` samples from 4 devices$`,
			`(?m)^rule compressor_wear \(component compressor\)\n  fires +1\n  devices +1\n` +
				`  tickets +1 +0\.33/day +1 true, 0 false\n  texts +1 +0\.33/day +1 true, 0 false\n` +
				`  detected +1 of 2 failures +recall 50%\n  alerts +1, 0 false +precision 100%\n  lead median +` +
				regexp.QuoteMeta(rules.FormatLead(wear.Score.LeadMedian)) + ` +p10 \S+, p90 \S+\n`,
			`(?m)^    DEVICE +FIRED AT +PREDICTED FAILURE IN\n    fridge-2 +` + regexp.QuoteMeta(wear.FirstFires[0].At.Format(time.RFC3339)) +
				` +` + regexp.QuoteMeta(rules.FormatLead(wear.FirstFires[0].TimeToFailure)) + `$`,
			`(?m)^rule silent_device \(component connectivity\)\n  fires +1\n  devices +1\n` +
				`  tickets +1 +0\.33/day +1 true, 0 false\n  texts +1 +0\.33/day +1 true, 0 false\n` +
				`  detected +1 of 1 failures +recall 100%\n  alerts +1, 0 false +precision 100%\n  lead median +8h4m +p10 8h4m, p90 8h4m\n`,
			`(?m)^component compressor\n  detected +1 of 2 failures +recall 50%\n`,
			`(?m)^Tickets and texts: the alerts replayed through the notifier in data time .*; 0 device\(s\) with their customers from no database .*, 4 with a synthetic customer who consents to SMS; .*$`,
			// fridge-3's last sample is at 49:55; silent after 2h, at the 51:56 tick.
			`(?m)^    fridge-3 +2026-10-03T03:56:00Z +-$`,
		} {
			if !regexp.MustCompile(re).MatchString(stdout) {
				t.Errorf("output does not match %s", re)
			}
		}
		if silent.Score.LeadMedian != 8*time.Hour+4*time.Minute {
			t.Errorf("silent_device median lead in process %v, want 8h4m", silent.Score.LeadMedian)
		}
		if !strings.Contains(stderr, fmt.Sprintf("%d samples from 4 devices replayed", len(samples))) {
			t.Errorf("stderr does not report the replay:\n%s", stderr)
		}
	})

	t.Run("json", func(t *testing.T) {
		stdout, stderr, err := backtest(t, "--rules", ruleFile, "--from", start.Format(time.RFC3339), "--to", end.Format(time.RFC3339),
			"--failures", failures, "--device", "fridge-2", "--json")
		if err != nil {
			t.Fatalf("backtest: %v\nstderr:\n%s", err, stderr)
		}
		var got struct {
			Samples int64 `json:"samples"`
			Devices int   `json:"devices"`
			Scored  bool  `json:"scored"`
			Rules   []struct {
				Rule        string   `json:"rule"`
				Fires       int      `json:"fires"`
				Failures    int      `json:"failures"`
				Detected    int      `json:"detected"`
				Recall      *float64 `json:"recall"`
				LeadMedianS float64  `json:"lead_median_s"`
			} `json:"rules"`
			Alerts []struct {
				Rule    string    `json:"rule"`
				Device  string    `json:"device_id"`
				State   string    `json:"state"`
				FiredAt time.Time `json:"fired_at"`
			} `json:"alerts"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, stdout)
		}
		if got.Samples != 3*24*12 || got.Devices != 1 || !got.Scored || len(got.Rules) != 2 {
			t.Fatalf("report %+v, want fridge-2's %d samples and two rules", got, 3*24*12)
		}
		if r := got.Rules[0]; r.Rule != "compressor_wear" || r.Fires != 1 || r.Detected != 1 || r.Failures != 2 || r.Recall == nil || *r.Recall != 0.5 ||
			r.LeadMedianS != want.Rules[0].Score.LeadMedian.Seconds() {
			t.Errorf("compressor_wear %+v", r)
		}
		if len(got.Alerts) == 0 || got.Alerts[0].Device != "fridge-2" || got.Alerts[0].State != "firing" || !got.Alerts[0].FiredAt.Equal(want.Rules[0].FirstFires[0].At) {
			t.Errorf("alerts %+v, want fridge-2's firing first", got.Alerts)
		}
		for _, a := range got.Alerts {
			if a.Device != "fridge-2" {
				t.Errorf("alert of %s with --device fridge-2", a.Device)
			}
		}
	})

	t.Run("compare", func(t *testing.T) {
		dir := t.TempDir()
		// B: a stricter compressor_wear, and no silent_device.
		variant := "rules:\n  - name: compressor_wear\n    component: compressor\n" +
			"    when: avg(compressor_current, \"1h\") > 2 * avg(compressor_current, \"1d\")\n    severity: warning\n" +
			"  - name: door_left_open\n    component: door\n    when: compressor_current > 100\n    severity: info\n"
		if err := os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(variant), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"--rules", ruleFile, "--from", start.Format(time.RFC3339), "--to", end.Format(time.RFC3339),
			"--failures", failures, "--compare", dir, "--no-save"}
		stdout, stderr, err := backtest(t, args...)
		if err != nil {
			t.Fatalf("backtest: %v\nstderr:\n%s", err, stderr)
		}
		for _, re := range []string{
			`(?m)^Comparison: A = ` + regexp.QuoteMeta(ruleFile) + `, B = ` + regexp.QuoteMeta(dir) + `$`,
			`(?m)^RULE +FIRES A +FIRES B +TICKETS A +TICKETS B +TEXTS A +TEXTS B +RECALL A +RECALL B +PRECISION A +PRECISION B +FALSE A +FALSE B +LEAD A +LEAD B$`,
			`(?m)^compressor_wear +1 +0 +1 +0 +1 +0 +50% +0% +100% +- +0 +0 +\S+ +-$`,
			`(?m)^silent_device +1 +- +1 +- +1 +- +100% +- +100% +- +0 +- +8h4m +-$`,
			`(?m)^door_left_open +- +0 +- +0 +- +0 +- +- +- +- +- +0 +- +-$`,
		} {
			if !regexp.MustCompile(re).MatchString(stdout) {
				t.Errorf("output does not match %s\n%s", re, stdout)
			}
		}
		stdout, stderr, err = backtest(t, append(args, "--json")...)
		if err != nil {
			t.Fatalf("backtest: %v\nstderr:\n%s", err, stderr)
		}
		var got struct {
			Label   string `json:"label"`
			Compare struct {
				Label string `json:"label"`
				Rules []struct {
					Rule  string `json:"rule"`
					Fires int    `json:"fires"`
				} `json:"rules"`
			} `json:"compare"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatal(err)
		}
		if got.Label != ruleFile || got.Compare.Label != dir || len(got.Compare.Rules) != 2 || got.Compare.Rules[1].Rule != "door_left_open" {
			t.Errorf("JSON comparison %+v", got)
		}
		if _, _, err := backtest(t, "--rules", ruleFile, "--compare", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no rules in") {
			t.Errorf("--compare of an empty directory: %v", err)
		}
	})

	// The tickets and texts are counted on the configured database's
	// devices and customers: fridge-2's customer never consented, so its
	// ticket texts nobody; fridge-3's did.
	t.Run("registry", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "proactive.db")
		reg, err := devices.Open(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range []string{"ann", "bob"} {
			if _, err := reg.CreateCustomer(t.Context(), proactive.Customer{ID: c, Name: c, Phone: fmt.Sprintf("+3360000000%d", i)}); err != nil {
				t.Fatal(err)
			}
			if _, err := reg.CreateDevice(t.Context(), proactive.Device{ID: proactive.DeviceID(fmt.Sprintf("fridge-%d", i+2)), Model: "fridge-a1",
				CustomerID: c, TimeZone: "Europe/Paris"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := reg.RecordConsent(t.Context(), "bob", proactive.ConsentEvent{Granted: true, Method: proactive.ConsentWritten, Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		reg.Close()
		var out, errOut bytes.Buffer
		env := envMap(map[string]string{"PROACTIVE_INFLUX_URL": influx.URL(), "PROACTIVE_INFLUX_BUCKET": influx.Bucket(), "PROACTIVE_DB": db})
		err = run(t.Context(), []string{"proactive", "rules", "backtest", "--rules", ruleFile, "--from", start.Format(time.RFC3339),
			"--to", end.Format(time.RFC3339), "--no-save"}, env, &out, &errOut)
		if err != nil {
			t.Fatalf("backtest: %v\nstderr:\n%s", err, errOut.String())
		}
		for _, re := range []string{
			`(?m)^Tickets and texts: .*; 2 device\(s\) with their customers from the database, 2 with a synthetic customer who consents to SMS; .*cancelled \(no failures to settle them by\)`,
			`(?m)^rule compressor_wear \(component compressor\)\n  fires +1\n  devices +1\n  tickets +1 +0\.33/day\n  texts +0 +0\.00/day\n`,
			`(?m)^rule silent_device \(component connectivity\)\n  fires +1\n  devices +1\n  tickets +1 +0\.33/day\n  texts +1 +0\.33/day\n`,
		} {
			if !regexp.MustCompile(re).MatchString(out.String()) {
				t.Errorf("output does not match %s\n%s", re, out.String())
			}
		}
	})

	t.Run("relative period and rules from the config", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(backtestRules), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		env := envMap(map[string]string{
			"PROACTIVE_INFLUX_URL": influx.URL(), "PROACTIVE_INFLUX_BUCKET": influx.Bucket(),
			"PROACTIVE_RULES": filepath.Join(dir, "*.yaml"),
		})
		if err := run(t.Context(), []string{"proactive", "rules", "backtest", "--from", "-2d"}, env, &out, &errOut); err != nil {
			t.Fatalf("backtest: %v\nstderr:\n%s", err, errOut.String())
		}
		if !regexp.MustCompile(`(?m)^Backtest \S+ to \S+ \(2\.0 days\): 288 samples from 1 devices$`).MatchString(out.String()) {
			t.Errorf("output:\n%s", out.String())
		}
	})

	t.Run("errors", func(t *testing.T) {
		bad := writeBacktestFile(t, "bad.csv", "device,time,component\nfridge 1,yesterday,\n")
		badRules := writeBacktestFile(t, "bad.yaml", "rules:\n  - name: x\n    component: c\n    severity: info\n    when: nope(\n")
		for _, c := range []struct {
			args []string
			want []string
		}{
			{[]string{"--rules", ruleFile, "--from", "last week", "--to", "-1x"}, []string{`--from: "last week": want now`, `--to: "-1x"`}},
			{[]string{"--rules", ruleFile, "--from", "-1d", "--to", "-2d"}, []string{"is not before --to"}},
			{[]string{"--rules", ruleFile, "--failures", bad}, []string{`bad.csv:2: device "fridge 1"`, "bad.csv:2: component is empty", `bad.csv:2: time "yesterday"`}},
			{[]string{"--rules", badRules}, []string{"bad.yaml:5"}},
			{[]string{"--rules", filepath.Join(t.TempDir(), "*.yaml")}, []string{"no rules in"}},
			{[]string{"--rules", ruleFile, "--device", "a b"}, []string{`--device "a b"`}},
		} {
			_, _, err := backtest(t, c.args...)
			if err == nil {
				t.Errorf("%q: no error", c.args)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q: error %q does not say %q", c.args, err, w)
				}
			}
		}
	})
}
