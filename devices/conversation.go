package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/proactivehq/proactive"
)

// The notifier's conversations with customers: the outreach row of a
// ticket, its offers' slots, bookings, the outbox it writes to, the inbound
// messages it has handled and its scheduled jobs. The notifier decides;
// these methods write what it decided.

// Conversation is a ticket's SMS conversation with its customer.
type Conversation struct {
	Ticket   int64
	Customer string
	Device   proactive.DeviceID
	// Stage is offer, scheduled, survey (the satisfaction question), nps,
	// ces or done.
	Stage string
	// Offer is the number of the ticket's current offer (1, then 2 after a
	// re-offer, ...).
	Offer int
	// Clarified is set once unexpected replies to the current offer have
	// had all their clarifying answers (Clarifications of them): later ones
	// are only recorded.
	Clarified      bool
	Clarifications int
}

const conversationColumns = `ticket_id, customer_id, device_id, stage, offer_no, clarified, clarifications`

func scanConversation(row interface{ Scan(...any) error }) (Conversation, error) {
	var c Conversation
	err := row.Scan(&c.Ticket, &c.Customer, &c.Device, &c.Stage, &c.Offer, &c.Clarified, &c.Clarifications)
	return c, err
}

// OfferSlot is a slot of an offer, numbered as the SMS lists it.
type OfferSlot struct {
	Position   int
	Technician string
	Start, End time.Time
}

// CustomerConversations is what a customer's inbound text is read against.
type CustomerConversations struct {
	// Active is the conversation awaiting the customer's reply (an offer or
	// a survey, the latest first), else their latest scheduled one; Found
	// is false when there is none.
	Active Conversation
	Found  bool
	// Slots are the slots of Active's current offer, by position.
	Slots []OfferSlot
	// Open are the tickets of the customer's conversations not done.
	Open []int64
	// Ended is the customer's latest conversation that is done, read
	// only when there is no Active one (a reply after a decline or an
	// expiry answers it); EndedFound is false when there is none.
	Ended      Conversation
	EndedFound bool
}

// CustomerConversations reads the conversations of a customer that an
// inbound text may answer, on the read pool.
func (s *Store) CustomerConversations(ctx context.Context, customer string) (CustomerConversations, error) {
	var cc CustomerConversations
	c, err := scanConversation(s.read.QueryRowContext(ctx, `SELECT `+conversationColumns+` FROM outreach
		WHERE customer_id = $1 AND stage IN ('offer', 'survey', 'nps', 'ces', 'scheduled')
		ORDER BY CASE WHEN stage = 'scheduled' THEN 1 ELSE 0 END, updated_at DESC, ticket_id DESC LIMIT 1`, customer))
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return cc, fmt.Errorf("find conversation: %w", err)
	default:
		cc.Active, cc.Found = c, true
		if cc.Slots, err = offerSlots(ctx, s.read, c.Ticket, c.Offer); err != nil {
			return cc, err
		}
	}
	if !cc.Found {
		c, err := scanConversation(s.read.QueryRowContext(ctx, `SELECT `+conversationColumns+` FROM outreach
			WHERE customer_id = $1 AND stage = 'done' ORDER BY updated_at DESC, ticket_id DESC LIMIT 1`, customer))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return cc, fmt.Errorf("find ended conversation: %w", err)
		default:
			cc.Ended, cc.EndedFound = c, true
		}
	}
	rows, err := s.read.QueryContext(ctx, `SELECT ticket_id FROM outreach WHERE customer_id = $1 AND stage <> 'done'
		ORDER BY ticket_id`, customer)
	if err != nil {
		return cc, fmt.Errorf("list open conversations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return cc, fmt.Errorf("list open conversations: %w", err)
		}
		cc.Open = append(cc.Open, id)
	}
	return cc, rows.Err()
}

