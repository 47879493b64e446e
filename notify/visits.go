package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// Appointment is a booked technician visit.
type Appointment struct {
	ID         int64     `json:"id"`
	Ticket     int64     `json:"ticket_id"`
	Technician string    `json:"technician_id"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	// Status is booked, done or cancelled.
	Status   string          `json:"status"`
	BookedAt time.Time       `json:"booked_at"`
	BookedBy string          `json:"booked_by"`
	DoneAt   time.Time       `json:"done_at,omitzero"`
	Outcome  devices.Outcome `json:"outcome,omitempty"`
	Notes    string          `json:"notes,omitempty"`
}

const appointmentColumns = `id, ticket_id, technician_id, starts_at, ends_at, status, booked_at, booked_by, done_at, outcome, notes`

func scanAppointment(row interface{ Scan(...any) error }) (Appointment, error) {
	var a Appointment
	var done sql.NullTime
	var outcome sql.NullString
	err := row.Scan(&a.ID, &a.Ticket, &a.Technician, &a.Start, &a.End, &a.Status, &a.BookedAt, &a.BookedBy, &done, &outcome, &a.Notes)
	a.Start, a.End, a.BookedAt = a.Start.UTC(), a.End.UTC(), a.BookedAt.UTC()
	if done.Valid {
		a.DoneAt = done.Time.UTC()
	}
	a.Outcome = devices.Outcome(outcome.String)
	return a, err
}

func bookedAppointment(ctx context.Context, tx *devices.Tx, ticket int64) (Appointment, error) {
	return scanAppointment(tx.QueryRowContext(ctx, `SELECT `+appointmentColumns+` FROM appointments
		WHERE ticket_id = $1 AND status = 'booked' ORDER BY id DESC LIMIT 1`, ticket))
}

// Slots lists the free slots a ticket's visit could take now (up to ten,
// earliest first), from the technicians who repair its component in its
// site's area; slots held for other customers' offers are left out.
// ENotFound for no such ticket.
func (n *Notifier) Slots(ctx context.Context, ticket int64) ([]Slot, error) {
	t, err := n.store.GetTicket(ctx, ticket)
	if err != nil {
		return nil, err
	}
	p, err := n.loadParty(ctx, t.Device, t.Component)
	if err != nil {
		return nil, err
	}
	techs, err := n.technicians(ctx, t.Component, p.Device.Site.PostalCode)
	if err != nil {
		return nil, err
	}
	// Showing slots decides nothing: read them on the read pool, not under
	// SQLite's one write lock (the web page's ticket view calls this).
	now := n.clock()
	busy, held, err := calendar(ctx, n.store, techs, ticket, now)
	if err != nil {
		return nil, wrap("list slots", err)
	}
	free := n.freeSlots(techs, busy, held, now)
	return free[:min(len(free), 10)], nil
}

// Book books a visit for a ticket on the customer's behalf (a dispatcher on
// the phone): technician and start of one of Slots, or another time the
// technician can keep (within a shift, not away, no other visit or offer
// then). The ticket, open or
// offered, becomes scheduled and assigned, and the customer gets the
// confirmation if they may be texted. EInvalid for a technician who does
// not repair the component or serve the site; EConflict when the slot was
// taken meanwhile, the technician cannot keep it, or the ticket cannot be
// scheduled; ENotFound for no such ticket or technician.
func (n *Notifier) Book(ctx context.Context, ticket int64, s Slot, actor string) (Appointment, error) {
	if s.Technician == "" || s.Start.IsZero() {
		return Appointment{}, proactive.Errorf(proactive.EInvalid, "a slot needs a technician and a start")
	}
	if s.End.IsZero() {
		s.End = s.Start.Add(n.opt.SlotLength)
	}
	if !s.End.After(s.Start) {
		return Appointment{}, proactive.Errorf(proactive.EInvalid, "the slot ends before it starts")
	}
	t, err := n.store.GetTicket(ctx, ticket)
	if err != nil {
		return Appointment{}, err
	}
	p, err := n.loadParty(ctx, t.Device, t.Component)
	if err != nil {
		return Appointment{}, err
	}
	tech, err := n.eligible(ctx, s.Technician, t, p)
	if err != nil {
		return Appointment{}, err
	}
	var a Appointment
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		// A slot the dispatcher types must be one the technician can
		// keep: within a shift, not away, not offered to someone else.
		if why, err := n.busyFor(ctx, tx, tech, Appointment{Ticket: ticket, Start: s.Start, End: s.End}); err != nil {
			return err
		} else if why != "" {
			return proactive.Errorf(proactive.EConflict, "technician %s cannot come %s: %s", s.Technician,
				formatSlot("en", s.Start, s.End, n.zone(tech.TimeZone)), why)
		}
		if t.Status == proactive.TicketOpen {
			// Booked by phone: no offer was sent, so no conversation
			// exists yet to confirm through.
			_, err := readConversation(ctx, tx, ticket)
			if proactive.ErrorCode(err) == proactive.ENotFound && p.Customer.ID != "" {
				if _, err := tx.ExecContext(ctx, `INSERT INTO outreach (ticket_id, customer_id, device_id, stage, offer_no, alert_at, updated_at)
					VALUES ($1, $2, $3, $4, 0, $5, $6)`, ticket, p.Customer.ID, string(p.Device.ID), stageScheduled, t.OpenedAt, n.clock()); err != nil {
					return err
				}
			} else if err != nil && proactive.ErrorCode(err) != proactive.ENotFound {
				return err
			}
		}
		var err error
		a, err = n.book(ctx, tx, t, p, s, actor)
		if errors.Is(err, errSlotTaken) {
			return proactive.Errorf(proactive.EConflict, "technician %s is no longer free at %s", s.Technician, s.Start.Format(time.RFC3339))
		}
		return err
	})
	if err != nil {
		return Appointment{}, wrap("book visit", err)
	}
	n.notifyWake()
	return a, nil
}

// Reassign moves a ticket's upcoming booked visit, at the same time, to
// another technician and assigns the ticket to them, in one transaction;
// the move is on the ticket's timeline (a note naming both technicians, and
// the assignment). The technician must repair the ticket's component, serve
// the device's site, and be free at the visit's time: within one of their
// shifts, not away, with no other visit within TravelBuffer of it and no
// slot held for another customer's offer overlapping it. Moving a visit to
// its own technician only makes sure the ticket is theirs.
//
// EInvalid for a technician who does not repair the component or serve the
// site; EConflict when they are not free, or when the visit has already
// begun; ENotFound for no such ticket or technician, or a ticket without a
// booked visit.
func (n *Notifier) Reassign(ctx context.Context, ticket int64, technician, actor string) (Appointment, error) {
	technician, actor = strings.TrimSpace(technician), strings.TrimSpace(actor)
	if technician == "" || actor == "" {
		return Appointment{}, proactive.Errorf(proactive.EInvalid, "a reassignment needs a technician and an actor")
	}
	t, err := n.store.GetTicket(ctx, ticket)
	if err != nil {
		return Appointment{}, err
	}
	p, err := n.loadParty(ctx, t.Device, t.Component)
	if err != nil {
		return Appointment{}, err
	}
	tech, err := n.eligible(ctx, technician, t, p)
	if err != nil {
		return Appointment{}, err
	}
	now := n.clock()
	var a Appointment
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		var err error
		a, err = bookedAppointment(ctx, tx, ticket)
		if errors.Is(err, sql.ErrNoRows) {
			return proactive.Errorf(proactive.ENotFound, "ticket %d has no booked visit", ticket)
		} else if err != nil {
			return err
		}
		if !a.Start.After(now) {
			return proactive.Errorf(proactive.EConflict, "the visit of ticket %d began at %s: it can no longer move", ticket,
				a.Start.Format(time.RFC3339))
		}
		if a.Technician == technician {
			_, err := tx.Assign(ctx, ticket, technician, actor)
			return err
		}
		if tx.Dialect() == devices.Postgres {
			// Two moves to one technician wait for each other here, so
			// that the second sees the first's visit.
			if _, err := tx.ExecContext(ctx, `SELECT 1 FROM technicians WHERE id = $1 FOR UPDATE`, technician); err != nil {
				return fmt.Errorf("lock technician: %w", err)
			}
		}
		if why, err := n.busyFor(ctx, tx, tech, a); err != nil {
			return err
		} else if why != "" {
			return proactive.Errorf(proactive.EConflict, "technician %s is not free %s: %s", technician,
				formatSlot("en", a.Start, a.End, n.zone(tech.TimeZone)), why)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE appointments SET technician_id = $2 WHERE id = $1`, a.ID, technician); err != nil {
			if isUniqueViolation(err) { // a booking at the same start committed meanwhile
				return proactive.Errorf(proactive.EConflict, "technician %s was booked at %s meanwhile", technician, a.Start.Format(time.RFC3339))
			}
			return fmt.Errorf("move appointment: %w", err)
		}
		from := a.Technician
		a.Technician = technician
		text := fmt.Sprintf("Visit %s moved from %s to %s", formatSlot("en", a.Start, a.End, n.zone(p.Device.TimeZone)), from, technician)
		if _, err := tx.Record(ctx, ticket, devices.EventComment, actor, map[string]any{"text": text,
			"appointment": a.ID, "from": from, "to": technician}); err != nil {
			return err
		}
		_, err = tx.Assign(ctx, ticket, technician, actor)
		return err
	})
	if err != nil {
		return Appointment{}, wrap("reassign visit", err)
	}
	return a, nil
}

