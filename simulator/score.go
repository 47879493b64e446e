package simulator

import (
	"cmp"
	"slices"
	"time"

	"github.com/proactivehq/proactive"
)

// FaultResult is what became of one injected fault: detected, late, missed
// or unwatched.
type FaultResult string

// The results of a fault in a Score.
const (
	// Detected: an alert of its device and component fired between its
	// onset and its breakdown (for a fault without breakdown, from its
	// onset on).
	Detected FaultResult = "detected"
	// Late: the first such alert fired after the breakdown, within the
	// grace period (ScoreOptions.Grace): of use for faults that only show
	// once they happened, such as a device falling silent.
	Late FaultResult = "late"
	// Missed: no alert in time.
	Missed FaultResult = "missed"
	// Unwatched: no rule watches the fault's component, so none could
	// catch it (a decoy, such as a filter change or a door left open). It
	// counts neither as detected nor as missed.
	Unwatched FaultResult = "unwatched"
)

// RuleInfo names a rule and the component it watches.
type RuleInfo struct {
	Name      string `json:"rule"`
	Component string `json:"component"`
}

// ScoreOptions say how alerts are matched to the ground truth. Zero fields
// get the defaults noted.
type ScoreOptions struct {
	// End is the end of the period scored: a fault without breakdown is
	// detected by an alert up to End; zero means any time after its onset.
	End time.Time
	// Grace is how long after a breakdown an alert still belongs to the
	// fault, as a late detection; default 0.
	Grace time.Duration
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
	// Rule and FiredAt are the first alert that matched the fault, Alerts
	// the number of alerts that did.
	Rule    string
	FiredAt time.Time
	Alerts  int
	// Lead is the breakdown minus FiredAt: positive when the alert came
	// before it, negative when late, and zero for a fault without
	// breakdown or an alert that never came.
	Lead time.Duration
}

// RuleScore is one rule's record against the ground truth.
//
// An alert of the rule is true when it fired on a device with a fault of the
// rule's component, between the fault's onset and its breakdown (plus the
// grace), and false otherwise. Precision is true alerts over all the rule's
// alerts (nil without alerts); Recall is the faults of the rule's component
// the rule detected before their breakdown over all the faults of that
// component (nil without any), and MedianLead the median lead time of
// those detections.
type RuleScore struct {
	RuleInfo
	Alerts, TrueAlerts, FalseAlerts int
	Faults, Detected                int
	Precision, Recall               *float64
	LeadTimes                       []time.Duration
	MedianLead                      time.Duration
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
	// Rules are the rules in the order of ScoreOptions.Rules, then those
	// only seen in alerts, by name.
	Rules []RuleScore
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
	// MedianLead is the median lead time of all detected faults.
	MedianLead time.Duration
}

// Score matches alerts to the faults of truth by device and component: an
// alert belongs to a fault when it fired in [onset, breakdown + grace] (or
// [onset, End] for a fault without breakdown). A decoy of truth is no
// fault: an alert on it is false. Only firing alerts count (an empty State
// counts as firing); an alert listed twice counts once.
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
		fires = append(fires, a)
	}
	slices.SortStableFunc(fires, func(a, b proactive.Alert) int { return a.FiredAt.Compare(b.FiredAt) })
	rep.Alerts = len(fires)

	// The rules: those given, then those only met in alerts.
	rules := slices.Clone(o.Rules)
	known := map[string]int{}
	for i, r := range rules {
		known[r.Name] = i
	}
	var extra []RuleInfo
	for _, a := range fires {
		if _, ok := known[a.Rule]; !ok {
			known[a.Rule] = -1
			extra = append(extra, RuleInfo{Name: a.Rule, Component: a.Component})
		}
	}
	slices.SortFunc(extra, func(a, b RuleInfo) int { return cmp.Compare(a.Name, b.Name) })
	rules = append(rules, extra...)
	watched := map[string]bool{}
	for _, r := range rules {
		watched[r.Component] = true
	}

	// matches says whether alert a belongs to fault t, and whether in time.
	matches := func(t Truth, a proactive.Alert) (match, inTime bool) {
		if string(a.Device) != t.Device || a.Component != t.Component || a.FiredAt.Before(t.Onset) {
			return false, false
		}
		if t.Breakdown.IsZero() {
			return o.End.IsZero() || !a.FiredAt.After(o.End), true
		}
		if !a.FiredAt.After(t.Breakdown) {
			return true, true
		}
		return !a.FiredAt.After(t.Breakdown.Add(o.Grace)), false
	}
	lead := func(t Truth, at time.Time) time.Duration {
		if t.Breakdown.IsZero() {
			return 0
		}
		return t.Breakdown.Sub(at)
	}

	explained := make([]bool, len(fires))
	faulty := map[string]bool{}
	var leads []time.Duration
	var decoys []Truth
	for _, t := range truth {
		if t.IsDecoy() {
			decoys = append(decoys, t)
			continue
		}
		faulty[t.Device] = true
		fs := FaultScore{Truth: t, Outcome: Missed}
		for i, a := range fires {
			match, inTime := matches(t, a)
			if !match {
				continue
			}
			explained[i] = true
			fs.Alerts++
			if fs.Rule == "" {
				fs.Rule, fs.FiredAt, fs.Lead = a.Rule, a.FiredAt, lead(t, a.FiredAt)
				fs.Outcome = Late
				if inTime {
					fs.Outcome = Detected
				}
			}
		}
		if fs.Outcome == Missed && len(o.Rules) > 0 && !watched[t.Component] {
			fs.Outcome = Unwatched
		}
		switch fs.Outcome {
		case Detected:
			rep.Detected++
			if !t.Breakdown.IsZero() {
				leads = append(leads, fs.Lead)
			}
		case Late:
			rep.Late++
		case Missed:
			rep.Missed++
		case Unwatched:
			rep.Unwatched++
		}
		rep.Faults = append(rep.Faults, fs)
	}
	rep.MedianLead = medianDuration(leads)
	rep.Decoys = len(decoys)

	for i, a := range fires {
		if !explained[i] {
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

	for _, r := range rules {
		rs := RuleScore{RuleInfo: r}
		for i, a := range fires {
			if a.Rule != r.Name {
				continue
			}
			rs.Alerts++
			if explained[i] {
				rs.TrueAlerts++
			} else {
				rs.FalseAlerts++
			}
		}
		for _, t := range truth {
			if t.Component != r.Component || t.IsDecoy() {
				continue
			}
			rs.Faults++
			for _, a := range fires {
				if a.Rule != r.Name {
					continue
				}
				if match, inTime := matches(t, a); match && inTime {
					rs.Detected++
					if !t.Breakdown.IsZero() {
						rs.LeadTimes = append(rs.LeadTimes, lead(t, a.FiredAt))
					}
					break
				}
			}
		}
		if rs.Alerts > 0 {
			p := float64(rs.TrueAlerts) / float64(rs.Alerts)
			rs.Precision = &p
		}
		if rs.Faults > 0 {
			rc := float64(rs.Detected) / float64(rs.Faults)
			rs.Recall = &rc
		}
		rs.MedianLead = medianDuration(rs.LeadTimes)
		rep.Rules = append(rep.Rules, rs)
	}
	return rep
}

// medianDuration is the median of ds (the mean of the middle two for an
// even count), 0 for none.
func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return s[n/2-1] + (s[n/2]-s[n/2-1])/2
}
