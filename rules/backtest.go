package rules

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/proactivehq/proactive"
)

// SampleSource yields a device fleet's history in time order (across
// devices), calling fn for each sample; it stops at the first error fn
// returns and returns that error. It should also stop, with ctx's error,
// once ctx is done.
type SampleSource func(ctx context.Context, fn func(proactive.Sample) error) error

// SliceSource is a SampleSource over samples already in memory, which must
// be in time order.
func SliceSource(samples []proactive.Sample) SampleSource {
	return func(ctx context.Context, fn func(proactive.Sample) error) error {
		for i, s := range samples {
			if i%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if err := fn(s); err != nil {
				return err
			}
		}
		return nil
	}
}

// BacktestOptions say what period a backtest covers and what it is scored
// against. Zero fields get the defaults noted.
type BacktestOptions struct {
	// From and To bound the reported period [From, To). Samples before From
	// still go through the rules, warming up windows and alert states, but
	// alerts before From are not reported; samples at or after To are
	// skipped. A zero From is the first sample's time; a zero To is the
	// clock at the end (the last sample's time).
	From, To time.Time
	// Tick is the step of the simulated clock at which rules that read
	// since_seen() are evaluated without new data, as the engine's timer
	// does live; default 1m. Ticks fall on multiples of Tick since the Unix
	// epoch.
	Tick time.Duration
	// Tolerance is how far behind a device's newest sample a sample may be
	// and still count in its windows (NewEvaluator), default 5m as in the
	// engine.
	Tolerance time.Duration
	// Device, when set, says what rules may read of a device
	// (device.model, device.age_days), as the engine's registry lookup
	// does; without it the model comes from the samples and age_days is NaN.
	Device DeviceFunc
	// Events, when set, are the devices' events, fed at their times with
	// the samples (read into memory first: events are sparse next to
	// samples); Maintenance the maintenance records, applied at their
	// times. Without them the rules see no events and no maintenance.
	Events      EventSource
	Maintenance []proactive.Maintenance
	// Failures are the known failures the rules are scored against
	// (ScoreAlerts, with Horizon and MinLead); without them the report has
	// no scores.
	Failures         []Failure
	Horizon, MinLead time.Duration
	// Outreach, when set, replays the period's firing alerts through the
	// notifier's decision code (the tickets and customer texts the live
	// pipeline would have made of them); the rules' reports then count
	// them. Without it Tickets, Texts and their rates stay 0.
	Outreach OutreachFunc
	// Progress, when set, is called every 4096 samples and once at the end
	// with the samples replayed so far and the simulated clock. It runs on
	// the backtest's goroutine: it should return quickly.
	Progress func(done int64, at time.Time)
}

// Failure is one known failure of a device's component, such as a repair
// record: what a rule watching that component should have caught.
type Failure struct {
	Device    proactive.DeviceID `json:"device_id"`
	Time      time.Time          `json:"time"`
	Component string             `json:"component"`
}

// BacktestReport is what the rules would have done over a period of
// history.
type BacktestReport struct {
	// Rules has one entry per rule of the set, in load order.
	Rules []RuleReport `json:"rules"`
	// Alerts are every firing and resolved alert of the period, in the
	// order they happened.
	Alerts []proactive.Alert `json:"-"`
	// Samples counts the samples replayed, Devices the distinct devices
	// they came from.
	Samples int64 `json:"samples"`
	Devices int   `json:"devices"`
	// From and To are the period reported, [From, To).
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Components are the scores per component, when failures were given
	// (each rule's are in its RuleReport).
	Components []Score `json:"-"`
	// Compare, when set, is a second rule set's backtest of the same
	// history, which the table and the JSON show beside this one.
	Compare *Comparison `json:"-"`
	// Outreach, when BacktestOptions.Outreach was given, says how the
	// alerts were replayed through the notifier (Outreach.Note); nil
	// otherwise.
	Outreach *Outreach `json:"-"`
}

// Scored reports whether the report scores the rules against failures.
func (r *BacktestReport) Scored() bool { return r.Components != nil }

// Days returns the length of the period in days (of 24h).
func (r *BacktestReport) Days() float64 { return r.To.Sub(r.From).Hours() / 24 }

