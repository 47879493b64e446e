package simulator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/simulator"
)

// minimal is a valid scenario that the error cases below break.
const minimal = `name: tiny
seed: 3
start: 2026-03-01T00:00:00Z
backfill: 1d
duration: 12h
speed: 600
models:
  - name: fridge-a1
    count: 3
    id: fridge-%03d
    time_zone: Europe/Berlin
    interval: 10m
    jitter: 30s
    signals:
      ambient: {baseline: 21, noise: 0.5, daily: {amplitude: 2, phase: "15:00"}, tau: 2h}
      load: {baseline: 0.5, noise: 0.1}
    metrics:
      compressor_current: {baseline: 4, noise: 0.1, spread: 0.1, load: 0.3, decimals: 2}
      duty_cycle: {baseline: 0.4, noise: 0.02, min: 0, max: 1}
faults:
  - name: compressor_wear
    component: compressor
    devices: [fridge-002]
    onset: 1d
    shape: exponential
    steepness: 3
    effects:
      compressor_current: {add: 5}
    breakdown: {after: 2d, then: pin, pin: {compressor_current: 0}}
quirks:
  - models: ["fridge-*"]
    count: 1
    clock_skew: 1m
`

func TestScenarioParse(t *testing.T) {
	sc, err := simulator.ParseScenario("tiny.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "tiny" || sc.Seed != 3 || sc.Backfill != 24*time.Hour || sc.Duration != 12*time.Hour || sc.Speed != 600 {
		t.Errorf("scenario = %+v", sc)
	}
	if !sc.Start.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("start = %v", sc.Start)
	}
	var ids []string
	for _, d := range sc.Devices() {
		ids = append(ids, d.ID+"/"+d.Model+"/"+d.TimeZone)
	}
	if got := strings.Join(ids, " "); got != "fridge-001/fridge-a1/Europe/Berlin fridge-002/fridge-a1/Europe/Berlin fridge-003/fridge-a1/Europe/Berlin" {
		t.Errorf("devices = %s", got)
	}
	m := sc.Models[0]
	if m.Interval != 10*time.Minute || m.Jitter != 30*time.Second || m.Ambient.Daily.Phase != 15*time.Hour || m.Ambient.Tau != 2*time.Hour || m.Load.Tau != time.Hour {
		t.Errorf("model = %+v", m)
	}
	if mt := m.Metrics[1]; mt.Name != "duty_cycle" || *mt.Min != 0 || *mt.Max != 1 || mt.Decimals != 3 {
		t.Errorf("metric = %+v", mt)
	}
	f := sc.Faults[0]
	if f.Shape != simulator.Exponential || f.Steepness != 3 || f.BreakdownAfter != 48*time.Hour || f.Then != simulator.Pin ||
		len(f.Pin) != 1 || f.Pin[0].Name != "compressor_current" || len(f.Effects) != 1 || f.Effects[0].Add != 5 {
		t.Errorf("fault = %+v", f)
	}
	if q := sc.Quirks[0]; q.ClockSkew != time.Minute || q.Count != 1 {
		t.Errorf("quirk = %+v", q)
	}
}

func TestScenarioBuiltinsParse(t *testing.T) {
	names := simulator.BuiltinNames()
	for _, want := range []string{"demo", "compressor_wear", "fan_bearing", "clogged_filter", "refrigerant_leak", "silent_device"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf("no built-in scenario %s among %v", want, names)
		}
	}
	for _, n := range names {
		sc, err := simulator.Builtin(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if len(sc.Devices()) == 0 || len(sc.Faults) == 0 {
			t.Errorf("%s: %d devices, %d faults", n, len(sc.Devices()), len(sc.Faults))
		}
	}
	if _, err := simulator.LoadScenario("scenarios/demo.yaml"); err != nil {
		t.Errorf("load demo from its file: %v", err)
	}
	if _, err := simulator.Builtin("nope"); err == nil || !strings.Contains(err.Error(), "demo") {
		t.Errorf("unknown built-in: %v", err)
	}
}

