package rules

import (
	"encoding/json"
	"math"
	"slices"
	"time"

	"github.com/proactivehq/proactive"
)

// DefaultHorizon is how long before a failure an alert still counts for it,
// and how long after an alert a failure must follow for it not to be false.
const DefaultHorizon = 14 * 24 * time.Hour

// ScoreOptions say how alerts are scored against known failures.
type ScoreOptions struct {
	// From and To are the period, [From, To): only failures in it count,
	// and only alerts fired in it are scored. A zero From or To leaves
	// that side open.
	From, To time.Time
	// Horizon: a failure is detected by an alert of its device and
	// component fired at most Horizon before it (and after the device's
	// previous failure of that component); an alert is false when no
	// failure of its device and component follows within Horizon, among
	// all the failures given, those after To included. Default
	// DefaultHorizon.
	Horizon time.Duration
	// MinLead is how far ahead an alert must have fired to detect a
	// failure; with 0, any time before it.
	MinLead time.Duration
	// Grace, when set, is how long after a failure an alert still belongs
	// to it: a failure with no alert ahead but one within Grace after is
	// late (not detected), and such an alert is not false. Of use for what
	// can only be seen once it happened, such as a device falling silent.
	Grace time.Duration
}

// ScoredRule names what a Score is about: a rule and the component it
// watches.
type ScoredRule struct {
	Name, Component string
}

// Score is how alerts fared against failures, for one rule or one
// component (all the rules watching it).
type Score struct {
	Rule      string `json:"rule,omitempty"`
	Component string `json:"component"`
	// Failures counts the failures of the component in the period; Detected
	// those an alert caught (the recall's numerator).
	Failures int `json:"failures"`
	Detected int `json:"detected"`
	// Late counts the failures caught only after they happened, within
	// ScoreOptions.Grace.
	Late int `json:"late,omitempty"`
	// Alerts counts the firing alerts of the period; FalseAlerts those that
	// no failure followed within the horizon.
	Alerts      int `json:"alerts"`
	FalseAlerts int `json:"false_alerts"`
	// Recall is Detected/Failures and Precision (Alerts-FalseAlerts)/Alerts,
	// nil when undefined (no failures, no alerts).
	Recall    *float64 `json:"recall"`
	Precision *float64 `json:"precision"`
	// Leads are the lead times of the detected failures, in the order of
	// Outcomes; LeadMedian, LeadP10 and LeadP90 their quantiles (linear
	// between ranks), 0 without any.
	Leads                        []time.Duration `json:"-"`
	LeadMedian, LeadP10, LeadP90 time.Duration   `json:"-"`
	// Outcomes is every failure of the period with how it was caught, in
	// time order; False every false alert, in time order.
	Outcomes []FailureOutcome  `json:"outcomes"`
	False    []proactive.Alert `json:"-"`
}

// FailureOutcome is how one failure was caught: by the earliest alert that
// counts for it, with its lead time.
type FailureOutcome struct {
	Failure
	Detected bool `json:"detected"`
	// Late: not detected, but an alert came within the grace after it;
	// Rule, FiredAt and Lead (negative) are then that alert's.
	Late    bool          `json:"late,omitempty"`
	Rule    string        `json:"rule,omitempty"`
	FiredAt time.Time     `json:"fired_at,omitzero"`
	Lead    time.Duration `json:"-"`
	// TimeToFailure is the alert's prediction when it fired, 0 without one.
	TimeToFailure time.Duration `json:"-"`
}

// MarshalJSON writes the outcome with its lead in seconds.
func (o FailureOutcome) MarshalJSON() ([]byte, error) {
	type plain FailureOutcome
	return json.Marshal(struct {
		plain
		LeadS          *float64 `json:"lead_s,omitempty"`
		TimeToFailureS *float64 `json:"time_to_failure_s,omitempty"`
	}{plain(o), seconds(o.Lead, o.Detected || o.Late), seconds(o.TimeToFailure, o.TimeToFailure > 0)})
}

