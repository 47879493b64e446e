package rules_test

import (
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func mustCompile(tb testing.TB, specs ...rules.Spec) *rules.RuleSet {
	tb.Helper()
	for i := range specs {
		if specs[i].Severity == "" {
			specs[i].Severity = proactive.SeverityWarning
		}
		if specs[i].Component == "" {
			specs[i].Component = "compressor"
		}
		if specs[i].File == "" {
			specs[i].File, specs[i].Line, specs[i].WhenLine = "test.yaml", 1+10*i, 2+10*i
		}
	}
	set, probs := rules.Compile(specs)
	if len(probs) > 0 {
		tb.Fatalf("compile: %v", probs)
	}
	return set
}

// step is one sample of a time-stepping test and what it must cause.
type step struct {
	at    time.Duration // since t0
	value float64
	want  string // "" or "rule:state", comma-separated
}

func run(t *testing.T, ev *rules.Evaluator, dev, metric string, steps []step) {
	t.Helper()
	for _, s := range steps {
		got := ev.Observe(proactive.Sample{Device: proactive.DeviceID(dev), Model: "fridge-a1", Time: t0.Add(s.at),
			Metrics: map[string]float64{metric: s.value}})
		if g := describe(got); g != s.want {
			t.Errorf("at %v value %v: alerts %q, want %q", s.at, s.value, g, s.want)
		}
	}
}

func describe(alerts []proactive.Alert) string {
	var parts []string
	for _, a := range alerts {
		parts = append(parts, a.Rule+":"+string(a.State))
	}
	return strings.Join(parts, ",")
}

func TestLifecycleForAndClearFor(t *testing.T) {
	set := mustCompile(t, rules.Spec{Name: "hot", When: "temp > 10", For: 30 * time.Minute, ClearFor: 10 * time.Minute, ClearForSet: true})
	ev := rules.NewEvaluator(set, nil, time.Minute)
	m := time.Minute
	run(t, ev, "f1", "temp", []step{
		{0, 5, ""},
		{5 * m, 11, ""},  // pending from 5m
		{20 * m, 12, ""}, // held 15m
		{34 * m, 12, ""}, // held 29m
		{35 * m, 12, "hot:firing"},
		{40 * m, 9, ""},  // false since 40m
		{45 * m, 11, ""}, // true again: the clearing restarts
		{50 * m, 9, ""},  // false since 50m
		{59 * m, 9, ""},  // 9m false
		{60 * m, 9, "hot:resolved"},
		{61 * m, 9, ""},
	})
}

func TestLifecyclePendingResetsOnFalse(t *testing.T) {
	set := mustCompile(t, rules.Spec{Name: "hot", When: "temp > 10", For: 30 * time.Minute})
	ev := rules.NewEvaluator(set, nil, time.Minute)
	m := time.Minute
	run(t, ev, "f1", "temp", []step{
		{0, 11, ""},
		{25 * m, 11, ""},
		{26 * m, 5, ""},  // back to inactive
		{30 * m, 11, ""}, // pending anew
		{59 * m, 11, ""},
		{60 * m, 11, "hot:firing"},
		{70 * m, 5, ""}, // clear_for defaults to for: 30m
		{99 * m, 5, ""},
		{100 * m, 5, "hot:resolved"},
	})
}

func TestLifecycleZeroForFiresAtOnce(t *testing.T) {
	set := mustCompile(t, rules.Spec{Name: "hot", When: "temp > 10"})
	ev := rules.NewEvaluator(set, nil, time.Minute)
	run(t, ev, "f1", "temp", []step{
		{0, 11, "hot:firing"},
		{time.Minute, 11, ""},
		{2 * time.Minute, 1, "hot:resolved"},
	})
}

func TestLifecycleCooldown(t *testing.T) {
	set := mustCompile(t, rules.Spec{Name: "hot", When: "temp > 10", Cooldown: 24 * time.Hour})
	ev := rules.NewEvaluator(set, nil, time.Minute)
	h := time.Hour
	run(t, ev, "f1", "temp", []step{
		{0, 11, "hot:firing"},
		{1 * h, 1, "hot:resolved"},
		{2 * h, 11, ""},  // within the cooldown: waits pending
		{23 * h, 11, ""}, // still within
		{24 * h, 11, "hot:firing"},
	})
	// The alert carries the cooldown, so that the ticket store can hold it
	// across restarts.
	got := ev.Observe(proactive.Sample{Device: "f2", Time: t0, Metrics: map[string]float64{"temp": 11}})
	if len(got) != 1 || got[0].Cooldown != 24*h {
		t.Errorf("alerts %+v: want one carrying the rule's 24h cooldown", got)
	}
}

func TestOneFiringAlertPerDeviceAndComponent(t *testing.T) {
	set := mustCompile(t,
		rules.Spec{Name: "hot", When: "temp > 10"},
		rules.Spec{Name: "very_hot", When: "temp > 20"},
		rules.Spec{Name: "door", Component: "door", When: "temp > 20"},
	)
	ev := rules.NewEvaluator(set, nil, time.Minute)
	m := time.Minute
	run(t, ev, "f1", "temp", []step{
		{0, 25, "hot:firing,door:firing"}, // very_hot waits: compressor already has a firing alert
		{1 * m, 15, "door:resolved"},
		{2 * m, 5, "hot:resolved"},
		{3 * m, 25, "hot:firing,door:firing"},
	})
	// Devices are independent.
	run(t, ev, "f2", "temp", []step{{4 * m, 25, "hot:firing,door:firing"}})
}

func TestModelsGlob(t *testing.T) {
	set := mustCompile(t, rules.Spec{Name: "hot", When: "temp > 10", Models: []string{"fridge-*"}})
	ev := rules.NewEvaluator(set, nil, time.Minute)
	got := ev.Observe(proactive.Sample{Device: "b1", Model: "boiler-x", Time: t0, Metrics: map[string]float64{"temp": 50}})
	if len(got) != 0 {
		t.Errorf("rule for fridge-* fired on a boiler: %v", describe(got))
	}
	got = ev.Observe(proactive.Sample{Device: "f1", Model: "fridge-a1", Time: t0, Metrics: map[string]float64{"temp": 50}})
	if describe(got) != "hot:firing" {
		t.Errorf("rule for fridge-* did not fire on fridge-a1: %q", describe(got))
	}
}

func TestWindowFunctionsInRules(t *testing.T) {
	set := mustCompile(t,
		rules.Spec{Name: "wear", When: `avg(current, "1h") > 1.25 * avg(current, "1d")`},
		rules.Spec{Name: "count", Component: "c2", When: `count(current, "10m") >= 3 && max(current, "10m") - min(current, "10m") > 4`},
	)
	ev := rules.NewEvaluator(set, nil, time.Minute)
	// A day at 4 A, then an hour at 6 A: the hourly mean (6) exceeds 1.25 x
	// the daily mean (about 4.08) as soon as the last hour is mostly 6.
	var fired []time.Duration
	for i := range 25 * 60 {
		v := 4.0
		if i >= 24*60 {
			v = 6
		}
		at := time.Duration(i) * time.Minute
		for _, a := range ev.Observe(proactive.Sample{Device: "f1", Time: t0.Add(at), Metrics: map[string]float64{"current": v}}) {
			if a.Rule == "wear" && a.State == proactive.AlertFiring {
				fired = append(fired, at)
			}
		}
	}
	if len(fired) != 1 || fired[0] < 24*time.Hour || fired[0] > 24*time.Hour+40*time.Minute {
		t.Errorf("wear fired at %v, want once, within 40m of the step at 24h", fired)
	}
	// Three samples in 10 minutes spanning more than 4.
	got := ""
	for i, v := range []float64{1, 3, 6} {
		got = describe(ev.Observe(proactive.Sample{Device: "f2", Time: t0.Add(time.Duration(i) * time.Minute), Metrics: map[string]float64{"current": v}}))
	}
	if got != "count:firing" {
		t.Errorf("count/max/min rule: %q, want count:firing", got)
	}
}

func TestPredictGivesTimeToFailure(t *testing.T) {
	set := mustCompile(t, rules.Spec{Name: "wear",
		When:    `forecast(current, 9.0) < duration("48h")`,
		Predict: `forecast(current, 9.0)`,
		Summary: `{{ .Device.ID }}: current {{ printf "%.1f" .Metrics.current }} A, failure in {{ .TimeToFailure }}`})
	ev := rules.NewEvaluator(set, nil, time.Minute)
	// Rising 0.1 A per hour from 4 A: reaches 9 A at 50h.
	var alert *proactive.Alert
	for i := 0; i <= 48 && alert == nil; i++ {
		at := time.Duration(i) * time.Hour
		for _, a := range ev.Observe(proactive.Sample{Device: "f1", Time: t0.Add(at), Metrics: map[string]float64{"current": 4 + 0.1*float64(i)}}) {
			alert = &a
		}
	}
	if alert == nil {
		t.Fatal("no alert")
	}
	// It fires once the crossing is under 48h away, at about hour 3.
	elapsed := alert.FiredAt.Sub(t0)
	wantTTF := 50*time.Hour - elapsed
	if d := alert.TimeToFailure - wantTTF; d < -time.Minute || d > time.Minute {
		t.Errorf("time to failure %v at %v, want about %v", alert.TimeToFailure, elapsed, wantTTF)
	}
	if !strings.HasPrefix(alert.Summary, "f1: current ") || !strings.Contains(alert.Summary, "failure in 47 hours") {
		t.Errorf("summary %q", alert.Summary)
	}
}

func TestSinceSeenOnTick(t *testing.T) {
	set := mustCompile(t, rules.Spec{Name: "silent", Component: "connectivity", When: `since_seen() > duration("2h")`})
	ev := rules.NewEvaluator(set, nil, time.Minute)
	ev.Observe(proactive.Sample{Device: "f1", Time: t0, Metrics: map[string]float64{"temp": 4}})
	if got := describe(ev.Tick(t0.Add(time.Hour))); got != "" {
		t.Errorf("after 1h of silence: %q", got)
	}
	if got := describe(ev.Tick(t0.Add(2*time.Hour + time.Minute))); got != "silent:firing" {
		t.Errorf("after 2h01m of silence: %q, want silent:firing", got)
	}
	got := ev.Observe(proactive.Sample{Device: "f1", Time: t0.Add(3 * time.Hour), Metrics: map[string]float64{"temp": 4}})
	if describe(got) != "silent:resolved" {
		t.Errorf("when it speaks again: %q, want silent:resolved", describe(got))
	}
}

// History that arrives after a tick of the clock (a fleet catching up with
// the wall clock, a backfill) still fires the rules on data: the tick's
// wall time holds back only the since_seen() rules it evaluated.
func TestHistoryAfterTickStillEvaluates(t *testing.T) {
	set := mustCompile(t,
		rules.Spec{Name: "hot", When: "temp > 10", For: 30 * time.Minute},
		rules.Spec{Name: "silent", Component: "connectivity", When: `since_seen() > duration("2h")`},
	)
	ev := rules.NewEvaluator(set, nil, time.Minute)
	wall := t0.Add(24 * time.Hour)
	ev.Observe(proactive.Sample{Device: "f1", Time: t0, Metrics: map[string]float64{"temp": 4}})
	ev.Tick(wall) // silent since t0: fires at the wall clock
	var got []string
	for i := 1; i <= 6; i++ {
		at := t0.Add(time.Duration(i) * 10 * time.Minute)
		if d := describe(ev.Observe(proactive.Sample{Device: "f1", Time: at, Metrics: map[string]float64{"temp": 12}})); d != "" {
			got = append(got, d)
		}
	}
	if strings.Join(got, " ") != "hot:firing" {
		t.Errorf("history after the tick gave %q, want hot:firing", got)
	}
}

func TestNoDataDoesNotFire(t *testing.T) {
	set := mustCompile(t,
		rules.Spec{Name: "a", When: `avg(pressure, "1h") < 1`},
		rules.Spec{Name: "b", Component: "b", When: `pressure < 1`},
		rules.Spec{Name: "nodata", Component: "c", When: `count(pressure, "1h") == 0`},
	)
	ev := rules.NewEvaluator(set, nil, time.Minute)
	got := ev.Observe(proactive.Sample{Device: "f1", Time: t0, Metrics: map[string]float64{"temp": 4}})
	if describe(got) != "nodata:firing" {
		t.Errorf("a device without pressure data: %q, want only nodata:firing", describe(got))
	}
}

func TestCompileProblems(t *testing.T) {
	cases := []struct {
		name, when, predict string
		want                string
	}{
		{"unknown function", `foo(temp) > 1`, "", `unknown function "foo"`},
		{"window not literal", `avg(temp, w) > 1`, "", "window must be a duration in quotes"},
		{"bad window", `avg(temp, "1y") > 1`, "", `window "1y"`},
		{"too few args", `avg(temp) > 1`, "", "avg takes (metric, window)"},
		{"not a bool", `avg(temp, "1h")`, "", "bool"},
		{"type error", `avg(temp, "1h") > "hot"`, "", "mismatched types"},
		{"bad name", `Temp > 1`, "", `unknown name "Temp"`},
		{"syntax", `temp >`, "", "unexpected"},
		{"predict not duration", `temp > 1`, `avg(temp, "1h")`, "predict must give a duration"},
		{"percentile p", `percentile(temp, "1h", 101) > 1`, "", "p must be a number from 0 to 100"},
		{"device attr", `device > 1`, "", "device is read as device.model"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, probs := rules.Compile([]rules.Spec{{Name: "r", Component: "c", Severity: "warning",
				When: tc.when, Predict: tc.predict, File: "rules/x.yaml", Line: 3, WhenLine: 5, PredictLine: 7}})
			if len(probs) != 1 {
				t.Fatalf("problems %v, want 1", probs)
			}
			msg := probs[0].Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("problem %q does not say %q", msg, tc.want)
			}
			wantPrefix := "rules/x.yaml:5:"
			if tc.predict != "" {
				wantPrefix = "rules/x.yaml:7:"
			}
			if !strings.HasPrefix(msg, wantPrefix) {
				t.Errorf("problem %q does not start with %s", msg, wantPrefix)
			}
		})
	}
}

