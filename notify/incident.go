package notify

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// Incidents and group_wait: many devices firing one rule at once are one
// problem (often ours: an outage, a bad rule, a firmware push), not many
// customers' problems. Every firing alert is recorded with its rule, device
// and time; when enough devices fire a rule within the window, they form an
// incident, their tickets wait in review and nobody is texted for them. An
// offer waits GroupWait after its alert so that an incident can form first.

// jobGroupWait is the job that sends a new ticket's offer once GroupWait has
// passed, unless its ticket has joined an incident (or was otherwise moved
// on) meanwhile.
const jobGroupWait = "group_wait"

// Held reasons of this file: an offer waiting group_wait, and a ticket held
// because it belongs to an incident (devices.JoinIncident records it).
const (
	heldGroupWait  = "group_wait"
	reasonIncident = "incident"
)

// incidentMetrics counts the incidents formed.
type incidentMetrics struct {
	opened prometheus.Counter
}

func newIncidentMetrics(reg prometheus.Registerer) incidentMetrics {
	m := incidentMetrics{opened: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "proactive_notify_incidents_opened_total", Help: "Incidents formed: enough devices fired one rule within the incident window."})}
	if reg != nil {
		reg.MustRegister(m.opened)
	}
	return m
}

// forms reports whether devices firing a rule within the window form an
// incident, out of applicable registered devices the rule applies to: at
// least IncidentMinDevices of them, and at least IncidentMinShare.
func (o Options) forms(devices, applicable int) bool {
	if devices < o.IncidentMinDevices {
		return false
	}
	// The share is compared in whole devices, with a little slack for
	// binary fractions (0.2 × 25 is not exactly 5).
	return float64(devices) >= o.IncidentMinShare*float64(applicable)-1e-9
}

// applicable counts the registered devices an alert's rule applies to.
func (n *Notifier) applicable(ctx context.Context, a proactive.Alert) (int, error) {
	key := strings.Join(a.Models, "\x00")
	if n.opt.fixedRegistry {
		n.appliesMu.Lock()
		c, ok := n.applies[key]
		n.appliesMu.Unlock()
		if ok {
			return c, nil
		}
	}
	c, err := n.store.CountModelDevices(ctx, a.Models)
	if err == nil && n.opt.fixedRegistry {
		n.appliesMu.Lock()
		if n.applies == nil {
			n.applies = map[string]int{}
		}
		n.applies[key] = c
		n.appliesMu.Unlock()
	}
	return c, wrap("count the rule's devices", err)
}

// grouping is what groupAlert did with an alert.
type grouping struct {
	// Incident is the incident the alert belongs to, 0 for none.
	Incident int64
	// Formed is true when this alert formed it.
	Formed bool
	// Held counts the alerts whose customer is not texted because of it:
	// this alert, and those whose offers were waiting.
	Held int
}

// groupAlert records a firing alert of ticket t, in tx, and puts it into
// its rule's incident: the open one whose latest alert is within the window,
// or a new one when enough devices fired the rule within the window either
// side of it. The incident's tickets move to review (devices.JoinIncident).
func (n *Notifier) groupAlert(ctx context.Context, tx *devices.Tx, a proactive.Alert, t proactive.Ticket, applicable int) (grouping, error) {
	at := a.FiredAt
	if at.IsZero() {
		at = n.clock()
	}
	if err := tx.LockRule(ctx, a.Rule); err != nil {
		return grouping{}, err
	}
	if err := tx.RecordFiring(ctx, a.Rule, a.Device, t.ID, at); err != nil {
		return grouping{}, err
	}
	w := n.opt.IncidentWindow
	var g grouping
	id, ok, err := tx.ActiveIncident(ctx, a.Rule, at.Add(-w))
	if err != nil {
		return grouping{}, err
	}
	if !ok {
		count, err := tx.UngroupedDevices(ctx, a.Rule, at.Add(-w), at.Add(w))
		if err != nil || !n.opt.forms(count, applicable) {
			return grouping{}, err
		}
		if id, err = tx.OpenIncident(ctx, a.Rule, at, applicable); err != nil {
			return grouping{}, err
		}
		g.Formed = true
	}
	var stay int64
	if fieldTeam(a) {
		stay = t.ID // its ticket stays open, as the rule's always do
	}
	held, err := tx.JoinIncident(ctx, id, at.Add(-w), at.Add(w), stay, jobGroupWait)
	if err != nil {
		return grouping{}, err
	}
	g.Incident, g.Held = id, len(held)
	if !containsID(held, t.ID) && stay == 0 {
		g.Held++ // the alert joined a ticket that waits already
	}
	return g, nil
}

