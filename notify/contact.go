package notify

import (
	"context"
	"fmt"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// The contact policy (product.md, "Who is contacted"): which new tickets
// text their customer, and why the others do not. Every ticket whose offer
// is held says why (held_reason, a timeline entry, a metric) and waits in
// review for a dispatcher, except a contact: none ticket, which stays open
// for the field-service team.

// Off, given as a duration in Options (ContactCooldown, MaxAlertAge) or as
// MinPrecision, turns that check off.
const Off = -1

// Why a customer was not texted about a new ticket: the held_reason of the
// ticket and the reason label of proactive_alerts_held_total.
const (
	heldContactNone = "contact_none"     // the rule's contact is none
	heldAge         = "alert_age"        // the alert is older than MaxAlertAge
	heldReview      = "review"           // the rule's contact is review
	heldUntrusted   = "untrusted_rule"   // the rule's precision is too low
	heldNoCustomer  = "no_customer"      // the device has no customer
	heldOptedOut    = "opted_out"        // the customer opted out
	heldNoConsent   = "no_consent"       // the customer never consented
	heldCooldown    = "contact_cooldown" // an offer about the device went out lately
	heldQuietHours  = "quiet_hours"      // the offer waits for the quiet hours' end
	heldDailyCap    = "daily_cap"        // the offer waits for the daily cap
)

// heldNotes explain a held reason on the timeline.
var heldNotes = map[string]string{
	heldContactNone: "the rule's contact is none: a ticket for the field-service team, no customer text",
	heldAge:         "the alert is too old to text the customer about",
	heldReview:      "the rule's contact is review: a dispatcher approves or dismisses the ticket",
	heldUntrusted:   "the rule's measured precision is under notify.min_precision: a dispatcher reviews its tickets",
	heldNoCustomer:  "the device has no customer to text",
	heldOptedOut:    "the customer opted out of their preferred channel",
	heldNoConsent:   "the customer has not consented to their preferred channel",
	heldCooldown:    "the customer was offered a visit about this device within the contact cooldown",
	heldQuietHours:  "the offer waits for the end of the customer's quiet hours",
	heldDailyCap:    "the offer waits: the customer had the daily cap of messages",
}

// contactState is what the contact policy decides a new ticket's outreach
// on, beyond its party.
type contactState struct {
	// Contact is the alert's rule's policy.
	Contact proactive.Contact
	// Age is how old the alert was when notify saw it, by the notifier's
	// clock; TooOld whether that is over MaxAlertAge.
	Age    time.Duration
	TooOld bool
	// Trust is the rule's record, Untrusted whether it holds the rule's
	// tickets to review (read only for contact auto).
	Trust     Trust
	Untrusted bool
}

// policyHold is why the contact policy holds a new ticket's offer before
// the customer is looked at, "" when it does not.
func policyHold(cs contactState) string {
	switch {
	case cs.Contact == proactive.ContactNone:
		return heldContactNone
	case cs.TooOld:
		return heldAge
	case cs.Contact == proactive.ContactReview:
		return heldReview
	case cs.Untrusted:
		return heldUntrusted
	}
	return ""
}

// customerHold is why a party's customer may not be offered a visit now,
// "" when they may.
func customerHold(p party, recent int) string {
	ch := p.channel()
	switch c := p.Customer; {
	case c.ID == "":
		return heldNoCustomer
	case !c.Consents(ch) && !c.ConsentTime(ch).IsZero():
		return heldOptedOut
	case !c.Consents(ch):
		return heldNoConsent
	case recent > 0:
		return heldCooldown
	}
	return ""
}

// holdChange is the record of a held offer: why, on the ticket and its
// timeline, and the move to review unless the rule's contact is none.
func holdChange(t proactive.Ticket, reason string, cs contactState, now time.Time) devices.Change {
	body := map[string]any{"outreach": "skipped", "reason": reason, "note": heldNotes[reason]}
	if reason == heldAge {
		body["age"] = cs.Age.Round(time.Second).String()
	}
	if reason == heldUntrusted {
		body["precision"], body["outcomes"] = cs.Trust.Precision, cs.Trust.Outcomes
	}
	c := devices.Change{At: now, Ticket: t.ID, Held: reason,
		Entries: []devices.Entry{{Ticket: t.ID, Actor: "notify", Body: body}}}
	if reason != heldContactNone && t.Status == proactive.TicketOpen {
		c.Status = &devices.StatusChange{To: proactive.TicketReview, Actor: "notify", Note: "held for review: " + reason}
	}
	return c
}

// contactState reads what the policy needs about alert a, in tx: its age
// and, for a rule whose contact is auto, its trust.
func (n *Notifier) contactState(ctx context.Context, tx *devices.Tx, a proactive.Alert, now time.Time) (contactState, error) {
	cs := contactState{Contact: a.Contact.OrAuto()}
	if !a.FiredAt.IsZero() {
		cs.Age = now.Sub(a.FiredAt)
		cs.TooOld = n.opt.MaxAlertAge > 0 && cs.Age > n.opt.MaxAlertAge
	}
	if cs.Contact == proactive.ContactAuto && !cs.TooOld {
		rt, err := tx.RuleTrust(ctx, a.Rule)
		if err != nil {
			return cs, err
		}
		cs.Trust = n.trust(rt)
		cs.Untrusted = cs.Trust.Held
	}
	return cs, nil
}

// Approve lets a ticket in review text its customer: the offer goes out at
// once (slots held, message queued, reminder and expiry armed), whatever
// held it, since a person decided. When the customer cannot be texted (no
// customer, no consent, opted out) the ticket goes to open instead, the
// reason on its timeline, for the field-service team to call. ENotFound for
// no such ticket; EConflict for a ticket not in review.
func (n *Notifier) Approve(ctx context.Context, ticket int64, actor string) (proactive.Ticket, error) {
	t, p, err := n.ticketParty(ctx, ticket)
	if err != nil {
		return proactive.Ticket{}, err
	}
	if t.Status != proactive.TicketReview {
		return proactive.Ticket{}, proactive.Errorf(proactive.EConflict, "ticket %d is %s: only a ticket in review can be approved", t.ID, t.Status)
	}
	techs, err := n.technicians(ctx, p.Component, p.Device.Site.PostalCode)
	if err != nil {
		return proactive.Ticket{}, err
	}
	queued := false
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		t, err := tx.LockTicket(ctx, ticket)
		if err != nil {
			return err
		}
		if t.Status != proactive.TicketReview {
			return proactive.Errorf(proactive.EConflict, "ticket %d went to %s meanwhile: it was not approved", t.ID, t.Status)
		}
		now := n.clock()
		var c devices.Change
		if why := customerHold(p, 0); why != "" {
			c = devices.Change{At: now, Ticket: t.ID, Held: why,
				Status: &devices.StatusChange{To: proactive.TicketOpen, Actor: actor,
					Note: fmt.Sprintf("approved, but the customer cannot be texted (%s): %s", why, heldNotes[why])}}
		} else {
			slots, err := n.holdSlots(ctx, tx, t, p, techs, 1, now)
			if err != nil {
				return err
			}
			a := proactive.Alert{Severity: t.Severity}
			if !t.PredictedFailure.IsZero() {
				a.TimeToFailure = max(t.PredictedFailure.Sub(now), 0)
			}
			if c, err = n.offerChange(alertState{Party: p, Ticket: t, Created: true}, n.planOffer(a), slots, now); err != nil {
				return err
			}
			c.Status.Actor, c.Status.Note = actor, "approved: visit offered by SMS"
			queued = true
		}
		_, err = tx.Apply(ctx, c)
		return err
	})
	if err != nil {
		return proactive.Ticket{}, wrap("approve ticket", err)
	}
	if queued {
		n.notifyWake()
	}
	return n.store.GetTicket(ctx, ticket)
}

// Dismiss closes a ticket that is open or in review as a false alarm, with
// actor's note: no visit, and its rule's precision counts it. ENotFound for
// no such ticket; EConflict for one in another status.
func (n *Notifier) Dismiss(ctx context.Context, ticket int64, actor, note string) (proactive.Ticket, error) {
	if note == "" {
		note = "dismissed"
	}
	return n.store.CloseTicket(ctx, ticket, proactive.OutcomeFalseAlarm, note, actor)
}

// holdOffer records on its ticket that an offer waits (quiet hours, the
// daily cap) and until when: the ticket stays offered, since the offer goes
// out by itself, but it says why nothing has yet. Other messages are not
// recorded: only the offer is the alert's.
func holdOffer(ctx context.Context, tx *devices.Tx, r outRow, reason string, until, now time.Time) error {
	if r.Kind != KindOffer || r.Ticket == 0 {
		return nil
	}
	_, err := tx.Apply(ctx, devices.Change{At: now, Ticket: r.Ticket, Held: reason, Entries: []devices.Entry{{Ticket: r.Ticket,
		Actor: "notify", Body: map[string]any{"outreach": "deferred", "reason": reason, "note": heldNotes[reason], "until": until.UTC()}}}})
	return err
}
