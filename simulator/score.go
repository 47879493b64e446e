package simulator

import (
	"cmp"
	"slices"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// FaultResult is what became of one injected fault: detected, late, missed
// or unwatched.
type FaultResult string

// The results of a fault in a Score.
const (
	// Detected: an alert of its device and component fired within the
	// horizon before its failure (its breakdown, or its onset for a fault
	// without one) and at least the minimum lead ahead.
	Detected FaultResult = "detected"
	// Late: no alert before the failure, but one within the grace after it
	// (ScoreOptions.Grace): of use for faults that only show once they
	// happened, such as a device falling silent.
	Late FaultResult = "late"
	// Missed: no alert in time.
	Missed FaultResult = "missed"
	// Unwatched: no rule watches the fault's component, so none could
	// catch it (a filter change or a door left open, say). It counts
	// neither as detected nor as missed.
	Unwatched FaultResult = "unwatched"
)

// RuleInfo names a rule and the component it watches.
type RuleInfo struct {
	Name      string `json:"rule"`
	Component string `json:"component"`
}

// ScoreOptions say how alerts are matched to the ground truth: as `rules
// backtest --failures` scores them (rules.ScoreAlerts), each fault being a
// failure at its breakdown, or at its onset when it has none.
type ScoreOptions struct {
	// From and End are the period scored, [From, End); zero leaves a side
	// open.
	From, End time.Time
	// Horizon, MinLead and Grace are rules.ScoreOptions'.
	Horizon, MinLead, Grace time.Duration
	// Rules are the rules that ran, when known: each gets a row even if it
	// never fired, and faults of a component none of them watches are
	// Unwatched instead of Missed. Without them, the rules are those that
	// fired and every fault is expected to be caught.
	Rules []RuleInfo
}

// FaultScore is one injected fault and how the alerts met it.
type FaultScore struct {
	Truth
	Outcome FaultResult
	// Rule and FiredAt are the alert that caught the fault (the earliest in
	// time), Lead the failure time minus FiredAt: negative when late.
	Rule    string
	FiredAt time.Time
	Lead    time.Duration
}

// FailureTime is when the fault counts as a failure: its breakdown, or its
// onset for a fault without one (the time column of the truth CSV).
func (f FaultScore) FailureTime() time.Time { return failureTime(f.Truth) }

func failureTime(t Truth) time.Time {
	if t.Breakdown.IsZero() {
		return t.Onset
	}
	return t.Breakdown
}

// FalseAlert is an alert that no fault explains.
type FalseAlert struct {
	proactive.Alert
	// HealthyDevice says the device had no fault at all; otherwise it had
	// faults, of another component or at other times.
	HealthyDevice bool
	// Decoy says the alert came on a decoy: the device had a decoy of the
	// alert's component with its onset at or before the alert.
	Decoy bool
}

// ScoreReport compares the alerts of a run with its ground truth.
type ScoreReport struct {
	// Faults are the injected faults in the order of the ground truth;
	// decoys are not among them (Decoys counts them).
	Faults []FaultScore
	// Rules are the rules' scores in the order of ScoreOptions.Rules, then
	// those only seen in alerts, by name; Components per component.
	Rules      []rules.Score
	Components []rules.Score
	// FalseAlerts are the alerts no fault explains, by time.
	FalseAlerts []FalseAlert
	// Alerts counts the alerts scored (fires, duplicates dropped).
	Alerts int
	// Counts of the faults by outcome, and of the false alerts on devices
	// without any fault.
	Detected, Late, Missed, Unwatched int
	FalseOnHealthy                    int
	// Decoys counts the decoys of the ground truth, FalseOnDecoys the
	// false alerts that came on one.
	Decoys, FalseOnDecoys int
	// LeadMedian, LeadP10 and LeadP90 are over the detected faults.
	LeadMedian, LeadP10, LeadP90 time.Duration
}

// Score scores alerts against the faults of truth with rules.ScoreAlerts,
// the one scoring of the platform. A decoy of truth is no fault: an alert
// on it is false. Only firing alerts count (an empty State counts as
// firing); an alert listed twice counts once.
func Score(truth []Truth, alerts []proactive.Alert, o ScoreOptions) *ScoreReport {
	rep := &ScoreReport{}
	fires := make([]proactive.Alert, 0, len(alerts))
	type key struct {
		rule, device, component string
		at                      int64
	}
	seen := map[key]bool{}
	for _, a := range alerts {
		if a.State != "" && a.State != proactive.AlertFiring {
			continue
		}
		k := key{a.Rule, string(a.Device), a.Component, a.FiredAt.UnixNano()}
		if seen[k] {
			continue
		}
		seen[k] = true
		a.State = proactive.AlertFiring
		fires = append(fires, a)
	}
	slices.SortStableFunc(fires, func(a, b proactive.Alert) int { return a.FiredAt.Compare(b.FiredAt) })
	rep.Alerts = len(fires)

	// The rules: those given, then those only met in alerts.
	rs := make([]rules.ScoredRule, 0, len(o.Rules))
	known := map[string]bool{}
	watched := map[string]bool{}
	for _, r := range o.Rules {
		rs = append(rs, rules.ScoredRule{Name: r.Name, Component: r.Component})
		known[r.Name], watched[r.Component] = true, true
	}
	var extra []rules.ScoredRule
	for _, a := range fires {
		if !known[a.Rule] {
			known[a.Rule] = true
			extra = append(extra, rules.ScoredRule{Name: a.Rule, Component: a.Component})
		}
	}
	slices.SortFunc(extra, func(a, b rules.ScoredRule) int { return cmp.Compare(a.Name, b.Name) })
	rs = append(rs, extra...)

	var failures []rules.Failure
	var decoys []Truth
	faulty := map[string]bool{}
	for _, t := range truth {
		if t.IsDecoy() {
			decoys = append(decoys, t)
			continue
		}
		faulty[t.Device] = true
		failures = append(failures, rules.Failure{Device: proactive.DeviceID(t.Device), Time: failureTime(t), Component: t.Component})
	}
	rep.Decoys = len(decoys)
	sc := rules.ScoreAlerts(fires, failures, rs, rules.ScoreOptions{From: o.From, To: o.End, Horizon: o.Horizon, MinLead: o.MinLead, Grace: o.Grace})
	rep.Rules, rep.Components = sc.Rules, sc.Components

	type failureKey struct {
		device, component string
		at                int64
	}
	outcomes := map[failureKey]rules.FailureOutcome{}
	for _, c := range sc.Components {
		for _, oc := range c.Outcomes {
			outcomes[failureKey{string(oc.Device), oc.Component, oc.Time.UnixNano()}] = oc
		}
	}
	var leads []time.Duration
	for _, t := range truth {
		if t.IsDecoy() {
			continue
		}
		fs := FaultScore{Truth: t, Outcome: Missed}
		oc, inPeriod := outcomes[failureKey{t.Device, t.Component, failureTime(t).UnixNano()}]
		switch {
		case !inPeriod:
			continue // outside the period: not scored
		case oc.Detected:
			fs.Outcome, fs.Rule, fs.FiredAt, fs.Lead = Detected, oc.Rule, oc.FiredAt, oc.Lead
			rep.Detected++
			leads = append(leads, oc.Lead)
		case oc.Late:
			fs.Outcome, fs.Rule, fs.FiredAt, fs.Lead = Late, oc.Rule, oc.FiredAt, oc.Lead
			rep.Late++
		case len(o.Rules) > 0 && !watched[t.Component]:
			fs.Outcome = Unwatched
			rep.Unwatched++
		default:
			rep.Missed++
		}
		rep.Faults = append(rep.Faults, fs)
	}
	rep.LeadMedian, rep.LeadP10, rep.LeadP90 = rules.Quantile(leads, 0.5), rules.Quantile(leads, 0.1), rules.Quantile(leads, 0.9)

	for _, c := range sc.Components {
		for _, a := range c.False {
			fa := FalseAlert{Alert: a, HealthyDevice: !faulty[string(a.Device)]}
			for _, t := range decoys {
				fa.Decoy = fa.Decoy || t.Device == string(a.Device) && t.Component == a.Component && !a.FiredAt.Before(t.Onset)
			}
			rep.FalseAlerts = append(rep.FalseAlerts, fa)
			if fa.HealthyDevice {
				rep.FalseOnHealthy++
			}
			if fa.Decoy {
				rep.FalseOnDecoys++
			}
		}
	}
	slices.SortStableFunc(rep.FalseAlerts, func(a, b FalseAlert) int { return a.FiredAt.Compare(b.FiredAt) })
	return rep
}
