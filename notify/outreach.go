package notify

import (
	"context"
	"database/sql"
	"errors"
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
	Customer  devices.Customer
	Device    devices.Device
	Component string
}

func (p party) data() msgData {
	return msgData{Product: p.Device.Model, Component: p.Component}
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
	p, err := n.loadParty(ctx, a.Device, a.Component)
	if err != nil {
		return false, wrap("read device", err)
	}
	// Calendars are read outside the transaction, which on SQLite holds
	// the write lock; bookings and holds are read inside it.
	techs, err := n.technicians(ctx, a.Component, p.Device.Site.PostalCode)
	if err != nil {
		return false, err
	}
	queued := false
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		t, created, err := tx.OpenTicket(ctx, a)
		if err != nil || !created {
			return err
		}
		now := n.clock()
		if reason, err := n.skipReason(ctx, tx, p, now); err != nil {
			return err
		} else if reason != "" {
			n.metrics.skipped.WithLabelValues(reason).Inc()
			_, err := tx.Record(ctx, t.ID, devices.EventMessage, "notify", map[string]any{"outreach": "skipped", "reason": reason})
			return err
		}
		// Latency is measured from when the platform raised the alert, on
		// its own clock: the alert's FiredAt is in the devices' time, which
		// late data, clock skew or a simulation at speed move away from it.
		alertAt := now
		if _, err := tx.ExecContext(ctx, `INSERT INTO outreach (ticket_id, customer_id, device_id, stage, offer_no, alert_at, offered_at, updated_at)
			VALUES ($1, $2, $3, $4, 1, $5, $6, $6)`, t.ID, p.Customer.ID, string(p.Device.ID), stageOffer, alertAt.UTC(), now); err != nil {
			return fmt.Errorf("insert outreach: %w", err)
		}
		slots, err := n.holdSlots(ctx, tx, t, p, techs, 1, now)
		if err != nil {
			return err
		}
		kind, tmpl := KindOffer, KindOffer
		if len(slots) == 0 {
			tmpl = "offer_noslots"
		}
		d := p.data()
		d.Forecast = formatForecast(p.Customer.Language, a.TimeToFailure)
		d.Slots = n.slotLines(p, slots)
		body, err := render(p.Customer.Language, tmpl, d)
		if err != nil {
			return err
		}
		if _, err := tx.Transition(ctx, t.ID, proactive.TicketOffered, "notify", "visit offered by SMS"); err != nil {
			return err
		}
		urgent := a.Severity == proactive.SeverityCritical && n.opt.CriticalInQuietHours
		if _, err := n.enqueue(ctx, tx, p, t.ID, kind, body, urgent); err != nil {
			return err
		}
		if err := n.scheduleOfferJobs(ctx, tx, t.ID, now); err != nil {
			return err
		}
		queued = true
		return nil
	})
	return queued, wrap("open ticket and offer", err)
}

// skipReason says why a new ticket's customer is not texted, "" when they
// may be.
func (n *Notifier) skipReason(ctx context.Context, tx *devices.Tx, p party, now time.Time) (string, error) {
	switch {
	case p.Customer.ID == "":
		return "no_customer", nil
	case !p.Customer.SMSConsent && !p.Customer.ConsentAt.IsZero():
		return "opted_out", nil
	case !p.Customer.SMSConsent:
		return "no_consent", nil
	}
	var recent int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE device_id = $1 AND kind = $2 AND created_at > $3
		AND status <> 'suppressed'`, string(p.Device.ID), KindOffer, now.Add(-n.opt.ContactCooldown)).Scan(&recent)
	if err != nil {
		return "", fmt.Errorf("check contact cooldown: %w", err)
	}
	if recent > 0 {
		return "contact_cooldown", nil
	}
	return "", nil
}

// scheduleOfferJobs (re)arms an offer's reminder and expiry.
func (n *Notifier) scheduleOfferJobs(ctx context.Context, tx *devices.Tx, ticket int64, now time.Time) error {
	if n.opt.OfferReminder < n.opt.OfferExpiry {
		if err := schedule(ctx, tx, jobOfferReminder, ticket, now.Add(n.opt.OfferExpiry-n.opt.OfferReminder)); err != nil {
			return err
		}
	}
	return schedule(ctx, tx, jobOfferExpire, ticket, now.Add(n.opt.OfferExpiry))
}

// schedule arms the job of kind for ticket at due, replacing any earlier one.
func schedule(ctx context.Context, tx *devices.Tx, kind string, ticket int64, due time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, ticket_id, due_at) VALUES ($1, $2, $3)
		ON CONFLICT (kind, ticket_id) DO UPDATE SET due_at = excluded.due_at, done_at = NULL`, kind, ticket, due.UTC())
	if err != nil {
		return fmt.Errorf("schedule %s: %w", kind, err)
	}
	return nil
}