// Conversation reads a ticket's conversation; ENotFound when it has none.
func (tx *Tx) Conversation(ctx context.Context, ticket int64) (Conversation, error) {
	c, err := scanConversation(tx.tx.QueryRowContext(ctx, `SELECT `+conversationColumns+` FROM outreach
		WHERE ticket_id = $1`, ticket))
	if errors.Is(err, sql.ErrNoRows) {
		return c, proactive.Errorf(proactive.ENotFound, "ticket %d has no SMS conversation", ticket)
	}
	return c, err
}

// OfferSlots reads the slots of a ticket's offer number offer, by position.
func (tx *Tx) OfferSlots(ctx context.Context, ticket int64, offer int) ([]OfferSlot, error) {
	return offerSlots(ctx, tx.tx, ticket, offer)
}

func offerSlots(ctx context.Context, q querier, ticket int64, offer int) ([]OfferSlot, error) {
	rows, err := q.QueryContext(ctx, `SELECT position, technician_id, starts_at, ends_at FROM offer_slots
		WHERE ticket_id = $1 AND offer_no = $2 ORDER BY position`, ticket, offer)
	if err != nil {
		return nil, fmt.Errorf("read offer slots: %w", err)
	}
	defer rows.Close()
	var out []OfferSlot
	for rows.Next() {
		var s OfferSlot
		if err := rows.Scan(&s.Position, &s.Technician, &s.Start, &s.End); err != nil {
			return nil, fmt.Errorf("read offer slots: %w", err)
		}
		s.Start, s.End = s.Start.UTC(), s.End.UTC()
		out = append(out, s)
	}
	return out, rows.Err()
}

// SetStage moves a ticket's conversation to stage.
func (tx *Tx) SetStage(ctx context.Context, ticket int64, stage string, at time.Time) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE outreach SET stage = $2, updated_at = $3 WHERE ticket_id = $1`, ticket, stage, dbTime(at))
	if err != nil {
		return fmt.Errorf("set conversation stage: %w", err)
	}
	return nil
}

// ReleaseHolds ends the holds of a ticket's offered slots at at.
func (tx *Tx) ReleaseHolds(ctx context.Context, ticket int64, at time.Time) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE offer_slots SET held_until = $2 WHERE ticket_id = $1 AND held_until > $2`, ticket, dbTime(at))
	if err != nil {
		return fmt.Errorf("release slot holds: %w", err)
	}
	return nil
}

// RenewOffer starts a ticket's next offer (its clarification not yet
// given) and returns its number.
func (tx *Tx) RenewOffer(ctx context.Context, ticket int64, at time.Time) (int, error) {
	var offer int
	if err := tx.tx.QueryRowContext(ctx, `UPDATE outreach SET offer_no = offer_no + 1, offered_at = $2, clarified = FALSE, clarifications = 0, updated_at = $2
		WHERE ticket_id = $1 RETURNING offer_no`, ticket, dbTime(at)).Scan(&offer); err != nil {
		return 0, fmt.Errorf("renew offer: %w", err)
	}
	return offer, nil
}