// scoreJSON is a score's figures as JSON, lead times in seconds (null
// without a detection); a rule's backtest report carries them too.
type scoreJSON struct {
	Failures    int              `json:"failures"`
	Detected    int              `json:"detected"`
	Late        int              `json:"late,omitempty"`
	Alerts      int              `json:"alerts"`
	FalseAlerts int              `json:"false_alerts"`
	Recall      *float64         `json:"recall"`
	Precision   *float64         `json:"precision"`
	LeadMedianS *float64         `json:"lead_median_s"`
	LeadP10S    *float64         `json:"lead_p10_s"`
	LeadP90S    *float64         `json:"lead_p90_s"`
	Outcomes    []FailureOutcome `json:"outcomes"`
}

func (s Score) json() scoreJSON {
	any := len(s.Leads) > 0
	return scoreJSON{Failures: s.Failures, Detected: s.Detected, Late: s.Late, Alerts: s.Alerts, FalseAlerts: s.FalseAlerts,
		Recall: s.Recall, Precision: s.Precision,
		LeadMedianS: seconds(s.LeadMedian, any), LeadP10S: seconds(s.LeadP10, any), LeadP90S: seconds(s.LeadP90, any),
		Outcomes: s.Outcomes}
}

// MarshalJSON writes the score: rule (for a rule's), component, then its
// figures (scoreJSON).
func (s Score) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Rule      string `json:"rule,omitempty"`
		Component string `json:"component"`
		scoreJSON
	}{s.Rule, s.Component, s.json()})
}

func seconds(d time.Duration, ok bool) *float64 {
	if !ok {
		return nil
	}
	s := d.Seconds()
	return &s
}

// Scores are the scores of a rule set: per rule in the order given, and per
// component in name order (every component of a rule or of a failure in
// the period).
type Scores struct {
	Rules      []Score `json:"rules"`
	Components []Score `json:"components"`
}

// ScoreAlerts scores alerts (only firing ones count) against failures, per
// rule of rs and per component. It is the one scoring of `rules backtest
// --failures` and `simulate score`.
func ScoreAlerts(alerts []proactive.Alert, failures []Failure, rs []ScoredRule, o ScoreOptions) Scores {
	if o.Horizon <= 0 {
		o.Horizon = DefaultHorizon
	}
	sc := newScorer(alerts, failures, o)
	var out Scores
	comps := map[string]bool{}
	for _, r := range rs {
		comps[r.Component] = true
		s := sc.score(r.Component, func(a proactive.Alert) bool { return a.Rule == r.Name })
		s.Rule = r.Name
		out.Rules = append(out.Rules, s)
	}
	for _, f := range sc.inPeriod {
		comps[f.Component] = true
	}
	names := make([]string, 0, len(comps))
	for c := range comps {
		names = append(names, c)
	}
	slices.Sort(names)
	for _, c := range names {
		out.Components = append(out.Components, sc.score(c, func(proactive.Alert) bool { return true }))
	}
	return out
}

type deviceComponent struct {
	device    proactive.DeviceID
	component string
}

// scorer holds the alerts and failures sorted and indexed for scoring.
type scorer struct {
	o ScoreOptions
	// alerts are the firing alerts of the period, by time.
	alerts []proactive.Alert
	// failed is every failure time of a device's component, sorted.
	failed map[deviceComponent][]time.Time
	// inPeriod are the failures in the period, by time.
	inPeriod []Failure
}

func newScorer(alerts []proactive.Alert, failures []Failure, o ScoreOptions) *scorer {
	sc := &scorer{o: o, failed: map[deviceComponent][]time.Time{}}
	for _, a := range alerts {
		if a.State == proactive.AlertFiring && sc.inside(a.FiredAt) {
			sc.alerts = append(sc.alerts, a)
		}
	}
	slices.SortStableFunc(sc.alerts, func(a, b proactive.Alert) int { return a.FiredAt.Compare(b.FiredAt) })
	for _, f := range failures {
		k := deviceComponent{f.Device, f.Component}
		sc.failed[k] = append(sc.failed[k], f.Time)
		if sc.inside(f.Time) {
			sc.inPeriod = append(sc.inPeriod, f)
		}
	}
	for _, ts := range sc.failed {
		slices.SortFunc(ts, time.Time.Compare)
	}
	slices.SortStableFunc(sc.inPeriod, func(a, b Failure) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return compareStrings(string(a.Device), string(b.Device))
	})
	return sc
}