// RuleReport is one rule's part of a backtest.
//
// Definitions:
//   - A fire is an alert going to firing; a rule fires at most once per
//     device and component at a time, and not again within its cooldown.
//   - Tickets and Texts are what the notifier's own decision code made of
//     the fires in data time (BacktestOptions.Outreach): tickets opened
//     (an open ticket absorbs later fires; the rule's cooldown holds across
//     closed ones) and customer texts (offers sent; review, contact: none,
//     incidents, the contact cooldown, consent and the daily cap hold
//     them). TicketsPerDay and TextsPerDay divide them by the period's
//     length in days (24h), 0 for an empty period.
//   - With failures, a ticket or text is true when a failure of its device
//     and component follows its alert within the horizon (the scoring's
//     definition of a true alert), false otherwise.
//   - Score, when failures were given, is how its fires fared against them
//     (ScoreAlerts: detected within the horizon, false alerts, precision,
//     recall, lead times).
type RuleReport struct {
	Rule      string `json:"rule"`
	Component string `json:"component"`
	// Fires is how many times the rule fired; Devices on how many distinct
	// devices.
	Fires         int     `json:"fires"`
	Devices       int     `json:"devices"`
	Tickets       int     `json:"tickets"`
	Texts         int     `json:"texts"`
	TicketsPerDay float64 `json:"tickets_per_day"`
	TextsPerDay   float64 `json:"texts_per_day"`
	// TrueTickets and the others split Tickets and Texts by truth; nil
	// without failures.
	TrueTickets  *int `json:"true_tickets,omitempty"`
	FalseTickets *int `json:"false_tickets,omitempty"`
	TrueTexts    *int `json:"true_texts,omitempty"`
	FalseTexts   *int `json:"false_texts,omitempty"`
	// FirstFires is each device's first fire, by time then device.
	FirstFires []FirstFire `json:"first_fires"`
	// Score is nil without failures.
	Score *Score `json:"-"`
	// Errors counts evaluations that failed (an expression error at run
	// time); LastError is the last one's message. A rule that errors does
	// not fire, so a backtest with errors understates it.
	Errors    int64  `json:"errors"`
	LastError string `json:"last_error,omitempty"`
}

// FirstFire is a device's first fire of a rule in a backtest.
type FirstFire struct {
	Device proactive.DeviceID `json:"device_id"`
	At     time.Time          `json:"at"`
	// TimeToFailure is the rule's prediction when it fired, 0 without one.
	TimeToFailure time.Duration `json:"time_to_failure_ns,omitempty"`
}

// progressEvery is how many samples pass between Progress calls and
// context checks.
const progressEvery = 4096