// ScheduleJob arms the job of kind for ticket at due, replacing any earlier
// one of that kind.
func (tx *Tx) ScheduleJob(ctx context.Context, kind string, ticket int64, due time.Time) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO jobs (kind, ticket_id, due_at) VALUES ($1, $2, $3)
		ON CONFLICT (kind, ticket_id) DO UPDATE SET due_at = excluded.due_at, done_at = NULL`, kind, ticket, due.UTC())
	if err != nil {
		return fmt.Errorf("schedule %s: %w", kind, err)
	}
	return nil
}

// CancelJobs disarms a ticket's jobs of the given kinds at at.
func (tx *Tx) CancelJobs(ctx context.Context, ticket int64, at time.Time, kinds ...string) error {
	for _, k := range kinds {
		if _, err := tx.tx.ExecContext(ctx, `UPDATE jobs SET done_at = $3 WHERE ticket_id = $1 AND kind = $2 AND done_at IS NULL`,
			ticket, k, dbTime(at)); err != nil {
			return fmt.Errorf("cancel %s: %w", k, err)
		}
	}
	return nil
}

// NewMessage is a message to queue in the outbox.
type NewMessage struct {
	// Ticket is the ticket the message is about, 0 for none (a keyword's
	// answer); the message is put on its timeline.
	Ticket   int64
	Customer string
	// Channel is the message's channel (sms when empty) and Phone its
	// address there: the email address for email.
	Channel proactive.Channel
	Phone   string
	// Device is the device the message is about, empty for none.
	Device proactive.DeviceID
	// TimeZone is the site's, for quiet hours; default UTC.
	TimeZone string
	Kind     string
	Body     string
	// Urgent messages may be sent in quiet hours.
	Urgent bool
	At     time.Time
	// LinkHash, when set, is the SHA-256 (hex) of the code of the
	// customer link the body carries: the link to Ticket is kept with the
	// message.
	LinkHash string
}

// Enqueue writes a message to the outbox, pending from m.At, and to its
// ticket's timeline, and returns its id.
func (tx *Tx) Enqueue(ctx context.Context, m NewMessage) (int64, error) {
	var tk sql.NullInt64
	if m.Ticket > 0 {
		tk = sql.NullInt64{Int64: m.Ticket, Valid: true}
	}
	var dev sql.NullString
	if m.Device != "" {
		dev = sql.NullString{String: string(m.Device), Valid: true}
	}
	if m.TimeZone == "" {
		m.TimeZone = "UTC"
	}
	if m.LinkHash != "" && m.Ticket > 0 {
		if err := tx.insertLink(ctx, m.LinkHash, m.Ticket, m); err != nil {
			return 0, err
		}
	}
	m.Channel = m.Channel.OrSMS()
	var id int64
	err := tx.tx.QueryRowContext(ctx, `INSERT INTO outbox (ticket_id, customer_id, device_id, to_phone, time_zone, kind, body, urgent,
		status, next_attempt_at, created_at, channel) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9, $10) RETURNING id`,
		tk, m.Customer, dev, m.Phone, m.TimeZone, m.Kind, m.Body, m.Urgent, dbTime(m.At), string(m.Channel)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert outbox message: %w", err)
	}
	if m.Ticket > 0 {
		if _, err := tx.Record(ctx, m.Ticket, proactive.TicketEventMessage, "notify", map[string]any{
			"direction": "out", "kind": m.Kind, "message_id": id, "body": m.Body, "channel": string(m.Channel)}); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// CountMessages counts the messages of kind about a device created after
// since, those suppressed aside: the contact cooldown.
func (tx *Tx) CountMessages(ctx context.Context, dev proactive.DeviceID, kind string, since time.Time) (int, error) {
	var n int
	err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE device_id = $1 AND kind = $2 AND created_at > $3
		AND status <> 'suppressed'`, string(dev), kind, dbTime(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("check contact cooldown: %w", err)
	}
	return n, nil
}

// ProviderStatus is a delivery status the SMS provider reported.
type ProviderStatus struct {
	// ID is the outbox message the status callback names, 0 when unknown;
	// SID the provider's message SID.
	ID        int64
	SID       string
	Status    string
	Rank      int // the order of Status: a status never moves a message back
	ErrorCode string
}

// StatusOf is the message a provider status was kept on.
type StatusOf struct {
	// Ticket is the message's ticket, 0 for none.
	Ticket   int64
	Kind     string
	Customer string
	Channel  proactive.Channel
}

