package rules_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the tests")

// scoreCase is a history with known answers: per component, a case of the
// scoring's definitions.
//   - compressor: a failure preceded by an alert 48h ahead (lead 48h), and a
//     decoy alert with no failure behind it (false: precision 0.5).
//   - fan: a failure after the period (not counted; the alert before it,
//     in the period's last horizon, is not false), and two failures of one
//     device, each with its own alert a day ahead: the first failure's
//     alert does not count for the second.
//   - door_seal: a failure before any data, with no alert (missed).
//   - valve: a failure of a component no rule watches.
func scoreCase() (alerts []proactive.Alert, failures []rules.Failure, rs []rules.ScoredRule, o rules.ScoreOptions) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	fire := func(rule, dev, comp string, at time.Duration) proactive.Alert {
		return proactive.Alert{Rule: rule, Device: proactive.DeviceID(dev), Component: comp, State: proactive.AlertFiring,
			ActiveAt: t0.Add(at), FiredAt: t0.Add(at)}
	}
	fail := func(dev, comp string, at time.Duration) rules.Failure {
		return rules.Failure{Device: proactive.DeviceID(dev), Component: comp, Time: t0.Add(at)}
	}
	alerts = []proactive.Alert{
		fire("wear", "d1", "compressor", 8*day),
		fire("wear", "d2", "compressor", 5*day),
		fire("fan_noise", "d3", "fan", 29*day),
		fire("fan_noise", "d4", "fan", 11*day),
		fire("fan_noise", "d4", "fan", 19*day),
	}
	resolved := fire("wear", "d2", "compressor", 6*day)
	resolved.State = proactive.AlertResolved
	alerts = append(alerts, resolved)
	failures = []rules.Failure{
		fail("d1", "compressor", 10*day),
		fail("d3", "fan", 40*day),
		fail("d4", "fan", 20*day),
		fail("d4", "fan", 12*day),
		fail("d5", "door_seal", time.Hour),
		fail("d6", "valve", 3*day),
	}
	rs = []rules.ScoredRule{{Name: "wear", Component: "compressor"}, {Name: "fan_noise", Component: "fan"}, {Name: "seal", Component: "door_seal"}}
	return alerts, failures, rs, rules.ScoreOptions{From: t0, To: t0.Add(30 * day)}
}

func TestScoreAlertsGolden(t *testing.T) {
	alerts, failures, rs, o := scoreCase()
	got, err := json.MarshalIndent(rules.ScoreAlerts(alerts, failures, rs, o), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "score.golden.json")
	if *updateGolden {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -run TestScoreAlertsGolden ./rules/ -update writes it)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Errorf("scores differ from %s:\n%s", golden, got)
	}
}

// TestScoreAlerts checks the golden case's answers one by one, so that the
// golden file is not trusted blindly.
func TestScoreAlerts(t *testing.T) {
	alerts, failures, rs, o := scoreCase()
	s := rules.ScoreAlerts(alerts, failures, rs, o)
	day := 24 * time.Hour
	ratio := func(p *float64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	type line struct {
		failures, detected, alerts, falseAlerts int
		recall, precision                       any
		median                                  time.Duration
	}
	got := func(sc rules.Score) line {
		return line{sc.Failures, sc.Detected, sc.Alerts, sc.FalseAlerts, ratio(sc.Recall), ratio(sc.Precision), sc.LeadMedian}
	}
	for i, want := range []line{
		{1, 1, 2, 1, 1.0, 0.5, 2 * day}, // wear
		{2, 2, 3, 0, 1.0, 1.0, day},     // fan_noise
		{1, 0, 0, 0, 0.0, nil, 0},       // seal
	} {
		if g := got(s.Rules[i]); g != want {
			t.Errorf("rule %s: %+v, want %+v", s.Rules[i].Rule, g, want)
		}
	}
	var comps []string
	for _, c := range s.Components {
		comps = append(comps, c.Component)
	}
	if want := []string{"compressor", "door_seal", "fan", "valve"}; !equalStrings(comps, want) {
		t.Errorf("components %v, want %v", comps, want)
	}
	if v := got(s.Components[3]); v != (line{1, 0, 0, 0, 0.0, nil, 0}) {
		t.Errorf("valve: %+v", v)
	}
	if f := s.Rules[0].False; len(f) != 1 || f[0].Device != "d2" {
		t.Errorf("wear's false alerts %+v, want d2's", f)
	}

	// A minimum lead of 36h misses the fan failures caught a day ahead.
	o.MinLead = 36 * time.Hour
	s = rules.ScoreAlerts(alerts, failures, rs, o)
	if g := got(s.Rules[1]); g != (line{2, 0, 3, 0, 0.0, 1.0, 0}) {
		t.Errorf("fan_noise with --min-lead 36h: %+v", g)
	}
	// A horizon of a day: wear's alert 48h ahead is too early, and so false.
	o.MinLead, o.Horizon = 0, day
	s = rules.ScoreAlerts(alerts, failures, rs, o)
	if g := got(s.Rules[0]); g != (line{1, 0, 2, 2, 0.0, 0.0, 0}) {
		t.Errorf("wear with --horizon 1d: %+v", g)
	}
}

func TestQuantile(t *testing.T) {
	ds := []time.Duration{40, 10, 30, 20}
	for q, want := range map[float64]time.Duration{0: 10, 0.5: 25, 1: 40, 0.1: 13} {
		if got := rules.Quantile(ds, q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if rules.Quantile(nil, 0.5) != 0 {
		t.Error("Quantile of none is not 0")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// With a grace, an alert soon after a failure (a device falling silent is
// seen only once it is) makes it late, not detected, and is not false.
func TestScoreAlertsGrace(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	alerts := []proactive.Alert{
		{Rule: "silent", Device: "d1", Component: "connectivity", State: proactive.AlertFiring, FiredAt: t0.Add(time.Hour)},
		{Rule: "silent", Device: "d2", Component: "connectivity", State: proactive.AlertFiring, FiredAt: t0.Add(3 * time.Hour)},
	}
	failures := []rules.Failure{{Device: "d1", Component: "connectivity", Time: t0}, {Device: "d2", Component: "connectivity", Time: t0}}
	rs := []rules.ScoredRule{{Name: "silent", Component: "connectivity"}}
	for grace, want := range map[time.Duration][3]int{0: {0, 0, 2}, 2 * time.Hour: {0, 1, 1}} {
		s := rules.ScoreAlerts(alerts, failures, rs, rules.ScoreOptions{Grace: grace}).Rules[0]
		if got := [3]int{s.Detected, s.Late, s.FalseAlerts}; got != want {
			t.Errorf("grace %v: detected, late, false %v, want %v", grace, got, want)
		}
		if grace > 0 && (!s.Outcomes[0].Late || s.Outcomes[0].Lead != -time.Hour || s.Outcomes[1].Late) {
			t.Errorf("grace %v: outcomes %+v", grace, s.Outcomes)
		}
	}
}