// Backtest replays the samples of src through set with one Evaluator, as
// the engine would have evaluated them live, and reports what fired.
//
// The simulated clock is event time: each sample is evaluated at its own
// time (Evaluator.Observe), and the clock then stands at the newest sample
// time seen. When set has rules that read since_seen(), every multiple of
// o.Tick that the clock passes is a tick (Evaluator.Tick) after all the
// samples up to and including it, and ticks go on after the last sample up
// to To, so that silent devices are caught as they would be live.
//
// It returns an error when src fails or ctx ends.
func Backtest(ctx context.Context, set *RuleSet, src SampleSource, o BacktestOptions) (*BacktestReport, error) {
	if set == nil {
		return nil, errors.New("backtest: no rules")
	}
	if o.Tick <= 0 {
		o.Tick = time.Minute
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 5 * time.Minute
	}
	ticking := false
	for _, r := range set.rules {
		ticking = ticking || r.SinceSeen()
	}
	bt := &backtest{
		ev: newEvaluator(set, o.Device, o.Tolerance), o: o, ticking: ticking,
		devices: map[proactive.DeviceID]string{},
	}
	var q *signalQueue
	if o.Events != nil || len(o.Maintenance) > 0 {
		var err error
		if q, err = newSignalQueue(ctx, o.Events, o.Maintenance); err != nil {
			return nil, fmt.Errorf("backtest: read events: %w", err)
		}
	}
	signals := func(t time.Time) {
		q.upTo(t, bt.ev.ObserveMaintenance, func(e proactive.Event) {
			if !o.To.IsZero() && !e.Time.Before(o.To) {
				return
			}
			bt.advance(e.Time, false)
			bt.record(bt.ev.ObserveEvent(e), laterOf(e.Time, bt.clock))
		})
	}
	err := src(ctx, func(s proactive.Sample) error {
		if !o.To.IsZero() && !s.Time.Before(o.To) {
			return nil
		}
		if bt.samples == 0 {
			bt.first = s.Time
		}
		signals(s.Time)
		bt.advance(s.Time, false)
		bt.record(bt.ev.Observe(s), s.Time)
		bt.samples++
		if m, ok := bt.devices[s.Device]; !ok || m == "" {
			bt.devices[s.Device] = s.Model
		}
		if bt.samples%progressEvery == 0 {
			if o.Progress != nil {
				o.Progress(bt.samples, bt.clock)
			}
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backtest: replay samples: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("backtest: %w", err)
	}
	// The ticks after the last sample, up to the end of the period: those
	// before To, or those up to the last sample when To is open.
	end := o.To
	if end.IsZero() {
		signals(time.Time{})
		end = bt.clock
	} else {
		signals(end)
	}
	if bt.samples > 0 {
		bt.advance(end, o.To.IsZero())
	}
	if o.Progress != nil {
		o.Progress(bt.samples, bt.clock)
	}

	rep := &BacktestReport{Samples: bt.samples, Devices: len(bt.devices), From: o.From, To: end}
	if rep.From.IsZero() {
		rep.From = bt.first
	}
	for _, a := range bt.alerts {
		if !a.at.Before(rep.From) {
			rep.Alerts = append(rep.Alerts, a.Alert)
		}
	}
	rep.Rules = ruleReports(set, bt.ev, rep)
	if len(o.Failures) > 0 {
		rs := make([]ScoredRule, len(rep.Rules))
		for i, r := range rep.Rules {
			rs[i] = ScoredRule{Name: r.Rule, Component: r.Component}
		}
		sc := ScoreAlerts(rep.Alerts, o.Failures, rs, ScoreOptions{From: rep.From, To: rep.To, Horizon: o.Horizon, MinLead: o.MinLead})
		for i := range rep.Rules {
			rep.Rules[i].Score = &sc.Rules[i]
		}
		rep.Components = sc.Components
	}
	if o.Outreach != nil {
		if err := rep.outreach(ctx, o, bt.devices); err != nil {
			return nil, fmt.Errorf("backtest: tickets and texts: %w", err)
		}
	}
	return rep, nil
}

// backtest is the state of one replay.
type backtest struct {
	ev      *Evaluator
	o       BacktestOptions
	ticking bool
	// clock is the newest sample or tick time; first the first sample's.
	clock, first time.Time
	nextTick     time.Time // zero until the first sample
	samples      int64
	devices      map[proactive.DeviceID]string // the model, "" unknown
	alerts       []timedAlert
}

// timedAlert is an alert with the clock when it happened: FiredAt for a
// firing alert, the time it resolved for a resolved one.
type timedAlert struct {
	proactive.Alert
	at time.Time
}

// advance moves the clock to t, first ticking at every multiple of Tick
// before t (and at t itself when inclusive). The clock never moves back.
func (bt *backtest) advance(t time.Time, inclusive bool) {
	if bt.ticking {
		if bt.nextTick.IsZero() {
			bt.nextTick = tickAfter(t, bt.o.Tick)
		}
		for bt.nextTick.Before(t) || inclusive && bt.nextTick.Equal(t) {
			bt.record(bt.ev.Tick(bt.nextTick), bt.nextTick)
			bt.clock = laterOf(bt.clock, bt.nextTick)
			bt.nextTick = bt.nextTick.Add(bt.o.Tick)
		}
	}
	bt.clock = laterOf(bt.clock, t)
}

func (bt *backtest) record(alerts []proactive.Alert, at time.Time) {
	for _, a := range alerts {
		bt.alerts = append(bt.alerts, timedAlert{a, at})
	}
}

// tickAfter returns the first multiple of step since the Unix epoch at or
// after t.
func tickAfter(t time.Time, step time.Duration) time.Time {
	ns, s := t.UnixNano(), int64(step)
	k := ns / s // truncated towards zero: rounded up for negative ns
	if ns > 0 && ns%s != 0 {
		k++
	}
	return time.Unix(0, k*s).UTC()
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// ruleReports builds each rule's report from the alerts of the period.
func ruleReports(set *RuleSet, ev *Evaluator, rep *BacktestReport) []RuleReport {
	out := make([]RuleReport, 0, len(set.rules))
	for _, r := range set.rules {
		rr := RuleReport{Rule: r.Name, Component: r.Component}
		if st := ev.stats[r.Name]; st != nil {
			rr.Errors = st.errors
			if st.lastErr != nil {
				rr.LastError = st.lastErr.Error()
			}
		}
		// Fires per device, in time order.
		fires := map[proactive.DeviceID][]proactive.Alert{}
		for _, a := range rep.Alerts {
			if a.Rule != r.Name || a.State != proactive.AlertFiring {
				continue
			}
			rr.Fires++
			if len(fires[a.Device]) == 0 {
				rr.FirstFires = append(rr.FirstFires, FirstFire{Device: a.Device, At: a.FiredAt, TimeToFailure: a.TimeToFailure})
			}
			fires[a.Device] = append(fires[a.Device], a)
		}
		rr.Devices = len(fires)
		slices.SortStableFunc(rr.FirstFires, func(a, b FirstFire) int {
			if c := a.At.Compare(b.At); c != 0 {
				return c
			}
			return compareStrings(string(a.Device), string(b.Device))
		})
		out = append(out, rr)
	}
	return out
}

// MedianDuration returns the median of ds (the mean of the middle two for
// an even count), 0 for none. It does not modify ds.
func MedianDuration(ds []time.Duration) time.Duration {
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

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