// RecordProviderStatus keeps a delivery status on the message with its SID
// (or, when the provider's answer to the send was lost, on message ID,
// which then adopts the SID) unless the message has one of rank at least
// as high. It returns the message's ticket, kind and customer, and whether
// the status was kept.
func (tx *Tx) RecordProviderStatus(ctx context.Context, st ProviderStatus) (of StatusOf, ok bool, err error) {
	var tk sql.NullInt64
	var cust sql.NullString
	err = tx.tx.QueryRowContext(ctx, `UPDATE outbox SET provider_status = $2, provider_rank = $3, error_code = $4
		WHERE sid = $1 AND provider_rank < $3 RETURNING ticket_id, kind, customer_id, channel`, st.SID, st.Status, st.Rank, st.ErrorCode).Scan(&tk, &of.Kind, &cust, &of.Channel)
	if errors.Is(err, sql.ErrNoRows) && st.ID > 0 {
		// The callback beat our record of the send, or the send's answer
		// was lost: the provider has the message, so adopt it.
		err = tx.tx.QueryRowContext(ctx, `UPDATE outbox SET sid = $2, provider_status = $3, provider_rank = $4, error_code = $5,
			status = 'sent', sent_at = COALESCE(sent_at, claimed_at), last_error = ''
			WHERE id = $1 AND sid IS NULL AND provider_rank < $4 AND status IN ('sending', 'unknown', 'sent') RETURNING ticket_id, kind, customer_id, channel`,
			st.ID, st.SID, st.Status, st.Rank, st.ErrorCode).Scan(&tk, &of.Kind, &cust, &of.Channel)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return StatusOf{}, false, nil
	} else if err != nil {
		return StatusOf{}, false, fmt.Errorf("record provider status: %w", err)
	}
	of.Ticket, of.Customer = tk.Int64, cust.String
	return of, true, nil
}

// ErrSlotTaken is the answer of a booking whose technician is no longer
// free then.
var ErrSlotTaken = errors.New("slot taken")

// Booking is a visit to book for a ticket.
type Booking struct {
	Ticket     int64
	Technician string
	Start, End time.Time
	// Buffer is the gap kept free between two visits of a technician.
	Buffer time.Duration
	Actor  string
	// Note is the ticket's transition note, such as "visit booked".
	Note string
	At   time.Time
	// Reschedule moves the ticket's booked visit to this slot instead: the
	// ticket stays scheduled, the old visit is cancelled once the new one
	// is in, and choosing the booked slot again changes nothing.
	Reschedule bool
}

// Book books a visit: the appointment, the ticket scheduled and assigned
// to the technician. ErrSlotTaken, with nothing written, when the
// technician has another visit then (with the buffer around it).
func (tx *Tx) Book(ctx context.Context, b Booking) (int64, error) {
	var old int64
	if b.Reschedule {
		var tech string
		var start time.Time
		err := tx.tx.QueryRowContext(ctx, `SELECT id, technician_id, starts_at FROM appointments WHERE ticket_id = $1 AND status = 'booked'
			ORDER BY id DESC LIMIT 1`, b.Ticket).Scan(&old, &tech, &start)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("read booked visit: %w", err)
		}
		if old > 0 && tech == b.Technician && start.Equal(b.Start) {
			return old, nil // the booked slot again
		}
	}
	var busy int
	err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM appointments WHERE technician_id = $1 AND status <> 'cancelled'
		AND starts_at < $3 AND ends_at > $2 AND id <> $4`, b.Technician, b.Start.Add(-b.Buffer).UTC(), b.End.Add(b.Buffer).UTC(), old).Scan(&busy)
	if err != nil {
		return 0, fmt.Errorf("check technician calendar: %w", err)
	}
	if busy > 0 {
		return 0, ErrSlotTaken
	}
	// Two bookings of one slot race here: the unique index lets one insert
	// and turns the other into no row (PostgreSQL waits for the first to
	// commit; SQLite has one writer).
	var id int64
	err = tx.tx.QueryRowContext(ctx, `INSERT INTO appointments (ticket_id, technician_id, starts_at, ends_at, status, booked_at, booked_by)
		VALUES ($1, $2, $3, $4, 'booked', $5, $6)
		ON CONFLICT (technician_id, starts_at) WHERE status <> 'cancelled' DO NOTHING RETURNING id`,
		b.Ticket, b.Technician, b.Start.UTC(), b.End.UTC(), dbTime(b.At), b.Actor).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrSlotTaken
	} else if err != nil {
		return 0, fmt.Errorf("insert appointment: %w", err)
	}
	if b.Reschedule && old > 0 {
		if _, err := tx.tx.ExecContext(ctx, `UPDATE appointments SET status = 'cancelled' WHERE id = $1`, old); err != nil {
			return 0, fmt.Errorf("cancel the moved visit: %w", err)
		}
		if _, err := tx.record(ctx, b.Ticket, proactive.TicketEventComment, b.Actor, map[string]any{"text": b.Note}); err != nil {
			return 0, err
		}
	} else if _, err := tx.Transition(ctx, b.Ticket, proactive.TicketScheduled, b.Actor, b.Note); err != nil {
		return 0, err
	}
	if _, err := tx.Assign(ctx, b.Ticket, b.Technician, b.Actor); err != nil {
		return 0, err
	}
	return id, nil
}

// InboundMessage is a text a customer sent, as the provider identified it.
type InboundMessage struct {
	SID  string
	From string
	Body string
	// Ticket is the conversation it answers, 0 for none.
	Ticket int64
	At     time.Time
}

// InboundMessage returns the inbound message recorded with this SID;
// ENotFound when there is none.
func (s *Store) InboundMessage(ctx context.Context, sid string) (InboundMessage, error) {
	m := InboundMessage{SID: sid}
	var tk sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT from_phone, body, received_at, ticket_id FROM inbound_messages WHERE sid = $1`, sid).
		Scan(&m.From, &m.Body, &m.At, &tk)
	if errors.Is(err, sql.ErrNoRows) {
		return m, notFound("inbound message", sid)
	} else if err != nil {
		return m, fmt.Errorf("read inbound message: %w", err)
	}
	m.Ticket, m.At = tk.Int64, m.At.UTC()
	return m, nil
}

