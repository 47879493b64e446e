package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// ErrDuplicate reports a write refused because the row it would make
// exists already (a unique index decided), such as a technician booked
// twice at one start. Callers test it with errors.Is.
var ErrDuplicate = errors.New("duplicate")

// Appointment is a booked technician visit.
type Appointment struct {
	ID         int64     `json:"id"`
	Ticket     int64     `json:"ticket_id"`
	Technician string    `json:"technician_id"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	// Status is booked, done or cancelled.
	Status   string            `json:"status"`
	BookedAt time.Time         `json:"booked_at"`
	BookedBy string            `json:"booked_by"`
	DoneAt   time.Time         `json:"done_at,omitzero"`
	Outcome  proactive.Outcome `json:"outcome,omitempty"`
	Notes    string            `json:"notes,omitempty"`
}

const appointmentColumns = `id, ticket_id, technician_id, starts_at, ends_at, status, booked_at, booked_by, done_at, outcome, notes`

func scanAppointment(row interface{ Scan(...any) error }) (Appointment, error) {
	var a Appointment
	var done sql.NullTime
	var outcome sql.NullString
	err := row.Scan(&a.ID, &a.Ticket, &a.Technician, &a.Start, &a.End, &a.Status, &a.BookedAt, &a.BookedBy, &done, &outcome, &a.Notes)
	a.Start, a.End, a.BookedAt, a.DoneAt = a.Start.UTC(), a.End.UTC(), a.BookedAt.UTC(), fromNull(done)
	a.Outcome = proactive.Outcome(outcome.String)
	return a, err
}

// BookedAppointment returns a ticket's latest booked visit; ENotFound when
// it has none.
func (c *conn) BookedAppointment(ctx context.Context, ticket int64) (Appointment, error) {
	a, err := scanAppointment(c.read.QueryRowContext(ctx, `SELECT `+appointmentColumns+` FROM appointments
		WHERE ticket_id = $1 AND status = 'booked' ORDER BY id DESC LIMIT 1`, ticket))
	if errors.Is(err, sql.ErrNoRows) {
		return Appointment{}, proactive.Errorf(proactive.ENotFound, "ticket %d has no booked visit", ticket)
	} else if err != nil {
		return Appointment{}, fmt.Errorf("read booked visit: %w", err)
	}
	return a, nil
}

// TechnicianVisits counts the technician's visits, not cancelled and other
// than appointment except (0 for none), that overlap [from, to).
func (c *conn) TechnicianVisits(ctx context.Context, technician string, except int64, from, to time.Time) (int, error) {
	var n int
	if err := c.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM appointments WHERE technician_id = $1 AND status <> 'cancelled'
		AND id <> $2 AND starts_at < $4 AND ends_at > $3`, technician, except, dbTime(from), dbTime(to)).Scan(&n); err != nil {
		return 0, fmt.Errorf("check technician calendar: %w", err)
	}
	return n, nil
}