// cancelJobs disarms a ticket's jobs of the given kinds.
func cancelJobs(ctx context.Context, tx *devices.Tx, ticket int64, now time.Time, kinds ...string) error {
	for _, k := range kinds {
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET done_at = $3 WHERE ticket_id = $1 AND kind = $2 AND done_at IS NULL`,
			ticket, k, now); err != nil {
			return fmt.Errorf("cancel %s: %w", k, err)
		}
	}
	return nil
}

// enqueue writes a message to the outbox and to the ticket's timeline
// (ticket 0: none), in tx.
func (n *Notifier) enqueue(ctx context.Context, tx *devices.Tx, p party, ticket int64, kind, body string, urgent bool) (int64, error) {
	now := n.clock()
	var tk sql.NullInt64
	if ticket > 0 {
		tk = sql.NullInt64{Int64: ticket, Valid: true}
	}
	var dev sql.NullString
	if p.Device.ID != "" {
		dev = sql.NullString{String: string(p.Device.ID), Valid: true}
	}
	tz := p.Device.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO outbox (ticket_id, customer_id, device_id, to_phone, time_zone, kind, body, urgent,
		status, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9) RETURNING id`,
		tk, p.Customer.ID, dev, p.Customer.Phone, tz, kind, body, urgent, now).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert outbox message: %w", err)
	}
	if ticket > 0 {
		if _, err := tx.Record(ctx, ticket, devices.EventMessage, "notify", map[string]any{
			"direction": "out", "kind": kind, "message_id": id, "body": body}); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// offerSlots reads the slots of a ticket's offer, by position.
func offerSlots(ctx context.Context, tx *devices.Tx, ticket int64, offer int) ([]Slot, error) {
	rows, err := tx.QueryContext(ctx, `SELECT position, technician_id, starts_at, ends_at FROM offer_slots
		WHERE ticket_id = $1 AND offer_no = $2 ORDER BY position`, ticket, offer)
	if err != nil {
		return nil, fmt.Errorf("read offer slots: %w", err)
	}
	defer rows.Close()
	var out []Slot
	for rows.Next() {
		var s Slot
		if err := rows.Scan(&s.Position, &s.Technician, &s.Start, &s.End); err != nil {
			return nil, fmt.Errorf("read offer slots: %w", err)
		}
		s.Start, s.End = s.Start.UTC(), s.End.UTC()
		out = append(out, s)
	}
	return out, rows.Err()
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
type conversation struct {
	Ticket    int64
	Customer  string
	Device    proactive.DeviceID
	Stage     string
	Offer     int
	Clarified bool
}

func readConversation(ctx context.Context, tx *devices.Tx, ticket int64) (conversation, error) {
	var c conversation
	err := tx.QueryRowContext(ctx, `SELECT ticket_id, customer_id, device_id, stage, offer_no, clarified FROM outreach
		WHERE ticket_id = $1`, ticket).Scan(&c.Ticket, &c.Customer, &c.Device, &c.Stage, &c.Offer, &c.Clarified)
	if errors.Is(err, sql.ErrNoRows) {
		return c, proactive.Errorf(proactive.ENotFound, "ticket %d has no SMS conversation", ticket)
	}
	return c, err
}

func setStage(ctx context.Context, tx *devices.Tx, ticket int64, stage string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE outreach SET stage = $2, updated_at = $3 WHERE ticket_id = $1`, ticket, stage, now)
	if err != nil {
		return fmt.Errorf("set conversation stage: %w", err)
	}
	return nil
}

// releaseHolds ends the holds of a ticket's offered slots.
func releaseHolds(ctx context.Context, tx *devices.Tx, ticket int64, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE offer_slots SET held_until = $2 WHERE ticket_id = $1 AND held_until > $2`, ticket, now)
	if err != nil {
		return fmt.Errorf("release slot holds: %w", err)
	}
	return nil
}

// errSlotTaken is book's answer when another booking won the slot.
var errSlotTaken = errors.New("slot taken")

// book books slot s for a ticket in tx: the appointment, the ticket
// scheduled and assigned, holds released, offer jobs cancelled, the
// confirmation queued (when the customer may be texted) and the visit
// reminder armed. errSlotTaken, with nothing written, when the technician
// is no longer free then.
func (n *Notifier) book(ctx context.Context, tx *devices.Tx, t devices.Ticket, p party, s Slot, actor string) (Appointment, error) {
	now := n.clock()
	if !s.Start.After(now) {
		return Appointment{}, errSlotTaken // an old offer's slot that has passed
	}
	var busy int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM appointments WHERE technician_id = $1 AND status <> 'cancelled'
		AND starts_at < $3 AND ends_at > $2`, s.Technician, s.Start.Add(-n.opt.TravelBuffer).UTC(), s.End.Add(n.opt.TravelBuffer).UTC()).Scan(&busy)
	if err != nil {
		return Appointment{}, fmt.Errorf("check technician calendar: %w", err)
	}
	if busy > 0 {
		return Appointment{}, errSlotTaken
	}
	a := Appointment{Ticket: t.ID, Technician: s.Technician, Start: s.Start.UTC(), End: s.End.UTC(), Status: "booked",
		BookedAt: now, BookedBy: actor}
	// Two bookings of one slot race here: the unique index lets one insert
	// and turns the other into no row (PostgreSQL waits for the first to
	// commit; SQLite has one writer).
	err = tx.QueryRowContext(ctx, `INSERT INTO appointments (ticket_id, technician_id, starts_at, ends_at, status, booked_at, booked_by)
		VALUES ($1, $2, $3, $4, 'booked', $5, $6)
		ON CONFLICT (technician_id, starts_at) WHERE status <> 'cancelled' DO NOTHING RETURNING id`,
		t.ID, a.Technician, a.Start, a.End, now, actor).Scan(&a.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return Appointment{}, errSlotTaken
	} else if err != nil {
		return Appointment{}, fmt.Errorf("insert appointment: %w", err)
	}
	if _, err := tx.Transition(ctx, t.ID, proactive.TicketScheduled, actor, "visit booked"); err != nil {
		return Appointment{}, err
	}
	if _, err := tx.Assign(ctx, t.ID, a.Technician, actor); err != nil {
		return Appointment{}, err
	}
	if err := releaseHolds(ctx, tx, t.ID, now); err != nil {
		return Appointment{}, err
	}
	if err := cancelJobs(ctx, tx, t.ID, now, jobOfferReminder, jobOfferExpire); err != nil {
		return Appointment{}, err
	}
	hasConv := true
	if _, err := readConversation(ctx, tx, t.ID); proactive.ErrorCode(err) == proactive.ENotFound {
		hasConv = false
	} else if err != nil {
		return Appointment{}, err
	}
	if !hasConv || !p.Customer.SMSConsent {
		return a, nil
	}
	if err := setStage(ctx, tx, t.ID, stageScheduled, now); err != nil {
		return Appointment{}, err
	}
	d := p.data()
	d.Visit = formatSlot(p.Customer.Language, a.Start, a.End, n.zone(p.Device.TimeZone))
	body, err := render(p.Customer.Language, KindConfirm, d)
	if err != nil {
		return Appointment{}, err
	}
	if _, err := n.enqueue(ctx, tx, p, t.ID, KindConfirm, body, false); err != nil {
		return Appointment{}, err
	}
	// The reminder goes out the day before at VisitReminderAt, local time;
	// a visit booked after that moment has just been confirmed instead.
	loc := n.zone(p.Device.TimeZone)
	v := a.Start.In(loc)
	due := time.Date(v.Year(), v.Month(), v.Day()-1, 0, int(n.opt.VisitReminderAt), 0, 0, loc)
	if due.After(now) {
		if err := schedule(ctx, tx, jobVisitReminder, t.ID, due); err != nil {
			return Appointment{}, err
		}
	}
	return a, nil
}

// reoffer replaces a ticket's offer with fresh slots after its chosen slot
// was taken, and queues the new offer.
func (n *Notifier) reoffer(ctx context.Context, tx *devices.Tx, t devices.Ticket, p party, techs []devices.Technician) error {
	now := n.clock()
	var offer int
	if err := tx.QueryRowContext(ctx, `UPDATE outreach SET offer_no = offer_no + 1, offered_at = $2, clarified = FALSE, updated_at = $2
		WHERE ticket_id = $1 RETURNING offer_no`, t.ID, now).Scan(&offer); err != nil {
		return fmt.Errorf("renew offer: %w", err)
	}
	if err := releaseHolds(ctx, tx, t.ID, now); err != nil {
		return err
	}
	slots, err := n.holdSlots(ctx, tx, t, p, techs, offer, now)
	if err != nil {
		return err
	}
	tmpl := KindReoffer
	if len(slots) == 0 {
		tmpl = "reoffer_noslots"
	}
	d := p.data()
	d.Slots = n.slotLines(p, slots)
	body, err := render(p.Customer.Language, tmpl, d)
	if err != nil {
		return err
	}
	if _, err := n.enqueue(ctx, tx, p, t.ID, KindReoffer, body, false); err != nil {
		return err
	}
	return n.scheduleOfferJobs(ctx, tx, t.ID, now)
}
