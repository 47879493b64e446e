package simulator

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/proactivehq/proactive"
)

// EventSpec is a device event (an error code) a scenario emits, on the
// device's events topic: before a fault's breakdown (Fault.Events), or at
// random as noise unrelated to any fault (Model.Events).
type EventSpec struct {
	// Code is the device's code (E101): [A-Za-z0-9_.:-]{1,64}.
	Code string
	// Component, Severity and Text go into the event as they are; a
	// fault's event has the fault's component unless it names another.
	Component string
	Severity  proactive.Severity
	Text      string

	// A fault's event appears on a device with Probability (default 1),
	// first Lead before the breakdown (± Jitter, drawn per device), then
	// every Every until the breakdown when Every is set.
	Lead, Jitter time.Duration
	Probability  float64
	Every        time.Duration

	// A model's noise event comes Rate times per device-day on average,
	// at random (a Poisson process).
	Rate float64
}

// Repair is the maintenance that ends a fault: After its breakdown (after
// its onset for a fault without breakdown), with Probability (default 1)
// per device, the part is repaired or replaced, the fault's effects end,
// and a maintenance record of Kind (default replaced) is written.
type Repair struct {
	After       time.Duration
	Kind        proactive.MaintenanceKind
	Probability float64
}

// event parses one entry of a fault's events (noise false) or a model's
// (noise true).
func (w *walker) event(n *yaml.Node, where string, noise bool) EventSpec {
	e := EventSpec{Probability: 1}
	has := map[string]*yaml.Node{}
	seen := func(k string, v *yaml.Node) { has[k] = v }
	fields := []field{
		{"code", func(v *yaml.Node) { w.str(v, where+" code", &e.Code) }},
		{"component", func(v *yaml.Node) {
			w.str(v, where+" component", &e.Component)
			if e.Component != "" && !proactive.ValidMetricName(e.Component) {
				w.errf(v, "%s component: %q must match [a-z][a-z0-9_]{0,63}", where, e.Component)
			}
		}},
		{"severity", func(v *yaml.Node) {
			var s string
			w.str(v, where+" severity", &s)
			e.Severity = proactive.Severity(s)
			if !proactive.ValidEventSeverity(e.Severity) {
				w.errf(v, "%s severity: %q is not one of info, warning, error, critical", where, s)
			}
		}},
		{"text", func(v *yaml.Node) {
			w.str(v, where+" text", &e.Text)
			if len([]rune(e.Text)) > proactive.MaxEventTextLen {
				w.errf(v, "%s text: longer than %d characters", where, proactive.MaxEventTextLen)
			}
		}},
	}
	if noise {
		fields = append(fields, field{"rate", func(v *yaml.Node) {
			seen("rate", v)
			w.float(v, where+" rate", &e.Rate)
			if e.Rate <= 0 {
				w.errf(v, "%s rate: must be positive (events per device-day)", where)
			}
		}})
	} else {
		fields = append(fields,
			field{"lead", func(v *yaml.Node) { seen("lead", v); w.duration(v, where+" lead", &e.Lead) }},
			field{"jitter", func(v *yaml.Node) { w.duration(v, where+" jitter", &e.Jitter) }},
			field{"every", func(v *yaml.Node) {
				w.duration(v, where+" every", &e.Every)
				if e.Every <= 0 {
					w.errf(v, "%s every: must be positive", where)
				}
			}},
			field{"probability", func(v *yaml.Node) { w.probability(v, where+" probability", &e.Probability) }},
		)
	}
	w.mapping(n, where, fields...)
	if e.Code == "" {
		w.errf(n, "%s: code is required", where)
	} else if !proactive.ValidEventCode(e.Code) {
		w.errf(n, "%s: code %q must match [A-Za-z0-9_.:-]{1,64}", where, e.Code)
	}
	if noise && has["rate"] == nil {
		w.errf(n, "%s %s: rate is required (events per device-day)", where, e.Code)
	}
	if !noise && has["lead"] == nil {
		w.errf(n, "%s %s: lead is required (how long before the breakdown it first appears)", where, e.Code)
	}
	return e
}

func (w *walker) probability(n *yaml.Node, where string, dst *float64) {
	w.float(n, where, dst)
	if *dst < 0 || *dst > 1 {
		w.errf(n, "%s: must be between 0 and 1", where)
	}
}

func (w *walker) repair(n *yaml.Node, where string) *Repair {
	r := &Repair{Kind: proactive.MaintenanceReplaced, Probability: 1}
	w.mapping(n, where,
		field{"after", func(v *yaml.Node) { w.duration(v, where+" after", &r.After) }},
		field{"kind", func(v *yaml.Node) {
			var s string
			w.str(v, where+" kind", &s)
			r.Kind = proactive.MaintenanceKind(s)
			if r.Kind != proactive.MaintenanceReplaced && r.Kind != proactive.MaintenanceRepaired {
				w.errf(v, "%s kind: %q is not one of replaced, repaired", where, s)
			}
		}},
		field{"probability", func(v *yaml.Node) { w.probability(v, where+" probability", &r.Probability) }},
	)
	return r
}

// checkSignals checks what a fault's decoy, events and repair need of the
// rest of the fault. n is the fault's node, at the keys' nodes (nil when
// absent).
func (w *walker) checkSignals(n *yaml.Node, where string, f *Fault, decoyAt, repairAt, eventsAt *yaml.Node) {
	if f.Decoy {
		switch {
		case f.BreakdownAfter <= 0:
			w.errf(decoyAt, "%s: a decoy needs breakdown: {after: DURATION}, when its drift peaks and ends instead of breaking down", where)
		case f.Then != Hold:
			w.errf(decoyAt, "%s: a decoy does not break down: breakdown then %s is for faults", where, f.Then)
		}
		if repairAt != nil {
			w.errf(repairAt, "%s: a decoy has no failure behind it to repair", where)
		}
	} else if f.Fade > 0 && decoyAt == nil {
		w.errf(n, "%s: fade is for decoys (decoy: true)", where)
	}
	if eventsAt != nil && !f.Decoy && !f.breaks {
		w.errf(eventsAt, "%s: events precede a breakdown: give breakdown: {after: DURATION}", where)
	}
	if repairAt != nil && f.Then == Stop {
		w.errf(repairAt, "%s: a device whose breakdown stops it is not repaired in a scenario: use then hold or pin", where)
	}
}