// eligible returns the technician when they repair the ticket's component
// and serve its device's site: EInvalid otherwise, ENotFound for no such
// technician.
func (n *Notifier) eligible(ctx context.Context, technician string, t devices.Ticket, p party) (devices.Technician, error) {
	tech, err := n.store.GetTechnician(ctx, technician)
	if err != nil {
		return devices.Technician{}, err
	}
	if !slices.Contains(tech.Skills, t.Component) {
		return devices.Technician{}, proactive.Errorf(proactive.EInvalid, "technician %s does not repair the %s", technician, t.Component)
	}
	if !tech.Serves(p.Device.Site.PostalCode) {
		return devices.Technician{}, proactive.Errorf(proactive.EInvalid, "technician %s does not serve postal code %q, the site of %s",
			technician, p.Device.Site.PostalCode, t.Device)
	}
	return tech, nil
}

// busyFor says why tech cannot make visit a (another technician's), or ""
// when they are free for it.
func (n *Notifier) busyFor(ctx context.Context, tx *devices.Tx, tech devices.Technician, a Appointment) (string, error) {
	loc := n.zone(tech.TimeZone)
	start, end := a.Start.In(loc), a.End.In(loc)
	inShift := false
	if start.Year() == end.Year() && start.YearDay() == end.YearDay() {
		from, to := start.Hour()*60+start.Minute(), end.Hour()*60+end.Minute()
		for _, sh := range tech.Hours[start.Weekday()] {
			if int(sh.Start) <= from && to <= int(sh.End) {
				inShift = true
			}
		}
	}
	switch {
	case !inShift:
		return "outside their working hours", nil
	case away(tech, a.Start, a.End):
		return "away", nil
	}
	var visits int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM appointments WHERE technician_id = $1 AND status <> 'cancelled'
		AND id <> $2 AND starts_at < $4 AND ends_at > $3`, tech.ID, a.ID, a.Start.Add(-n.opt.TravelBuffer).UTC(),
		a.End.Add(n.opt.TravelBuffer).UTC()).Scan(&visits); err != nil {
		return "", fmt.Errorf("check technician calendar: %w", err)
	}
	if visits > 0 {
		return "another visit then", nil
	}
	var held int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM offer_slots WHERE technician_id = $1 AND held_until > $2
		AND ticket_id <> $3 AND starts_at < $5 AND ends_at > $4`, tech.ID, n.clock(), a.Ticket, a.Start.UTC(), a.End.UTC()).Scan(&held); err != nil {
		return "", fmt.Errorf("check slot holds: %w", err)
	}
	if held > 0 {
		return "the time is offered to another customer", nil
	}
	return "", nil
}