// Entry is a message event for a ticket's timeline.
type Entry struct {
	Ticket int64
	Actor  string
	Body   map[string]any
}

// StatusChange is a ticket transition.
type StatusChange struct {
	To    proactive.TicketStatus
	Actor string
	Note  string
}

// NewJob is a job to arm for a ticket.
type NewJob struct {
	Kind string
	Due  time.Time
}

// NewConversation is the conversation an offer starts.
type NewConversation struct {
	Customer string
	Device   proactive.DeviceID
	Stage    string
	// AlertAt is when the platform raised the alert, OfferedAt when the
	// offer was made (zero: none yet).
	AlertAt, OfferedAt time.Time
}

// Change is what one step of the notifier writes: a customer's reply, an
// alert's offer, a booking. Tx.Apply writes it at once, in this order (so
// that the timeline reads in the order things happened): the inbound
// message, the consent, the clarification claim, the suppressions, the new
// conversation, the satisfaction score, the survey answer and question,
// the timeline entries, the booking,
// the status change, the closing, the stage, the holds released, the jobs
// cancelled, the messages queued, the jobs armed. Zero fields write
// nothing.
type Change struct {
	// At is when the change happens.
	At time.Time
	// Ticket is the ticket that the conversation fields (Start, CSAT,
	// Status, Close, Stage, ReleaseHolds, CancelJobs, Jobs) apply to.
	Ticket int64

	// Inbound is recorded first, by SID: a SID already recorded makes Apply
	// write nothing else and report a repeat.
	Inbound *InboundMessage
	// Customer is whose consent and pending messages Consent and Suppress
	// change.
	Customer string
	Consent  *proactive.ConsentEvent
	// ClaimClarify claims one of the ClarifyLimit (default 1) clarifying
	// answers of the conversation's current offer; when none is left (a
	// concurrent reply took the last), Otherwise is applied instead of the
	// rest of this change.
	ClaimClarify bool
	ClarifyLimit int
	Otherwise    *Change
	// Suppress, when set, is the reason the customer's pending messages,
	// except those of the kinds in Keep, are suppressed: on channel
	// SuppressOn only, when it is set.
	Suppress   string
	Keep       []string
	SuppressOn proactive.Channel
	Start      *NewConversation
	// CSAT is the satisfaction score the customer gave, 0 for none.
	CSAT int
	// Answer is the customer's answer to the NPS or CES question; Ask puts
	// the next question (see surveys.go).
	Answer  *SurveyScore
	Ask     *SurveyAsk
	Entries []Entry
	// Book books a visit; when its slot is taken Apply stops there with
	// ErrSlotTaken, what comes before it written.
	Book *Booking
	// Held, when set, is recorded on the ticket as why its customer was
	// not texted (see Tx.Hold), before Status.
	Held string
	// CancelVisit cancels the ticket's booked visit, before Status.
	CancelVisit bool
	Status      *StatusChange
	// FollowUp, when set, raises a follow-up on the ticket for this
	// reason (see Tx.RaiseFollowUp), after Status.
	FollowUp string
	// Close closes the ticket with the outcome and notes of its latest
	// visit, by this actor.
	Close        string
	Stage        string
	ReleaseHolds bool
	CancelJobs   []string
	Messages     []NewMessage
	Jobs         []NewJob
}

