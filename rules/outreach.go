package rules

import (
	"context"
	"time"

	"github.com/proactivehq/proactive"
)

// OutreachFunc replays a backtest's firing alerts through the notifier's
// own decision code in data time and returns the tickets it opened. The
// rules package does not know the notifier: the caller wires one in
// (internal/history does, with notify.Replay).
type OutreachFunc func(ctx context.Context, in OutreachInput) (Outreach, error)

// OutreachInput is what an OutreachFunc replays.
type OutreachInput struct {
	// Alerts are the firing alerts of the period, in time order.
	Alerts []proactive.Alert
	// Fleet is every device the history had samples of, with its model
	// ("" when the samples did not say): the devices a rule applies to,
	// for the share of an incident.
	Fleet map[proactive.DeviceID]string
	// From and To are the period, [From, To).
	From, To time.Time
	// True, set when failures were given, reports whether a failure of the
	// alert's device and component follows it within the horizon: what a
	// dispatcher or a visit would find of its ticket.
	True func(proactive.Alert) bool
}

// Outreach is what the notifier made of a backtest's alerts.
type Outreach struct {
	// Tickets are the tickets opened, in the order they opened.
	Tickets []OutreachTicket
	// Note says how the replay was made (where the registry came from,
	// what stands in for people), for the report's header.
	Note string
}

// OutreachTicket is one ticket a replay opened.
type OutreachTicket struct {
	Rule      string
	Device    proactive.DeviceID
	Component string
	// FiredAt is the time of the alert that opened it.
	FiredAt time.Time
	// Texted is set when its customer was sent the offer.
	Texted bool
}

// outreach runs o.Outreach over the report's alerts and counts the tickets
// and texts per rule, true and false when failures were given.
func (rep *BacktestReport) outreach(ctx context.Context, o BacktestOptions, fleet map[proactive.DeviceID]string) error {
	in := OutreachInput{Fleet: fleet, From: rep.From, To: rep.To}
	for _, a := range rep.Alerts {
		if a.State == proactive.AlertFiring {
			in.Alerts = append(in.Alerts, a)
		}
	}
	if len(o.Failures) > 0 {
		in.True = FailureFollows(o.Failures, o.Horizon)
	}
	out, err := o.Outreach(ctx, in)
	if err != nil {
		return err
	}
	rep.Outreach = &out
	rep.countOutreach(out, in.True)
	return nil
}

// countOutreach sets each rule's tickets and texts from a replay's tickets;
// truth, when set, splits them into true and false.
func (rep *BacktestReport) countOutreach(out Outreach, truth func(proactive.Alert) bool) {
	idx := map[string]int{}
	for i := range rep.Rules {
		idx[rep.Rules[i].Rule] = i
		if truth != nil {
			r := &rep.Rules[i]
			r.TrueTickets, r.FalseTickets, r.TrueTexts, r.FalseTexts = new(int), new(int), new(int), new(int)
		}
	}
	for _, t := range out.Tickets {
		i, ok := idx[t.Rule]
		if !ok {
			continue
		}
		r := &rep.Rules[i]
		r.Tickets++
		if t.Texted {
			r.Texts++
		}
		if truth == nil {
			continue
		}
		if truth(proactive.Alert{Rule: t.Rule, Device: t.Device, Component: t.Component, FiredAt: t.FiredAt}) {
			*r.TrueTickets++
			if t.Texted {
				*r.TrueTexts++
			}
		} else {
			*r.FalseTickets++
			if t.Texted {
				*r.FalseTexts++
			}
		}
	}
	if days := rep.Days(); days > 0 {
		for i := range rep.Rules {
			r := &rep.Rules[i]
			r.TicketsPerDay, r.TextsPerDay = float64(r.Tickets)/days, float64(r.Texts)/days
		}
	}
}

// FailureFollows returns whether a failure of an alert's device and
// component follows it within horizon (default DefaultHorizon): the
// scoring's test of a true alert (ScoreAlerts), for any alert.
func FailureFollows(failures []Failure, horizon time.Duration) func(proactive.Alert) bool {
	if horizon <= 0 {
		horizon = DefaultHorizon
	}
	sc := newScorer(nil, failures, ScoreOptions{Horizon: horizon})
	return sc.followed
}
