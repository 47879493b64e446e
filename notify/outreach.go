package notify

import (
	"context"
	"fmt"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// Conversation stages, in the outreach table.
const (
	stageOffer     = "offer"
	stageScheduled = "scheduled"
	stageSurvey    = "survey"
	stageDone      = "done"
)

// Job kinds, in the jobs table.
const (
	jobOfferReminder = "offer_reminder"
	jobOfferExpire   = "offer_expire"
	jobVisitReminder = "visit_reminder"
	jobSurveyTimeout = "survey_timeout"
)

// party is who a ticket's messages go to and what they are about.
type party struct {
	Customer  proactive.Customer
	Device    proactive.Device
	Component string
	// Channel is the channel of the conversation when a reply set it (the
	// answers go where the customer wrote), empty for the customer's
	// preferred one; see channel.
	Channel proactive.Channel
}

// data is what every message about p's device says: the device by the
// name its customer knows, else its model.
func (p party) data() msgData {
	product := p.Device.Name
	if product == "" {
		product = p.Device.Model
	}
	return msgData{Product: product, Component: p.Component, Channel: p.channel()}
}

// loadParty reads a device and its customer (Customer.ID empty when the
// device has none).
func (n *Notifier) loadParty(ctx context.Context, dev proactive.DeviceID, component string) (party, error) {
	d, err := n.store.GetDevice(ctx, dev)
	if err != nil {
		return party{}, err
	}
	p := party{Device: d, Component: component}
	if d.CustomerID != "" {
		if p.Customer, err = n.store.GetCustomer(ctx, d.CustomerID); err != nil {
			return party{}, err
		}
	}
	return p, nil
}

// handleAlert opens the alert's ticket and, for a new ticket whose customer
// may be contacted, writes the offer. It reports whether a message was
// queued.
func (n *Notifier) handleAlert(ctx context.Context, a proactive.Alert) (bool, error) {
	o := n.planOffer(a)
	p, err := n.loadParty(ctx, a.Device, a.Component)
	if err != nil {
		return false, wrap("read device", err)
	}
	// Calendars are read outside the transaction, which on SQLite holds
	// the write lock; bookings and holds are read inside it.
	techs, err := n.technicians(ctx, p.Component, p.Device.Site.PostalCode)
	if err != nil {
		return false, err
	}
	applicable, err := n.applicable(ctx, a)
	if err != nil {
		return false, err
	}
	queued, held := false, ""
	var g grouping
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		held = "" // a retried transaction decides afresh
		t, created, err := tx.OpenTicket(ctx, a)
		if err != nil {
			return err
		}
		if g, err = n.groupAlert(ctx, tx, a, t, applicable); err != nil || g.Incident != 0 && !fieldTeam(a) {
			return err // one of an incident's alerts: its ticket waits in review
		}
		now := n.clock()
		st := alertState{Party: p, Ticket: t, Created: created}
		if created {
			if st.Contact, err = n.contactState(ctx, tx, a, now); err != nil {
				return err
			}
		}
		if created {
			if st.Recent, err = n.recentOffers(ctx, tx, p, now); err != nil {
				return err
			}
		}
		d := decideAlert(st, now)
		if d.Action == alertOffer && n.opt.GroupWait > 0 {
			_, err = tx.Apply(ctx, n.waitChange(t, now)) // an incident may form meanwhile
			return err
		}
		queued, held, err = n.carryOut(ctx, tx, st, d, o, techs, now)
		return err
	})
	if err == nil {
		n.grouped(a, g, applicable)
		n.countHeld(held)
	}
	return queued, wrap("open ticket and offer", err)
}

// carryOut does in tx what an alert's decision says: a skip is recorded,
// an offer goes out with slots held for it.
func (n *Notifier) carryOut(ctx context.Context, tx *devices.Tx, st alertState, d alertDecision, o offerPlan,
	techs []proactive.Technician, now time.Time) (queued bool, held string, err error) {
	var c devices.Change
	switch d.Action {
	case alertNone:
		return false, "", nil
	case alertSkip:
		held, c = d.Reason, d.Change
	case alertOffer:
		slots, err := n.holdSlots(ctx, tx, st.Ticket, st.Party, techs, 1, now)
		if err != nil {
			return false, "", err
		}
		if c, err = n.offerChange(st, o, slots, now); err != nil {
			return false, "", err
		}
		queued = true
	}
	_, err = tx.Apply(ctx, c)
	return queued, held, err
}

// countHeld counts an alert held from the customer, once its transaction
// committed: a retry does not count twice.
func (n *Notifier) countHeld(held string) {
	if held != "" {
		n.metrics.skipped.WithLabelValues(held).Inc()
		n.metrics.held.WithLabelValues(held).Inc()
	}
}

// schedule arms the job of kind for ticket at due, replacing any earlier one.
func schedule(ctx context.Context, tx *devices.Tx, kind string, ticket int64, due time.Time) error {
	return tx.ScheduleJob(ctx, kind, ticket, due)
}

// cancelJobs disarms a ticket's jobs of the given kinds.
func cancelJobs(ctx context.Context, tx *devices.Tx, ticket int64, now time.Time, kinds ...string) error {
	return tx.CancelJobs(ctx, ticket, now, kinds...)
}