// TechnicianHolds counts the slots of the technician held at now for
// offers of tickets other than ticket that overlap [from, to).
func (c *conn) TechnicianHolds(ctx context.Context, technician string, ticket int64, now, from, to time.Time) (int, error) {
	var n int
	if err := c.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM offer_slots WHERE technician_id = $1 AND held_until > $2
		AND ticket_id <> $3 AND starts_at < $5 AND ends_at > $4`, technician, dbTime(now), ticket, dbTime(from), dbTime(to)).Scan(&n); err != nil {
		return 0, fmt.Errorf("check slot holds: %w", err)
	}
	return n, nil
}

// LockTechnician makes the transaction's later reads of the technician's
// calendar wait for other transactions that locked it (PostgreSQL; SQLite's
// one writer already does), so that of two moves to one technician the
// second sees the first's visit.
func (tx *Tx) LockTechnician(ctx context.Context, id string) error {
	if tx.s.dialect != Postgres {
		return nil
	}
	if _, err := tx.tx.ExecContext(ctx, `SELECT 1 FROM technicians WHERE id = $1 FOR UPDATE`, id); err != nil {
		return fmt.Errorf("lock technician: %w", err)
	}
	return nil
}

// LockTechnicians is LockTechnician for several technicians, locked in
// the order of their ids so that two transactions locking overlapping sets
// cannot deadlock. Slot holds take it before reading the calendars, so that
// of two offers at once the second sees the first's holds.
func (tx *Tx) LockTechnicians(ctx context.Context, ids []string) error {
	if tx.s.dialect != Postgres || len(ids) == 0 {
		return nil
	}
	cond, args := techIn(ids)
	cond = strings.Replace(cond, "technician_id", "id", 1)
	if _, err := tx.tx.ExecContext(ctx, `SELECT 1 FROM technicians WHERE `+cond+` ORDER BY id FOR UPDATE`, args...); err != nil {
		return fmt.Errorf("lock technicians: %w", err)
	}
	return nil
}

// MoveAppointment gives a visit to another technician. ErrDuplicate when
// that technician has a visit at the same start (a booking committed
// meanwhile).
func (c *conn) MoveAppointment(ctx context.Context, id int64, technician string) error {
	if _, err := c.write.ExecContext(ctx, `UPDATE appointments SET technician_id = $2 WHERE id = $1`, id, technician); err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("move appointment: %w", ErrDuplicate)
		}
		return fmt.Errorf("move appointment: %w", err)
	}
	return nil
}

// AppointmentDone records that a visit was made at with its outcome and
// the technician's notes.
func (c *conn) AppointmentDone(ctx context.Context, id int64, at time.Time, outcome proactive.Outcome, notes string) error {
	if _, err := c.write.ExecContext(ctx, `UPDATE appointments SET status = 'done', done_at = $2, outcome = $3, notes = $4 WHERE id = $1`,
		id, dbTime(at), string(outcome), notes); err != nil {
		return fmt.Errorf("record visit: %w", err)
	}
	return nil
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
func (c *conn) Appointments(ctx context.Context, f AppointmentFilter) ([]Appointment, error) {
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
		add("starts_at >= $%d", dbTime(f.From))
	}
	if !f.To.IsZero() {
		add("starts_at < $%d", dbTime(f.To))
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
	rows, err := c.read.QueryContext(ctx, q+" ORDER BY starts_at, id LIMIT "+strconv.Itoa(f.Limit), args...)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list appointments: %w", err)
	}
	return out, nil
}

// Span is a busy period of a technician: a visit booked.
type Span struct{ Start, End time.Time }

// BookedSpans returns, per technician of techs, their visits not cancelled
// that end after now.
func (c *conn) BookedSpans(ctx context.Context, techs []string, now time.Time) (map[string][]Span, error) {
	busy := map[string][]Span{}
	if len(techs) == 0 {
		return busy, nil
	}
	// Only these technicians' rows: the calendars of the whole fleet grow
	// with every offer, and this may run in an alert's write transaction.
	cond, args := techIn(techs, dbTime(now))
	rows, err := c.read.QueryContext(ctx, `SELECT technician_id, starts_at, ends_at FROM appointments
		WHERE status <> 'cancelled' AND ends_at > $1 AND `+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("read appointments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tech string
		var s Span
		if err := rows.Scan(&tech, &s.Start, &s.End); err != nil {
			return nil, fmt.Errorf("read appointments: %w", err)
		}
		busy[tech] = append(busy[tech], s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read appointments: %w", err)
	}
	return busy, nil
}

// HeldStarts returns, per technician of techs, the starts (UTC) of their
// slots held at now for the offers of tickets other than exclude.
func (c *conn) HeldStarts(ctx context.Context, techs []string, exclude int64, now time.Time) (map[string]map[time.Time]bool, error) {
	held := map[string]map[time.Time]bool{}
	if len(techs) == 0 {
		return held, nil
	}
	cond, args := techIn(techs, dbTime(now), exclude)
	rows, err := c.read.QueryContext(ctx, `SELECT technician_id, starts_at FROM offer_slots
		WHERE held_until > $1 AND ticket_id <> $2 AND `+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("read slot holds: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tech string
		var start time.Time
		if err := rows.Scan(&tech, &start); err != nil {
			return nil, fmt.Errorf("read slot holds: %w", err)
		}
		if held[tech] == nil {
			held[tech] = map[time.Time]bool{}
		}
		held[tech][start.UTC()] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read slot holds: %w", err)
	}
	return held, nil
}

// techIn returns the condition "technician_id IN (...)" over techs, with
// their ids appended to args.
func techIn(techs []string, args ...any) (string, []any) {
	in := make([]string, len(techs))
	for i, t := range techs {
		args = append(args, t)
		in[i] = "$" + strconv.Itoa(len(args))
	}
	return "technician_id IN (" + strings.Join(in, ", ") + ")", args
}

// SlotHold is one slot of an offer, held for its customer.
type SlotHold struct {
	// Position is the slot's number in the offer (1, 2, 3).
	Position   int
	Technician string
	Start, End time.Time
}

// HoldSlots records the slots of a ticket's offer number offer, held until
// until.
func (c *conn) HoldSlots(ctx context.Context, ticket int64, offer int, slots []SlotHold, until time.Time) error {
	return c.inTx(ctx, func(tx *Tx) error {
		for _, s := range slots {
			if _, err := tx.tx.ExecContext(ctx, `INSERT INTO offer_slots (ticket_id, offer_no, position, technician_id, starts_at, ends_at, held_until)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, ticket, offer, s.Position, s.Technician, dbTime(s.Start), dbTime(s.End), dbTime(until)); err != nil {
				return fmt.Errorf("hold slot: %w", err)
			}
		}
		return nil
	})
}

// StartScheduledOutreach records the conversation of a ticket whose visit is
// booked by phone, without an offer: it starts at stage scheduled, with no
// offer sent, so that the confirmation and the reminder have one to go
// through.
func (c *conn) StartScheduledOutreach(ctx context.Context, ticket int64, customer string, device proactive.DeviceID,
	alertAt, now time.Time) error {
	if _, err := c.write.ExecContext(ctx, `INSERT INTO outreach (ticket_id, customer_id, device_id, stage, offer_no, alert_at, updated_at)
		VALUES ($1, $2, $3, 'scheduled', 0, $4, $5)`, ticket, customer, string(device), dbTime(alertAt), dbTime(now)); err != nil {
		return fmt.Errorf("start conversation: %w", err)
	}
	return nil
}
