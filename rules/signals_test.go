package rules_test

import (
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// input is one thing a device reports in a signals test: an event (code),
// a maintenance (maint, the component) or a sample (metric value v);
// holds is whether the rule's condition must hold after it.
type input struct {
	at    time.Duration
	code  string
	maint string
	v     float64
	holds bool
}

// runSignals feeds inputs to a fresh evaluator of one rule with for 0, so
// that the rule's alert fires exactly while its condition holds.
func runSignals(t *testing.T, spec rules.Spec, inputs []input) {
	t.Helper()
	spec.Name = "r"
	ev := rules.NewEvaluator(mustCompile(t, spec), nil, time.Hour)
	for i, in := range inputs {
		at := t0.Add(in.at)
		switch {
		case in.code != "":
			ev.ObserveEvent(proactive.Event{Device: "d1", Time: at, Code: in.code})
		case in.maint != "":
			ev.ObserveMaintenance(proactive.Maintenance{ID: int64(i + 1), Device: "d1", Time: at, Component: in.maint, Kind: proactive.MaintenanceReplaced})
			continue
		default:
			ev.Observe(proactive.Sample{Device: "d1", Model: "m", Time: at, Metrics: map[string]float64{"temp": in.v}})
		}
		if got := len(ev.Alerts()) > 0; got != in.holds {
			t.Errorf("%s: after input %d (at %v): holds %v, want %v", spec.When, i, in.at, got, in.holds)
		}
	}
}

func TestEventFunctions(t *testing.T) {
	h, m := time.Hour, time.Minute
	tests := []struct {
		when   string
		inputs []input
	}{
		// The window is (now-1h, now]: an event exactly 1h old is out.
		{`events("E101", "1h") >= 2`, []input{
			{at: 0, code: "E101"}, {at: 30 * m, code: "E101", holds: true},
			{at: 59 * m, v: 1, holds: true}, {at: h, v: 1}, {at: h + m, code: "E101", holds: true},
		}},
		{`events("E101", "1h") == 1`, []input{
			{at: 0, code: "E101", holds: true}, {at: h - 1, v: 1, holds: true}, {at: h, v: 1},
		}},
		// A prefix counts every code it starts; another code does not count.
		{`events("E1*", "2h") >= 3`, []input{
			{at: 0, code: "E101"}, {at: m, code: "E2"}, {at: 2 * m, code: "E17"},
			{at: 3 * m, code: "E1", holds: true}, {at: 2*h + m, v: 1}, {at: 2*h + 2*m, v: 1},
		}},
		// "never": no event yet is 876000h.
		{`since_event("E7") == duration("876000h")`, []input{
			{at: 0, v: 1, holds: true}, {at: m, code: "E8", holds: true}, {at: 2 * m, code: "E7"},
		}},
		{`since_event("E7") < duration("2h")`, []input{
			{at: 0, v: 1}, {at: m, code: "E7", holds: true}, {at: 2*h + m - 1, v: 1, holds: true}, {at: 2*h + m, v: 1},
		}},
		{`since_event("E7*") <= duration("1m")`, []input{
			{at: 0, code: "E6"}, {at: 10 * m, code: "E70", holds: true}, {at: 11 * m, v: 1, holds: true}, {at: 12 * m, v: 1},
		}},
		{`since_maintenance() == duration("876000h")`, []input{
			{at: 0, v: 1, holds: true}, {at: m, maint: "fan"}, {at: 2 * m, v: 1, holds: true},
			{at: 3 * m, maint: "compressor"}, {at: 4 * m, v: 1},
		}},
		{`since_maintenance("fan") >= duration("1h") && since_maintenance("fan") < duration("2h")`, []input{
			{at: 0, maint: "fan"}, {at: h - 1, v: 1}, {at: h, v: 1, holds: true}, {at: 2 * h, v: 1},
		}},
		{`sqrt(temp) == 3 && log(exp(2)) == 2 && sqrt(4) == 2`, []input{{at: 0, v: 9, holds: true}, {at: m, v: 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) { runSignals(t, rules.Spec{When: tt.when}, tt.inputs) })
	}
}

// A rule with reset_on_maintenance sees only samples after the replacement,
// even samples from before it that arrive late; without it, every sample.
func TestResetOnMaintenance(t *testing.T) {
	m := time.Minute
	for _, reset := range []bool{false, true} {
		spec := rules.Spec{When: `count(temp, "1h") >= 3 || avg(temp, "1h") > 5`, ResetOnMaintenance: reset}
		late := !reset // without reset the late old sample makes the count 3
		runSignals(t, spec, []input{
			{at: 0, v: 1}, {at: m, v: 1}, {at: 2 * m, v: 1, holds: true},
			{at: 3 * m, maint: "compressor"},
			{at: 4 * m, v: 1, holds: !reset},
			{at: 5 * m, v: 1, holds: !reset},
			{at: 150 * time.Second, v: 9, holds: late}, // late, from before the replacement
			{at: 6 * m, v: 1, holds: true},
		})
		// Maintenance of another component resets nothing.
		runSignals(t, spec, []input{
			{at: 0, v: 1}, {at: m, v: 1}, {at: 2 * m, maint: "fan"}, {at: 3 * m, v: 1, holds: true},
		})
	}
}

func TestSignalFunctionsRefused(t *testing.T) {
	tests := []struct{ when, want string }{
		{`events("E1") > 0`, "events takes (code, window)"},
		{`events(E1, "1h") > 0`, "the code must be an event code in quotes"},
		{`events("E 1", "1h") > 0`, "the code must be an event code"},
		{`events("E1", "0s") > 0`, "must be longer than zero"},
		{`since_event() > duration("1h")`, "since_event takes one event code"},
		{`since_event("E1") > 5`, "mismatched types"},
		{`since_maintenance("fan", "x") > duration("1h")`, "since_maintenance takes"},
		{`since_maintenance(fan) > duration("1h")`, "the component must be a name in quotes"},
		{`sqrt(1, 2) > 0`, "sqrt takes one number"},
		{`log("x") > 0`, "log"},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			_, probs := rules.Compile([]rules.Spec{{Name: "r", Component: "c", Severity: proactive.SeverityWarning,
				When: tt.when, File: "f.yaml", Line: 3, WhenLine: 4}})
			if len(probs) != 1 || !strings.Contains(probs[0].Error(), tt.want) || !strings.HasPrefix(probs[0].Error(), "f.yaml:4") {
				t.Errorf("problems %v, want one at f.yaml:4 containing %q", probs, tt.want)
			}
		})
	}
}
