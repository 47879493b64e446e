package simulator_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/simulator"
)

// fault is a ground-truth record of a compressor wear on dev from onset
// (hours after start) to breakdown (0: none).
func fault(dev, component string, onset, breakdown float64) simulator.Truth {
	t := simulator.Truth{Device: dev, Model: "fridge-a1", Component: component, Fault: component + "_fault", Shape: simulator.Linear,
		Onset: start.Add(hours(onset)), Then: simulator.Hold}
	if breakdown > 0 {
		t.Breakdown = start.Add(hours(breakdown))
	}
	return t
}

func hours(h float64) time.Duration { return time.Duration(h * float64(time.Hour)) }

func alert(rule, dev, component string, at float64) proactive.Alert {
	return proactive.Alert{Rule: rule, Device: proactive.DeviceID(dev), Component: component, State: proactive.AlertFiring,
		FiredAt: start.Add(hours(at))}
}

// Each fault gets the outcome the timing of the alerts gives it, scored as
// rules backtest --failures scores (rules.ScoreAlerts: a fault fails at its
// breakdown, or at its onset without one); alerts no fault follows within
// the horizon are false, and the rules' precision, recall and lead times
// follow.
func TestScore(t *testing.T) {
	rules := []simulator.RuleInfo{{Name: "compressor_wear", Component: "compressor"}, {Name: "fan_bearing", Component: "fan"}}
	const noFan = "fan_bearing alerts 0 false 0 failures 0 detected 0 precision - recall - median 0s"
	for _, tc := range []struct {
		name   string
		truth  []simulator.Truth
		alerts []proactive.Alert
		o      simulator.ScoreOptions
		// want: per fault "outcome rule lead", then the totals
		faults []string
		totals string
		rules  []string
	}{
		{
			name:   "detected before breakdown",
			truth:  []simulator.Truth{fault("f1", "compressor", 0, 48)},
			alerts: []proactive.Alert{alert("compressor_wear", "f1", "compressor", 30)},
			o:      simulator.ScoreOptions{Rules: rules},
			faults: []string{"detected compressor_wear 18h0m0s"},
			totals: "detected 1 late 0 missed 0 unwatched 0 false 0/0 median 18h0m0s",
			rules:  []string{"compressor_wear alerts 1 false 0 failures 1 detected 1 precision 1 recall 1 median 18h0m0s", noFan},
		},
		{
			name:  "the earliest alert within the horizon counts, before the onset too; one earlier is false",
			truth: []simulator.Truth{fault("f1", "compressor", 10, 48)},
			alerts: []proactive.Alert{
				alert("compressor_wear", "f1", "compressor", 5),
				alert("compressor_wear", "f1", "compressor", 30),
				alert("compressor_wear", "f1", "compressor", 40),
			},
			o:      simulator.ScoreOptions{Rules: rules, Horizon: 24 * time.Hour},
			faults: []string{"detected compressor_wear 18h0m0s"},
			totals: "detected 1 late 0 missed 0 unwatched 0 false 1/0 median 18h0m0s",
			rules:  []string{"compressor_wear alerts 3 false 1 failures 1 detected 1 precision 0.667 recall 1 median 18h0m0s", noFan},
		},
		{
			name:   "after the breakdown: missed and false, or late within the grace",
			truth:  []simulator.Truth{fault("f1", "compressor", 0, 10), fault("f2", "compressor", 0, 10)},
			alerts: []proactive.Alert{alert("compressor_wear", "f1", "compressor", 11), alert("compressor_wear", "f2", "compressor", 13)},
			o:      simulator.ScoreOptions{Rules: rules, Grace: 2 * time.Hour},
			faults: []string{"late compressor_wear -1h0m0s", "missed"},
			totals: "detected 0 late 1 missed 1 unwatched 0 false 1/0 median 0s",
			rules:  []string{"compressor_wear alerts 2 false 1 failures 2 detected 0 precision 0.5 recall 0 median 0s", noFan},
		},
		{
			name:  "another component, another device: false alerts, one on a healthy device",
			truth: []simulator.Truth{fault("f1", "compressor", 0, 48)},
			alerts: []proactive.Alert{
				alert("fan_bearing", "f1", "fan", 5),
				alert("compressor_wear", "f2", "compressor", 6),
			},
			o:      simulator.ScoreOptions{Rules: rules},
			faults: []string{"missed"},
			totals: "detected 0 late 0 missed 1 unwatched 0 false 2/1 median 0s",
			rules: []string{"compressor_wear alerts 1 false 1 failures 1 detected 0 precision 0 recall 0 median 0s",
				"fan_bearing alerts 1 false 1 failures 0 detected 0 precision 0 recall - median 0s"},
		},
		{
			name:   "a fault no rule watches is unwatched, not missed",
			truth:  []simulator.Truth{fault("f1", "door", 0, 0), fault("f2", "fan", 0, 20)},
			alerts: []proactive.Alert{alert("fan_bearing", "f2", "fan", 8)},
			o:      simulator.ScoreOptions{Rules: rules},
			faults: []string{"unwatched", "detected fan_bearing 12h0m0s"},
			totals: "detected 1 late 0 missed 0 unwatched 1 false 0/0 median 12h0m0s",
			rules: []string{"compressor_wear alerts 0 false 0 failures 0 detected 0 precision - recall - median 0s",
				"fan_bearing alerts 1 false 0 failures 1 detected 1 precision 1 recall 1 median 12h0m0s"},
		},
		{
			name:   "without rules, every fault is expected and rules come from the alerts",
			truth:  []simulator.Truth{fault("f1", "door", 0, 0), fault("f2", "fan", 0, 20)},
			alerts: []proactive.Alert{alert("fan_bearing", "f2", "fan", 8)},
			faults: []string{"missed", "detected fan_bearing 12h0m0s"},
			totals: "detected 1 late 0 missed 1 unwatched 0 false 0/0 median 12h0m0s",
			rules:  []string{"fan_bearing alerts 1 false 0 failures 1 detected 1 precision 1 recall 1 median 12h0m0s"},
		},
		{
			name:   "a fault without breakdown fails at its onset: an alert after it is late within the grace",
			truth:  []simulator.Truth{fault("f1", "compressor", 0, 0), fault("f2", "compressor", 0, 0)},
			alerts: []proactive.Alert{alert("compressor_wear", "f1", "compressor", 1), alert("compressor_wear", "f2", "compressor", 5)},
			o:      simulator.ScoreOptions{Rules: rules, Grace: 2 * time.Hour},
			faults: []string{"late compressor_wear -1h0m0s", "missed"},
			totals: "detected 0 late 1 missed 1 unwatched 0 false 1/0 median 0s",
			rules:  []string{"compressor_wear alerts 2 false 1 failures 2 detected 0 precision 0.5 recall 0 median 0s", noFan},
		},
		{
			name:  "only faults failing in the period count; an alert before one after it is not false",
			truth: []simulator.Truth{fault("f1", "compressor", 0, 48), fault("f2", "compressor", 0, 150)},
			alerts: []proactive.Alert{alert("compressor_wear", "f1", "compressor", 40),
				alert("compressor_wear", "f2", "compressor", 90)},
			o:      simulator.ScoreOptions{Rules: rules, End: start.Add(100 * time.Hour)},
			faults: []string{"detected compressor_wear 8h0m0s"},
			totals: "detected 1 late 0 missed 0 unwatched 0 false 0/0 median 8h0m0s",
			rules:  []string{"compressor_wear alerts 2 false 0 failures 1 detected 1 precision 1 recall 1 median 8h0m0s", noFan},
		},
		{
			name:  "resolved alerts and duplicates do not count",
			truth: []simulator.Truth{fault("f1", "compressor", 0, 48)},
			alerts: func() []proactive.Alert {
				a := alert("compressor_wear", "f1", "compressor", 30)
				r := a
				r.State = proactive.AlertResolved
				return []proactive.Alert{a, a, r}
			}(),
			o:      simulator.ScoreOptions{Rules: rules[:1]},
			faults: []string{"detected compressor_wear 18h0m0s"},
			totals: "detected 1 late 0 missed 0 unwatched 0 false 0/0 median 18h0m0s",
			rules:  []string{"compressor_wear alerts 1 false 0 failures 1 detected 1 precision 1 recall 1 median 18h0m0s"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := simulator.Score(tc.truth, tc.alerts, tc.o)
			var faults []string
			for _, f := range rep.Faults {
				s := string(f.Outcome)
				if f.Rule != "" {
					s += fmt.Sprintf(" %s %s", f.Rule, f.Lead)
				}
				faults = append(faults, s)
			}
			if got, want := strings.Join(faults, "\n"), strings.Join(tc.faults, "\n"); got != want {
				t.Errorf("faults:\n%s\nwant:\n%s", got, want)
			}
			totals := fmt.Sprintf("detected %d late %d missed %d unwatched %d false %d/%d median %s",
				rep.Detected, rep.Late, rep.Missed, rep.Unwatched, len(rep.FalseAlerts), rep.FalseOnHealthy, rep.LeadMedian)
			if totals != tc.totals {
				t.Errorf("totals: %s\nwant:   %s", totals, tc.totals)
			}
			var rules []string
			for _, r := range rep.Rules {
				rules = append(rules, fmt.Sprintf("%s alerts %d false %d failures %d detected %d precision %s recall %s median %s",
					r.Rule, r.Alerts, r.FalseAlerts, r.Failures, r.Detected, ratio(r.Precision), ratio(r.Recall), r.LeadMedian))
			}
			if got, want := strings.Join(rules, "\n"), strings.Join(tc.rules, "\n"); got != want {
				t.Errorf("rules:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func ratio(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.3g", *p)
}