// Applied is what Apply did.
type Applied struct {
	// Repeat is set when the inbound message had been recorded before:
	// nothing was written.
	Repeat bool
	// Otherwise is set when the clarification was claimed already and
	// Change.Otherwise was applied.
	Otherwise bool
	// Appointment is the booked visit's id.
	Appointment int64
	// Messages are the ids of the queued messages, in order.
	Messages []int64
}

// Apply writes a change in this transaction; see Change for the order.
func (tx *Tx) Apply(ctx context.Context, c Change) (Applied, error) {
	var out Applied
	if m := c.Inbound; m != nil && m.SID != "" {
		var tk sql.NullInt64
		if m.Ticket > 0 {
			tk = sql.NullInt64{Int64: m.Ticket, Valid: true}
		}
		res, err := tx.tx.ExecContext(ctx, `INSERT INTO inbound_messages (sid, from_phone, body, received_at, ticket_id)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sid) DO NOTHING`, m.SID, m.From, m.Body, dbTime(m.At), tk)
		if err != nil {
			return out, fmt.Errorf("record inbound message: %w", err)
		}
		if k, err := res.RowsAffected(); err != nil {
			return out, fmt.Errorf("record inbound message: %w", err)
		} else if k == 0 {
			out.Repeat = true
			return out, nil
		}
	}
	if c.Consent != nil {
		if _, err := tx.RecordConsent(ctx, c.Customer, *c.Consent); err != nil {
			return out, err
		}
	}
	if c.ClaimClarify {
		limit := max(c.ClarifyLimit, 1)
		res, err := tx.tx.ExecContext(ctx, `UPDATE outreach SET clarifications = clarifications + 1,
			clarified = (clarifications + 1 >= $2) WHERE ticket_id = $1 AND clarifications < $2`, c.Ticket, limit)
		if err != nil {
			return out, fmt.Errorf("claim clarification: %w", err)
		}
		if k, err := res.RowsAffected(); err != nil {
			return out, fmt.Errorf("claim clarification: %w", err)
		} else if k == 0 {
			if c.Otherwise == nil {
				return Applied{Otherwise: true}, nil
			}
			o := *c.Otherwise
			o.Inbound, o.ClaimClarify, o.Otherwise = nil, false, nil
			out, err := tx.Apply(ctx, o)
			out.Otherwise = true
			return out, err
		}
	}
	if c.Suppress != "" {
		if err := tx.suppressPending(ctx, c.Customer, c.SuppressOn, c.Suppress, c.Keep); err != nil {
			return out, err
		}
	}
	if s := c.Start; s != nil {
		if _, err := tx.tx.ExecContext(ctx, `INSERT INTO outreach (ticket_id, customer_id, device_id, stage, offer_no, alert_at, offered_at, updated_at)
			VALUES ($1, $2, $3, $4, 1, $5, $6, $7)`, c.Ticket, s.Customer, string(s.Device), s.Stage, dbTime(s.AlertAt),
			nullTime(s.OfferedAt), dbTime(c.At)); err != nil {
			return out, fmt.Errorf("insert outreach: %w", err)
		}
	}
	if c.CSAT > 0 {
		if _, err := tx.tx.ExecContext(ctx, `UPDATE outreach SET csat = $2, csat_at = $3 WHERE ticket_id = $1`,
			c.Ticket, c.CSAT, dbTime(c.At)); err != nil {
			return out, fmt.Errorf("record satisfaction: %w", err)
		}
	}
	if c.Answer != nil {
		if err := tx.scoreSurvey(ctx, c.Ticket, *c.Answer, c.At); err != nil {
			return out, err
		}
	}
	if c.Ask != nil {
		if err := tx.askSurvey(ctx, c.Ticket, *c.Ask, c.At); err != nil {
			return out, err
		}
	}
	for _, e := range c.Entries {
		if _, err := tx.Record(ctx, e.Ticket, proactive.TicketEventMessage, e.Actor, e.Body); err != nil {
			return out, err
		}
	}
	if c.Book != nil {
		id, err := tx.Book(ctx, *c.Book)
		if err != nil {
			return out, err
		}
		out.Appointment = id
	}
	if c.Held != "" {
		if err := tx.Hold(ctx, c.Ticket, c.Held); err != nil {
			return out, err
		}
	}
	if c.CancelVisit {
		if _, err := tx.tx.ExecContext(ctx, `UPDATE appointments SET status = 'cancelled' WHERE ticket_id = $1 AND status = 'booked'`,
			c.Ticket); err != nil {
			return out, fmt.Errorf("cancel visit: %w", err)
		}
	}
	if s := c.Status; s != nil {
		if _, err := tx.Transition(ctx, c.Ticket, s.To, s.Actor, s.Note); err != nil {
			return out, err
		}
	}
	if c.Close != "" {
		if err := tx.closeWithVisit(ctx, c.Ticket, c.Close); err != nil {
			return out, err
		}
	}
	if c.FollowUp != "" {
		if err := tx.RaiseFollowUp(ctx, c.Ticket, c.FollowUp, "customer", c.At); err != nil {
			return out, err
		}
	}
	if c.Stage != "" {
		if err := tx.SetStage(ctx, c.Ticket, c.Stage, c.At); err != nil {
			return out, err
		}
	}
	if c.ReleaseHolds {
		if err := tx.ReleaseHolds(ctx, c.Ticket, c.At); err != nil {
			return out, err
		}
	}
	if err := tx.CancelJobs(ctx, c.Ticket, c.At, c.CancelJobs...); err != nil {
		return out, err
	}
	for _, m := range c.Messages {
		id, err := tx.Enqueue(ctx, m)
		if err != nil {
			return out, err
		}
		out.Messages = append(out.Messages, id)
	}
	for _, j := range c.Jobs {
		if err := tx.ScheduleJob(ctx, j.Kind, c.Ticket, j.Due); err != nil {
			return out, err
		}
	}
	return out, nil
}