func TestDeviceAttributes(t *testing.T) {
	set := mustCompile(t, rules.Spec{Name: "old", When: `device.model == "fridge-a1" && device.age_days > 365 && temp > 1`})
	lookup := func(id proactive.DeviceID) (rules.DeviceInfo, bool) {
		return rules.DeviceInfo{Model: "fridge-a1", AgeDays: 400}, id == "f1"
	}
	ev := rules.NewEvaluator(set, lookup, time.Minute)
	if got := describe(ev.Observe(proactive.Sample{Device: "f1", Time: t0, Metrics: map[string]float64{"temp": 4}})); got != "old:firing" {
		t.Errorf("registered old device: %q", got)
	}
	if got := describe(ev.Observe(proactive.Sample{Device: "f2", Model: "fridge-a1", Time: t0, Metrics: map[string]float64{"temp": 4}})); got != "" {
		t.Errorf("device of unknown age: %q (age_days is NaN, so the rule must not fire)", got)
	}
}

func TestDurationTakesRuleUnits(t *testing.T) {
	set := mustCompile(t, rules.Spec{Name: "silent", When: `since_seen() > duration("1d") && since_seen() < duration("1w")`})
	ev := rules.NewEvaluator(set, nil, time.Minute)
	ev.Observe(proactive.Sample{Device: "f1", Time: t0, Metrics: map[string]float64{"temp": 4}})
	if got := describe(ev.Tick(t0.Add(25 * time.Hour))); got != "silent:firing" {
		t.Errorf("after 25h: %q, want silent:firing", got)
	}
	if _, probs := rules.Compile([]rules.Spec{{Name: "r", Component: "c", Severity: "info", When: `since_seen() > duration("3x")`, File: "f", Line: 1, WhenLine: 1}}); len(probs) != 1 || !strings.Contains(probs[0].Msg, `duration("3x")`) {
		t.Errorf("bad duration literal: %v", probs)
	}
}