func (sc *scorer) inside(t time.Time) bool {
	return (sc.o.From.IsZero() || !t.Before(sc.o.From)) && (sc.o.To.IsZero() || t.Before(sc.o.To))
}

// score scores the alerts of component that keep accepts.
func (sc *scorer) score(component string, keep func(proactive.Alert) bool) Score {
	s := Score{Component: component, Outcomes: []FailureOutcome{}}
	byDevice := map[proactive.DeviceID][]proactive.Alert{}
	for _, a := range sc.alerts {
		if a.Component != component || !keep(a) {
			continue
		}
		s.Alerts++
		byDevice[a.Device] = append(byDevice[a.Device], a)
		if !sc.followed(a) {
			s.FalseAlerts++
			s.False = append(s.False, a)
		}
	}
	for _, f := range sc.inPeriod {
		if f.Component != component {
			continue
		}
		s.Failures++
		oc := FailureOutcome{Failure: f}
		// The earliest alert at most Horizon before the failure, after the
		// previous failure (whose own alerts those are), and at least
		// MinLead ahead gives the lead.
		lo := f.Time.Add(-sc.o.Horizon)
		prev, hasPrev := sc.previous(f)
		for _, a := range byDevice[f.Device] {
			if a.FiredAt.Before(lo) || hasPrev && !a.FiredAt.After(prev) {
				continue
			}
			lead := f.Time.Sub(a.FiredAt)
			if lead <= 0 || lead < sc.o.MinLead {
				break // alerts are in time order: later ones lead less
			}
			oc.Detected, oc.Rule, oc.FiredAt, oc.Lead, oc.TimeToFailure = true, a.Rule, a.FiredAt, lead, a.TimeToFailure
			break
		}
		if !oc.Detected && sc.o.Grace > 0 {
			for _, a := range byDevice[f.Device] {
				if !a.FiredAt.Before(f.Time) && !a.FiredAt.After(f.Time.Add(sc.o.Grace)) {
					oc.Late, oc.Rule, oc.FiredAt, oc.Lead = true, a.Rule, a.FiredAt, f.Time.Sub(a.FiredAt)
					break
				}
			}
		}
		switch {
		case oc.Detected:
			s.Detected++
			s.Leads = append(s.Leads, oc.Lead)
		case oc.Late:
			s.Late++
		}
		s.Outcomes = append(s.Outcomes, oc)
	}
	if s.Failures > 0 {
		r := float64(s.Detected) / float64(s.Failures)
		s.Recall = &r
	}
	if s.Alerts > 0 {
		p := float64(s.Alerts-s.FalseAlerts) / float64(s.Alerts)
		s.Precision = &p
	}
	s.LeadMedian, s.LeadP10, s.LeadP90 = Quantile(s.Leads, 0.5), Quantile(s.Leads, 0.1), Quantile(s.Leads, 0.9)
	return s
}

// previous returns the failure of f's device and component before f.
func (sc *scorer) previous(f Failure) (time.Time, bool) {
	ts := sc.failed[deviceComponent{f.Device, f.Component}]
	i, _ := slices.BinarySearchFunc(ts, f.Time, time.Time.Compare)
	if i == 0 {
		return time.Time{}, false
	}
	return ts[i-1], true
}

// followed reports whether a failure of a's device and component follows
// it within the horizon, or came at most the grace before it.
func (sc *scorer) followed(a proactive.Alert) bool {
	ts := sc.failed[deviceComponent{a.Device, a.Component}]
	i, _ := slices.BinarySearchFunc(ts, a.FiredAt.Add(-sc.o.Grace), time.Time.Compare)
	for ; i < len(ts); i++ {
		if !ts[i].After(a.FiredAt) {
			if sc.o.Grace > 0 {
				return true // at most the grace before the alert
			}
			continue
		}
		return !ts[i].After(a.FiredAt.Add(sc.o.Horizon))
	}
	return false
}

// Quantile returns the q-quantile (0..1) of ds, linear between the closest
// ranks (the median of an even count is the mean of the middle two); 0 for
// none. It does not modify ds.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + time.Duration(float64(s[hi]-s[lo])*(pos-float64(lo)))
}
