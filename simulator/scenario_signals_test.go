package simulator_test

import (
	"strings"
	"testing"

	"github.com/proactivehq/proactive/simulator"
)

// signalsScenario is a valid scenario with events, a decoy and a repair,
// which the error cases below break.
const signalsScenario = `seed: 5
backfill: 1d
duration: 4d
models:
  - name: pump-p1
    count: 4
    id: pump-%03d
    interval: 10m
    metrics:
      vibration: {baseline: 2, noise: 0.05, decimals: 2}
    events:
      - {code: W301, severity: info, text: "controller restarted", rate: 2}
faults:
  - name: bearing_wear
    component: bearing
    devices: [pump-001]
    onset: 1d
    shape: linear
    effects:
      vibration: {add: 3}
    breakdown: {after: 2d, then: hold}
    events:
      - {code: E103, severity: error, text: "bearing overtemperature", lead: 20h, jitter: 2h, every: 5h}
    repair: {after: 12h, kind: replaced}
  - name: bearing_drift
    component: bearing
    decoy: true
    devices: [pump-002]
    onset: 1d
    shape: linear
    effects:
      vibration: {add: 3}
    breakdown: {after: 2d}
    fade: 6h
    events:
      - {code: E103, lead: 20h, probability: 0}
`

func TestScenarioSignals(t *testing.T) {
	sc := mustScenario(t, signalsScenario)
	if n := len(sc.Models[0].Events); n != 1 || sc.Models[0].Events[0].Rate != 2 {
		t.Errorf("noise events %+v", sc.Models[0].Events)
	}
	f, d := sc.Faults[0], sc.Faults[1]
	if f.Decoy || len(f.Events) != 1 || f.Events[0].Component != "bearing" || f.Events[0].Probability != 1 ||
		f.Repair == nil || f.Repair.Kind != "replaced" || f.Repair.Probability != 1 {
		t.Errorf("fault %+v, events %+v, repair %+v", f, f.Events, f.Repair)
	}
	if !d.Decoy || d.Fade.Hours() != 6 || d.Events[0].Probability != 0 || d.Repair != nil {
		t.Errorf("decoy %+v", d)
	}
}

// Bad event, decoy and repair keys are reported with their lines.
func TestScenarioSignalErrors(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(signalsScenario, old) {
			t.Fatalf("the scenario has no %q", old)
		}
		return strings.Replace(signalsScenario, old, new, 1)
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"event without code", replace("{code: E103, severity: error,", "{severity: error,"), []string{`s.yaml:23: event: code is required`}},
		{"bad event code", replace("{code: E103, severity", "{code: E 103, severity"), []string{`s.yaml:23: event: code "E 103" must match`}},
		{"event without lead", replace(`lead: 20h, jitter: 2h, `, ""), []string{`s.yaml:23: event E103: lead is required`}},
		{"unknown event key", replace("every: 5h}", "evry: 5h}"), []string{`s.yaml:23: event: unknown key "evry"`}},
		{"probability over 1", replace("probability: 0}", "probability: 2}"), []string{`s.yaml:36: event probability: must be between 0 and 1`}},
		{"bad severity", replace("severity: error", "severity: fatal"), []string{`s.yaml:23: event severity: "fatal" is not one of info, warning, error, critical`}},
		{"noise event without rate", replace(`, rate: 2}`, "}"), []string{`s.yaml:12: noise event W301: rate is required`}},
		{"noise event with lead", replace(`rate: 2}`, "rate: 2, lead: 1h}"), []string{`s.yaml:12: noise event: unknown key "lead"`}},
		{"decoy not a bool", replace("decoy: true", "decoy: yes please"), []string{`s.yaml:27: decoy: "yes please" is not true or false`}},
		{"decoy without breakdown", replace("    breakdown: {after: 2d}\n", ""), []string{`s.yaml:27: fault bearing_drift: a decoy needs breakdown: {after: DURATION}`}},
		{"decoy that stops", replace("breakdown: {after: 2d}\n", "breakdown: {after: 2d, then: stop}\n"), []string{`s.yaml:27: fault bearing_drift: a decoy does not break down`}},
		{"decoy with repair", replace("    fade: 6h\n", "    fade: 6h\n    repair: {after: 1h}\n"), []string{`s.yaml:35: fault bearing_drift: a decoy has no failure behind it to repair`}},
		{"fade without decoy", replace("    repair: {after: 12h", "    fade: 1h\n    repair: {after: 12h"), []string{`s.yaml:14: fault bearing_wear: fade is for decoys`}},
		{"repair kind", replace("kind: replaced}", "kind: inspected}"), []string{`s.yaml:24: repair kind: "inspected" is not one of replaced, repaired`}},
		{"repair of a stopped device", replace("then: hold}", "then: stop}"), []string{`s.yaml:24: fault bearing_wear: a device whose breakdown stops it is not repaired`}},
		{"avoid an unknown fault", replace("    fade: 6h\n", "    fade: 6h\n    avoid: [bearing_waer]\n"), []string{`s.yaml:35: avoid: "bearing_waer" is not the name of an earlier fault`}},
		{"unknown repair key", replace("{after: 12h,", "{aftr: 12h,"), []string{`s.yaml:24: repair: unknown key "aftr"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := simulator.ParseScenario("s.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.want) {
				t.Errorf("%d problems reported, want %d:\n%v", n, len(tc.want), err)
			}
		})
	}
}