// outMessage is a message of kind to a ticket's party (ticket 0: none).
func outMessage(p party, ticket int64, kind, body string, urgent bool, now time.Time) devices.NewMessage {
	ch := p.channel()
	return devices.NewMessage{Ticket: ticket, Customer: p.Customer.ID, Channel: ch, Phone: p.Customer.Address(ch), Device: p.Device.ID,
		TimeZone: p.Device.TimeZone, Kind: kind, Body: body, Urgent: urgent, At: now}
}

// enqueue writes a message to the outbox and to the ticket's timeline
// (ticket 0: none), in tx.
func (n *Notifier) enqueue(ctx context.Context, tx *devices.Tx, p party, ticket int64, kind, body string, urgent bool) (int64, error) {
	return tx.Enqueue(ctx, outMessage(p, ticket, kind, body, urgent, n.clock()))
}

// offerSlots reads the slots of a ticket's offer, by position.
func offerSlots(ctx context.Context, tx *devices.Tx, ticket int64, offer int) ([]Slot, error) {
	held, err := tx.OfferSlots(ctx, ticket, offer)
	return toSlots(held), err
}

// toSlots converts the store's offer slots.
func toSlots(held []devices.OfferSlot) []Slot {
	var out []Slot
	for _, s := range held {
		out = append(out, Slot(s))
	}
	return out
}

func (n *Notifier) slotLines(p party, slots []Slot) []string {
	loc := n.zone(p.Device.TimeZone)
	lines := make([]string, len(slots))
	for i, s := range slots {
		lines[i] = fmt.Sprintf("%d) %s", s.Position, formatSlot(p.Customer.Language, s.Start, s.End, loc))
	}
	return lines
}

// conversation is a ticket's outreach row.
type conversation = devices.Conversation

func readConversation(ctx context.Context, tx *devices.Tx, ticket int64) (conversation, error) {
	return tx.Conversation(ctx, ticket)
}

func setStage(ctx context.Context, tx *devices.Tx, ticket int64, stage string, now time.Time) error {
	return tx.SetStage(ctx, ticket, stage, now)
}

// releaseHolds ends the holds of a ticket's offered slots.
func releaseHolds(ctx context.Context, tx *devices.Tx, ticket int64, now time.Time) error {
	return tx.ReleaseHolds(ctx, ticket, now)
}

// errSlotTaken is book's answer when another booking won the slot.
var errSlotTaken = devices.ErrSlotTaken

// book books slot s for a ticket in tx: the appointment, the ticket
// scheduled and assigned, holds released, offer jobs cancelled, the
// confirmation queued (when the customer may be texted) and the visit
// reminder armed. errSlotTaken, with nothing written, when the technician
// is no longer free then.
func (n *Notifier) book(ctx context.Context, tx *devices.Tx, t proactive.Ticket, p party, s Slot, actor string) (Appointment, error) {
	now := n.clock()
	if !s.Start.After(now) {
		return Appointment{}, errSlotTaken // an old offer's slot that has passed
	}
	hasConv := true
	if _, err := tx.Conversation(ctx, t.ID); proactive.ErrorCode(err) == proactive.ENotFound {
		hasConv = false
	} else if err != nil {
		return Appointment{}, err
	}
	c, err := n.bookChange(t, p, s, actor, hasConv, now)
	if err != nil {
		return Appointment{}, err
	}
	res, err := tx.Apply(ctx, c)
	if err != nil {
		return Appointment{}, err
	}
	return Appointment{ID: res.Appointment, Ticket: t.ID, Technician: s.Technician, Start: s.Start.UTC(), End: s.End.UTC(),
		Status: "booked", BookedAt: now, BookedBy: actor}, nil
}

// reoffer replaces a ticket's offer with fresh slots after its chosen slot
// was taken, and queues the new offer.
func (n *Notifier) reoffer(ctx context.Context, tx *devices.Tx, t proactive.Ticket, p party, techs []proactive.Technician) error {
	now := n.clock()
	offer, err := tx.RenewOffer(ctx, t.ID, now)
	if err != nil {
		return err
	}
	if err := tx.ReleaseHolds(ctx, t.ID, now); err != nil {
		return err
	}
	slots, err := n.holdSlots(ctx, tx, t, p, techs, offer, now)
	if err != nil {
		return err
	}
	c, err := n.reofferChange(t, p, slots, now)
	if err != nil {
		return err
	}
	_, err = tx.Apply(ctx, c)
	return err
}

// endSurvey closes a visited ticket with its visit's outcome.
func (n *Notifier) endSurvey(ctx context.Context, tx *devices.Tx, ticket int64, now time.Time) error {
	_, err := tx.Apply(ctx, devices.Change{At: now, Ticket: ticket, Close: "notify", Stage: stageDone,
		CancelJobs: []string{jobSurveyTimeout}})
	return err
}

// recentOffers counts the offers about the party's device within the
// contact cooldown: none to count when the customer cannot be texted or
// the cooldown is off.
func (n *Notifier) recentOffers(ctx context.Context, tx *devices.Tx, p party, now time.Time) (int, error) {
	if !contactable(p) || n.opt.ContactCooldown <= 0 {
		return 0, nil
	}
	return tx.CountMessages(ctx, p.Device.ID, KindOffer, now.Add(-n.opt.ContactCooldown))
}