// Each problem is reported with the file and its line; several problems are
// reported at once.
func TestScenarioErrors(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(minimal, old) {
			t.Fatalf("the minimal scenario has no %q", old)
		}
		return strings.Replace(minimal, old, new, 1)
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top-level key", replace("speed: 600", "sped: 600"), []string{`tiny.yaml:6: scenario: unknown key "sped"`}},
		{"misspelt metric key", replace("noise: 0.02", "nois: 0.02"), []string{`tiny.yaml:19: metric duty_cycle: unknown key "nois"`}},
		{"bad duration", replace("backfill: 1d", "backfill: 1 day"), []string{`tiny.yaml:4: backfill: "1 day": unknown unit " day" (use s, m, h, d or w)`}},
		{"negative duration", replace("backfill: 1d", "backfill: -1d"), []string{`tiny.yaml:4: backfill: "-1d": negative durations are not allowed`}},
		{"unknown duration unit", replace("interval: 10m", "interval: 10y"), []string{`tiny.yaml:12: interval: "10y": unknown unit "y" (use s, m, h, d or w)`}},
		{"bad start", replace("start: 2026-03-01T00:00:00Z", "start: yesterday"), []string{`tiny.yaml:3: start: "yesterday" is neither now nor an RFC 3339 time`}},
		{"bad time zone", replace("Europe/Berlin", "Mars/Olympus"), []string{`tiny.yaml:11: time_zone: "Mars/Olympus" is not a time zone`}},
		{"bad phase", replace(`phase: "15:00"`, `phase: "3pm"`), []string{`tiny.yaml:15: signals.ambient.daily.phase: "3pm" is not a time of day`}},
		{"not a number", replace("baseline: 4,", "baseline: four,"), []string{`tiny.yaml:18: baseline: "four" is not a number`}},
		{"missing baseline", replace("{baseline: 0.4, ", "{"), []string{`tiny.yaml:19: metric duty_cycle: baseline is required`}},
		{"bad metric name", replace("duty_cycle:", "Duty-Cycle:"), []string{`tiny.yaml:19: metric "Duty-Cycle": a name must match`}},
		{"bad id pattern", replace("id: fridge-%03d", "id: fridge"), []string{`tiny.yaml:8: model fridge-a1: id "fridge" must hold one number verb`}},
		{"unknown shape", replace("shape: exponential", "shape: sawtooth"), []string{`tiny.yaml:25: shape: "sawtooth" is not one of linear, exponential, step, intermittent`}},
		{"unknown device", replace("devices: [fridge-002]", "devices: [fridge-042]"), []string{`tiny.yaml:23: fault compressor_wear: device "fridge-042" is not in the fleet`}},
		{"effect on a metric nobody sends", replace("compressor_current: {add: 5}", "fan_vibration: {add: 5}"), []string{`tiny.yaml:28: fault compressor_wear: effect on "fan_vibration", which none of its devices sends`}},
		{"effect with add and multiply", replace("{add: 5}", "{add: 5, multiply: 2}"), []string{`tiny.yaml:28: effect compressor_current: give add or multiply (one of them)`}},
		{"linear without breakdown", replace("    breakdown: {after: 2d, then: pin, pin: {compressor_current: 0}}\n", ""), []string{`tiny.yaml:21: fault compressor_wear: a fault of shape exponential needs breakdown: {after: DURATION}`}},
		{"pin without values", replace("then: pin, pin: {compressor_current: 0}", "then: pin"), []string{`tiny.yaml:29: fault compressor_wear: breakdown then pin needs pin`}},
		{"bad then", replace("then: pin,", "then: explode,"), []string{`tiny.yaml:29: breakdown then: "explode" is not one of hold, stop, pin`}},
		{"quirk count too high", replace("count: 1\n    clock_skew", "count: 9\n    clock_skew"), []string{`tiny.yaml:32: quirk: count 9 is more than the 3 devices it selects from`}},
		{"quirk glob matches nothing", replace(`models: ["fridge-*"]`, `models: ["pump-*"]`), []string{`tiny.yaml:31: quirk: selects no device`}},
		{"key given twice", replace("seed: 3\n", "seed: 3\nseed: 4\n"), []string{`tiny.yaml:3: scenario: "seed" given twice`}},
		{"wrong kind", replace("models:\n", "models: fridge\nx:\n"), []string{`tiny.yaml:7: models: want a list, got "fridge"`, `tiny.yaml:8: scenario: unknown key "x"`}},
		{"several problems at once", replace("seed: 3", "seed: -3\nspeed2: 1"), []string{`tiny.yaml:2: seed: "-3" is not a whole number`, `tiny.yaml:3: scenario: unknown key "speed2"`}},
		{"yaml syntax", "models: [", []string{`tiny.yaml: yaml: line 1`}},
		{"empty", "", []string{`tiny.yaml:1: empty scenario`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := simulator.ParseScenario("tiny.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
			// One problem, one message: no cascade of consequences.
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.want) {
				t.Errorf("%d problems reported, want %d:\n%v", n, len(tc.want), err)
			}
		})
	}
}

func TestScenarioDurations(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"0", 0, false},
		{"90s", 90 * time.Second, false},
		{"1.5h", 90 * time.Minute, false},
		{"8d", 8 * 24 * time.Hour, false},
		{"1w1d12h", 8*24*time.Hour + 12*time.Hour, false},
		{"250ms", 250 * time.Millisecond, false},
		{"", 0, true},
		{"5", 0, true},
		{"3y", 0, true},
		{"h", 0, true},
	} {
		got, err := proactive.ParseDuration(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	for _, d := range []time.Duration{0, time.Second, 90 * time.Minute, 8*24*time.Hour + 12*time.Hour + 250*time.Millisecond} {
		back, err := proactive.ParseDuration(proactive.FormatDuration(d))
		if err != nil || back != d {
			t.Errorf("FormatDuration(%v) = %q, parses back to %v, %v", d, proactive.FormatDuration(d), back, err)
		}
	}
}