// isUniqueViolation reports whether err is PostgreSQL's unique violation
// (SQLite, with its one writer, cannot race past the calendar check).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// VisitDone records that the technician made a ticket's booked visit, with
// its outcome and notes. The ticket becomes visited and the customer gets
// the satisfaction question; their answer, or SurveyTimeout without one,
// closes the ticket with this outcome. A customer who may not be texted
// gets no question and the ticket closes at once. technician, when not
// empty, must be the visit's (EForbidden otherwise); ENotFound when the
// ticket has no booked visit. The timeline names technician as the actor,
// or "dispatcher" when it is empty; VisitDoneBy names the acting user.
func (n *Notifier) VisitDone(ctx context.Context, ticket int64, technician string, outcome devices.Outcome, notes string) (Appointment, error) {
	return n.VisitDoneBy(ctx, ticket, technician, outcome, notes, "")
}

// VisitDoneBy is VisitDone recording actor (the authenticated user, such as
// a token's name) on the ticket's timeline as who did it. An empty actor
// falls back to VisitDone's: technician, else "dispatcher".
func (n *Notifier) VisitDoneBy(ctx context.Context, ticket int64, technician string, outcome devices.Outcome, notes, actor string) (Appointment, error) {
	if !outcome.Valid() {
		return Appointment{}, proactive.Errorf(proactive.EInvalid, "outcome %q is not fault_confirmed, no_fault_found or part_replaced", outcome)
	}
	if utf8.RuneCountInString(notes) > 2000 {
		return Appointment{}, proactive.Errorf(proactive.EInvalid, "notes are longer than 2000 characters")
	}
	if utf8.RuneCountInString(actor) > 100 {
		return Appointment{}, proactive.Errorf(proactive.EInvalid, "actor is longer than 100 characters")
	}
	p, err := n.partyOfTicket(ctx, ticket)
	if err != nil {
		return Appointment{}, err
	}
	actor = strings.TrimSpace(actor)
	if actor == "" {
		actor = technician
	}
	if actor == "" {
		actor = "dispatcher"
	}
	now := n.clock()
	var a Appointment
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		var err error
		a, err = bookedAppointment(ctx, tx, ticket)
		if errors.Is(err, sql.ErrNoRows) {
			return proactive.Errorf(proactive.ENotFound, "ticket %d has no booked visit", ticket)
		} else if err != nil {
			return err
		}
		if technician != "" && technician != a.Technician {
			return proactive.Errorf(proactive.EForbidden, "the visit of ticket %d is technician %s's", ticket, a.Technician)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE appointments SET status = 'done', done_at = $2, outcome = $3, notes = $4 WHERE id = $1`,
			a.ID, now, string(outcome), notes); err != nil {
			return err
		}
		a.Status, a.DoneAt, a.Outcome, a.Notes = "done", now, outcome, notes
		if _, err := tx.Transition(ctx, ticket, proactive.TicketVisited, actor, "visit done: "+string(outcome)); err != nil {
			return err
		}
		if err := cancelJobs(ctx, tx, ticket, now, jobVisitReminder); err != nil {
			return err
		}
		_, convErr := readConversation(ctx, tx, ticket)
		if convErr != nil && proactive.ErrorCode(convErr) != proactive.ENotFound {
			return convErr
		}
		if convErr != nil || !p.Customer.SMSConsent {
			_, err := tx.CloseTicket(ctx, ticket, outcome, notes, actor)
			if convErr == nil {
				err = errors.Join(err, setStage(ctx, tx, ticket, stageDone, now))
			}
			return err
		}
		if err := setStage(ctx, tx, ticket, stageSurvey, now); err != nil {
			return err
		}
		text, err := render(p.Customer.Language, KindSurvey, p.data())
		if err != nil {
			return err
		}
		if _, err := n.enqueue(ctx, tx, p, ticket, KindSurvey, text, false); err != nil {
			return err
		}
		return schedule(ctx, tx, jobSurveyTimeout, ticket, now.Add(n.opt.SurveyTimeout))
	})
	if err != nil {
		return Appointment{}, wrap("record visit", err)
	}
	n.notifyWake()
	return a, nil
}

// SendMessage queues a dispatcher's free text to a ticket's customer, with
// the opt-out line; it obeys quiet hours and the daily cap like an offer.
// It returns the outbox message's id. EInvalid for an empty or too long
// text, EConflict when the customer may not be texted.
func (n *Notifier) SendMessage(ctx context.Context, ticket int64, actor, text string) (int64, error) {
	text = strings.TrimSpace(text)
	if text == "" || strings.TrimSpace(actor) == "" {
		return 0, proactive.Errorf(proactive.EInvalid, "a message needs a text and an actor")
	}
	p, err := n.partyOfTicket(ctx, ticket)
	if err != nil {
		return 0, err
	}
	if p.Customer.ID == "" || !p.Customer.SMSConsent {
		return 0, proactive.Errorf(proactive.EConflict, "the customer of ticket %d may not be texted", ticket)
	}
	body, err := render(p.Customer.Language, KindDispatch, msgData{Text: text})
	if err != nil {
		return 0, proactive.Errorf(proactive.EInvalid, "the text is too long: with the opt-out line a message holds %d characters", MaxBody)
	}
	var id int64
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		if _, err := tx.Comment(ctx, ticket, actor, "SMS to customer: "+text); err != nil {
			return err
		}
		var err error
		id, err = n.enqueue(ctx, tx, p, ticket, KindDispatch, body, false)
		return err
	})
	if err != nil {
		return 0, wrap("send message", err)
	}
	n.notifyWake()
	return id, nil
}

// AppointmentFilter narrows Appointments; zero fields match everything.
type AppointmentFilter struct {
	Technician string
	// From and To keep visits starting in [From, To), such as one local day.
	From, To time.Time
	Ticket   int64
	// Limit is the most visits listed, default and at most 1000; After
	// continues a listing after the visit it names (AppointmentCursor of the
	// last one listed).
	Limit int
	After string
}

// AppointmentCursor names a in a listing, for AppointmentFilter.After.
func AppointmentCursor(a Appointment) string {
	return strconv.FormatInt(a.Start.UnixNano(), 10) + "-" + strconv.FormatInt(a.ID, 10)
}

// Appointments lists visits, earliest first (at most 1000). EInvalid for a
// malformed After.
func (n *Notifier) Appointments(ctx context.Context, f AppointmentFilter) ([]Appointment, error) {
	q := `SELECT ` + appointmentColumns + ` FROM appointments WHERE 1 = 1`
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		q += fmt.Sprintf(" AND "+cond, len(args))
	}
	if f.Technician != "" {
		add("technician_id = $%d", f.Technician)
	}
	if !f.From.IsZero() {
		add("starts_at >= $%d", f.From.UTC())
	}
	if !f.To.IsZero() {
		add("starts_at < $%d", f.To.UTC())
	}
	if f.Ticket != 0 {
		add("ticket_id = $%d", f.Ticket)
	}
	if f.After != "" {
		ns, id, ok := strings.Cut(f.After, "-")
		start, err1 := strconv.ParseInt(ns, 10, 64)
		after, err2 := strconv.ParseInt(id, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, proactive.Errorf(proactive.EInvalid, "appointment cursor %q is malformed", f.After)
		}
		at := time.Unix(0, start).UTC()
		args = append(args, at, after)
		q += fmt.Sprintf(" AND (starts_at > $%d OR (starts_at = $%d AND id > $%d))", len(args)-1, len(args)-1, len(args))
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	rows, err := n.store.QueryContext(ctx, q+" ORDER BY starts_at, id LIMIT "+strconv.Itoa(f.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list appointments: %w", err)
	}
	defer rows.Close()
	var out []Appointment
	for rows.Next() {
		a, err := scanAppointment(rows)
		if err != nil {
			return nil, fmt.Errorf("list appointments: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// OutboundMessage is an outbox message as the API shows it.
type OutboundMessage struct {
	ID       int64     `json:"id"`
	Ticket   int64     `json:"ticket_id,omitempty"`
	To       string    `json:"to"`
	Kind     string    `json:"kind"`
	Body     string    `json:"body"`
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	Created  time.Time `json:"created_at"`
	Sent     time.Time `json:"sent_at,omitzero"`
	// NextAttempt is when a pending message is tried next.
	NextAttempt time.Time `json:"next_attempt_at,omitzero"`
	SID         string    `json:"sid,omitempty"`
	// Delivery is the provider's latest status: queued, sent, delivered,
	// undelivered, failed ...
	Delivery  string `json:"delivery,omitempty"`
	ErrorCode string `json:"error_code,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// Messages lists the outgoing messages of a ticket, oldest first; ticket 0
// lists those of a customer outside any ticket (customer must be given).
func (n *Notifier) Messages(ctx context.Context, ticket int64, customer string) ([]OutboundMessage, error) {
	q := `SELECT id, COALESCE(ticket_id, 0), to_phone, kind, body, status, attempts, created_at, sent_at, next_attempt_at,
		COALESCE(sid, ''), provider_status, error_code, last_error FROM outbox WHERE ticket_id = $1 ORDER BY id`
	args := []any{ticket}
	if ticket == 0 {
		q = strings.Replace(q, "ticket_id = $1", "customer_id = $1", 1)
		args = []any{customer}
	}
	rows, err := n.store.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	defer rows.Close()
	var out []OutboundMessage
	for rows.Next() {
		var m OutboundMessage
		var sent sql.NullTime
		if err := rows.Scan(&m.ID, &m.Ticket, &m.To, &m.Kind, &m.Body, &m.Status, &m.Attempts, &m.Created, &sent, &m.NextAttempt,
			&m.SID, &m.Delivery, &m.ErrorCode, &m.LastError); err != nil {
			return nil, fmt.Errorf("list messages: %w", err)
		}
		m.Created, m.NextAttempt = m.Created.UTC(), m.NextAttempt.UTC()
		if sent.Valid {
			m.Sent = sent.Time.UTC()
		}
		if m.Status != statusPending {
			m.NextAttempt = time.Time{}
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Conversation is a ticket's SMS conversation state.
type Conversation struct {
	Ticket   int64  `json:"ticket_id"`
	Customer string `json:"customer_id"`
	// Stage is offer, scheduled, survey or done.
	Stage string `json:"stage"`
	// Offer counts the offers sent (a taken slot makes a new one).
	Offer int `json:"offer"`
	// Slots are the current offer's.
	Slots []Slot `json:"slots,omitempty"`
	// CSAT is the 1–5 answer to the satisfaction question, 0 without one.
	CSAT int `json:"csat,omitempty"`
}

// Conversation returns a ticket's conversation; ENotFound when the ticket
// has none (its customer was not texted).
func (n *Notifier) Conversation(ctx context.Context, ticket int64) (Conversation, error) {
	var c Conversation
	err := n.store.WithTx(ctx, func(tx *devices.Tx) error {
		conv, err := readConversation(ctx, tx, ticket)
		if err != nil {
			return err
		}
		c = Conversation{Ticket: ticket, Customer: conv.Customer, Stage: conv.Stage, Offer: conv.Offer}
		var csat sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT csat FROM outreach WHERE ticket_id = $1`, ticket).Scan(&csat); err != nil {
			return err
		}
		c.CSAT = int(csat.Int64)
		c.Slots, err = offerSlots(ctx, tx, ticket, conv.Offer)
		return err
	})
	return c, wrap("read conversation", err)
}