// suppressPending suppresses a customer's pending messages but those of
// the kinds in keep.
func (tx *Tx) suppressPending(ctx context.Context, customer string, on proactive.Channel, reason string, keep []string) error {
	q, args := `UPDATE outbox SET status = 'suppressed', last_error = $2 WHERE customer_id = $1 AND status = 'pending'`,
		[]any{customer, reason}
	if on != "" {
		args = append(args, string(on))
		q += fmt.Sprintf(" AND channel = $%d", len(args))
	}
	for _, k := range keep {
		args = append(args, k)
		q += fmt.Sprintf(" AND kind <> $%d", len(args))
	}
	if _, err := tx.tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("suppress pending messages: %w", err)
	}
	return nil
}

// closeWithVisit closes a visited ticket with its latest visit's outcome.
func (tx *Tx) closeWithVisit(ctx context.Context, ticket int64, actor string) error {
	var outcome, notes sql.NullString
	err := tx.tx.QueryRowContext(ctx, `SELECT outcome, notes FROM appointments WHERE ticket_id = $1 AND status = 'done'
		ORDER BY done_at DESC LIMIT 1`, ticket).Scan(&outcome, &notes)
	if err != nil {
		return fmt.Errorf("read visit outcome: %w", err)
	}
	_, err = tx.CloseTicket(ctx, ticket, proactive.Outcome(outcome.String), notes.String, actor)
	return err
}