// fieldTeam reports whether an alert's rule never texts customers
// (contact: none): its tickets stay open for the field team, incident or not.
func fieldTeam(a proactive.Alert) bool { return a.Contact.OrAuto() == proactive.ContactNone }

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// grouped counts and logs what groupAlert did, once its transaction has
// committed.
func (n *Notifier) grouped(a proactive.Alert, g grouping, applicable int) {
	if g.Incident == 0 {
		return
	}
	n.metrics.held.WithLabelValues(reasonIncident).Add(float64(g.Held))
	if g.Formed {
		n.incidents.opened.Inc()
		n.log.Warn("incident opened: many devices fired one rule; their customers are not texted", "incident_id", g.Incident,
			"rule", a.Rule, "applicable_devices", applicable, "window", n.opt.IncidentWindow.String())
	}
}

// waitChange is a new ticket's offer put off by GroupWait: the job that
// sends it, and why on the timeline.
func (n *Notifier) waitChange(t proactive.Ticket, now time.Time) devices.Change {
	return devices.Change{At: now, Ticket: t.ID, Held: heldGroupWait,
		Jobs: []devices.NewJob{{Kind: jobGroupWait, Due: now.Add(n.opt.GroupWait)}},
		Entries: []devices.Entry{{Ticket: t.ID, Actor: "notify", Body: map[string]any{
			"outreach": "waiting", "group_wait": n.opt.GroupWait.String(),
			"note": "the offer waits in case many devices fire this rule at once (an incident)"}}}}
}

// runGroupWait sends the offer of a ticket whose GroupWait has passed,
// unless it has joined an incident or left status open meanwhile. The
// contact policy decided already (the offer was to go out); the customer is
// decided on again, as consent or the contact cooldown may have changed in
// the wait.
func (n *Notifier) runGroupWait(ctx context.Context, id, ticket int64) (bool, error) {
	t, p, err := n.ticketParty(ctx, ticket)
	if err != nil {
		return false, err
	}
	techs, err := n.technicians(ctx, p.Component, p.Device.Site.PostalCode)
	if err != nil {
		return false, err
	}
	// The prediction is kept as a time; the offer states the time to
	// failure as the alert gave it.
	o := offerPlan{Urgent: t.Severity == proactive.SeverityCritical && n.opt.CriticalInQuietHours}
	if !t.PredictedFailure.IsZero() {
		o.TimeToFailure = max(t.PredictedFailure.Sub(t.OpenedAt), 0)
	}
	queued, held := false, ""
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		held = "" // a retried transaction decides afresh
		now := n.clock()
		if claimed, err := tx.ClaimJob(ctx, id, now); err != nil || !claimed {
			return err // or another notifier ran it
		}
		t, err := tx.LockTicket(ctx, ticket)
		if err != nil {
			return err
		}
		if t.Status != proactive.TicketOpen || t.IncidentID != 0 {
			return nil // an incident, a dispatcher or a cancellation came first
		}
		st := alertState{Party: p, Ticket: t, Created: true} // Contact zero: the policy let it through
		if st.Recent, err = n.recentOffers(ctx, tx, p, now); err != nil {
			return err
		}
		d := decideAlert(st, now)
		if d.Action == alertOffer {
			if err := tx.EndWait(ctx, t.ID, heldGroupWait); err != nil {
				return err
			}
		}
		queued, held, err = n.carryOut(ctx, tx, st, d, o, techs, now)
		return err
	})
	if err == nil {
		n.countHeld(held)
	}
	return queued, wrap("send the offer after group_wait", err)
}
