package devices

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/proactivehq/proactive"
)

// terminalSQL lists the terminal states for SQL; the partial unique index
// tickets_one_open uses the same list, and proactive.TicketStatus.Terminal
// the same states.
const terminalSQL = `('closed', 'declined', 'expired', 'cancelled')`

// validStatus reports whether s is a declared ticket status.
func validStatus(s proactive.TicketStatus) bool { return s.Valid() }

// illegal explains why a ticket cannot move to a status, as an EConflict.
func illegal(t proactive.Ticket, to proactive.TicketStatus) error {
	if t.Status.Terminal() {
		return proactive.Errorf(proactive.EConflict, "ticket %d is %s, a final state: it cannot become %s", t.ID, t.Status, to)
	}
	next := make([]string, 0, 4)
	for _, s := range t.Status.Next() {
		next = append(next, string(s))
	}
	return proactive.Errorf(proactive.EConflict, "ticket %d is %s: it cannot become %s, only %s",
		t.ID, t.Status, to, strings.Join(next, ", "))
}

const ticketColumns = `id, device_id, component, rule, status, severity, summary, predicted_failure_at,
	opened_at, updated_at, closed_at, technician_id, outcome, outcome_notes,
	fired_at, held_reason, alerts_absorbed, last_alert_at, last_alert_fired_at, incident_id,
	follow_up_reason, follow_up_since`

func scanTicket(row interface{ Scan(...any) error }) (proactive.Ticket, error) {
	var t proactive.Ticket
	var predicted, closed, fired, lastAt, lastFired, followSince sql.NullTime
	var tech, outcome sql.NullString
	var incident sql.NullInt64
	var followReason string
	err := row.Scan(&t.ID, &t.Device, &t.Component, &t.Rule, &t.Status, &t.Severity, &t.Summary, &predicted,
		&t.OpenedAt, &t.UpdatedAt, &closed, &tech, &outcome, &t.OutcomeNotes,
		&fired, &t.HeldReason, &t.AlertsAbsorbed, &lastAt, &lastFired, &incident, &followReason, &followSince)
	if err != nil {
		return proactive.Ticket{}, err
	}
	if followReason != "" {
		t.FollowUp = &proactive.FollowUp{Reason: followReason, Since: fromNull(followSince)}
	}
	t.PredictedFailure, t.ClosedAt = fromNull(predicted), fromNull(closed)
	t.FiredAt, t.LastAlertAt, t.LastAlertFiredAt = fromNull(fired), fromNull(lastAt), fromNull(lastFired)
	t.OpenedAt, t.UpdatedAt = t.OpenedAt.UTC(), t.UpdatedAt.UTC()
	t.Technician, t.Outcome = tech.String, proactive.Outcome(outcome.String)
	t.IncidentID = incident.Int64
	return t, nil
}

// getTicket reads a ticket without its timeline; ENotFound if there is none.
func getTicket(ctx context.Context, q querier, id int64) (proactive.Ticket, error) {
	t, err := scanTicket(q.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return proactive.Ticket{}, notFound("ticket", id)
	}
	return t, err
}

// activeTicket reads the non-terminal ticket of a device's component;
// sql.ErrNoRows if there is none.
func activeTicket(ctx context.Context, q querier, dev proactive.DeviceID, component string) (proactive.Ticket, error) {
	return scanTicket(q.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM tickets
		WHERE device_id = $1 AND component = $2 AND status NOT IN `+terminalSQL, string(dev), component))
}

// maxSummary bounds a ticket's summary; a longer one is cut, not refused, so
// that no alert is lost to its text.
const maxSummary = 1000

// validateAlert checks the alert fields a ticket needs.
func validateAlert(a *proactive.Alert) error {
	v := newValidator("alert")
	v.check(proactive.ValidDeviceID(string(a.Device)), "device", "%q must match [A-Za-z0-9_.-]{1,64}", a.Device)
	v.check(proactive.ValidMetricName(a.Component), "component", "%q must match [a-z][a-z0-9_]{0,63}", a.Component)
	v.check(proactive.ValidMetricName(a.Rule), "rule", "%q must match [a-z][a-z0-9_]{0,63}", a.Rule)
	v.check(a.Severity.Valid(), "severity", "%q is not info, warning or critical", a.Severity)
	v.check(a.TimeToFailure >= 0, "time_to_failure", "negative")
	if !utf8.ValidString(a.Summary) {
		a.Summary = strings.ToValidUTF8(a.Summary, "\uFFFD")
	}
	if utf8.RuneCountInString(a.Summary) > maxSummary {
		a.Summary = string([]rune(a.Summary)[:maxSummary-1]) + "…"
	}
	return v.err()
}

// OpenTicket opens a ticket for a firing alert, or returns the ticket its
// device and component already have open (created false). At most one
// non-terminal ticket exists per device and component, whatever the number
// of concurrent callers and processes: the partial unique index
// tickets_one_open decides, and a caller that loses the race gets the
// winner's ticket. A new ticket starts open with an alert event on its
// timeline; the idempotent path writes nothing. With a.Cooldown, a ticket
// of the device and component opened within it, even one finished since, is
// returned instead of a new one (created false), the alert recorded on it. EInvalid for a malformed
// alert; ENotFound for a device the registry does not know.
func (c *conn) OpenTicket(ctx context.Context, a proactive.Alert) (t proactive.Ticket, created bool, err error) {
	if err := validateAlert(&a); err != nil {
		return proactive.Ticket{}, false, err
	}
	// Even a repeat writes: the open ticket records the alert it absorbs.
	err = c.inTx(ctx, func(tx *Tx) error {
		t, created, err = tx.openTicket(ctx, a)
		return err
	})
	if err != nil {
		return proactive.Ticket{}, false, wrapOp("open ticket", err)
	}
	return t, created, nil
}

func (tx *Tx) openTicket(ctx context.Context, a proactive.Alert) (proactive.Ticket, bool, error) {
	for range 3 {
		t, err := activeTicket(ctx, tx.tx, a.Device, a.Component)
		if err == nil {
			t, err = tx.absorb(ctx, t, a)
			return t, false, err
		} else if !errors.Is(err, sql.ErrNoRows) {
			return proactive.Ticket{}, false, err
		}
		var one int
		err = tx.tx.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE id = $1`, string(a.Device)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return proactive.Ticket{}, false, proactive.Errorf(proactive.ENotFound, "device %s is not registered", a.Device)
		} else if err != nil {
			return proactive.Ticket{}, false, err
		}
		now := tx.s.clock()
		if a.Cooldown > 0 {
			if t, ok, err := tx.cooldownTicket(ctx, a, now); err != nil || ok {
				return t, false, err
			}
		}
		t = proactive.Ticket{Device: a.Device, Component: a.Component, Rule: a.Rule, Status: proactive.TicketOpen,
			Severity: a.Severity, Summary: a.Summary, OpenedAt: now, UpdatedAt: now, FiredAt: dbTime(a.FiredAt)}
		if a.TimeToFailure > 0 {
			base := a.FiredAt
			if base.IsZero() {
				base = now
			}
			t.PredictedFailure = dbTime(base.Add(a.TimeToFailure))
		}
		// A concurrent opener that committed first makes this insert do
		// nothing (on PostgreSQL, after waiting for its commit).
		err = tx.tx.QueryRowContext(ctx, `INSERT INTO tickets
			(device_id, component, rule, status, severity, summary, predicted_failure_at, opened_at, updated_at, outcome_notes, fired_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '', $10)
			ON CONFLICT (device_id, component) WHERE status NOT IN `+terminalSQL+` DO NOTHING
			RETURNING id`,
			string(t.Device), t.Component, t.Rule, string(t.Status), string(t.Severity), t.Summary,
			nullTime(t.PredictedFailure), now, now, nullTime(t.FiredAt)).Scan(&t.ID)
		if errors.Is(err, sql.ErrNoRows) {
			continue // lost the race: read the winner's ticket
		} else if err != nil {
			return proactive.Ticket{}, false, err
		}
		body := map[string]any{"rule": a.Rule, "severity": a.Severity, "summary": a.Summary}
		if a.Model != "" {
			body["model"] = a.Model
		}
		if !a.FiredAt.IsZero() {
			body["fired_at"] = a.FiredAt.UTC()
		}
		if !a.ActiveAt.IsZero() {
			body["active_at"] = a.ActiveAt.UTC()
		}
		if a.TimeToFailure > 0 {
			body["time_to_failure"] = a.TimeToFailure.String()
			body["predicted_failure"] = t.PredictedFailure
		}
		if len(a.Metrics) > 0 {
			body["metrics"] = a.Metrics
		}
		if _, err := insertEvent(ctx, tx.tx, t.ID, now, proactive.TicketEventAlert, "rules", body); err != nil {
			return proactive.Ticket{}, false, err
		}
		if err := tx.emitTicket(ctx, t); err != nil {
			return proactive.Ticket{}, false, err
		}
		return t, true, nil
	}
	return proactive.Ticket{}, false, errors.New("ticket opened and closed repeatedly by others meanwhile")
}

// cooldownTicket returns the latest ticket of the alert's device and
// component when its alert fired within the alert's cooldown of this one,
// with the alert recorded on its timeline: the rule asked for no second
// ticket meanwhile, and this holds across restarts of the rule engine, which
// keeps its own cooldown in memory only. The cooldown is a device-side
// timer: it runs on the alerts' own times (a ticket without one, on when it
// opened), so a backfill or a replay still opens a ticket per cooldown.
func (tx *Tx) cooldownTicket(ctx context.Context, a proactive.Alert, now time.Time) (proactive.Ticket, bool, error) {
	at := a.FiredAt
	if at.IsZero() {
		at = now
	}
	t, err := scanTicket(tx.tx.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM tickets
		WHERE device_id = $1 AND component = $2 AND COALESCE(fired_at, opened_at) > $3 AND COALESCE(fired_at, opened_at) < $4
		ORDER BY opened_at DESC, id DESC LIMIT 1`,
		string(a.Device), a.Component, dbTime(at.Add(-a.Cooldown)), dbTime(at.Add(a.Cooldown))))
	if errors.Is(err, sql.ErrNoRows) {
		return proactive.Ticket{}, false, nil
	} else if err != nil {
		return proactive.Ticket{}, false, err
	}
	body := map[string]any{"rule": a.Rule, "severity": a.Severity, "summary": a.Summary, "cooldown": a.Cooldown.String(),
		"note": "fired again within the rule's cooldown: no new ticket"}
	if !a.FiredAt.IsZero() {
		body["fired_at"] = a.FiredAt.UTC()
	}
	if _, err := insertEvent(ctx, tx.tx, t.ID, now, proactive.TicketEventAlert, "rules", body); err != nil {
		return proactive.Ticket{}, false, err
	}
	t, err = tx.countAlert(ctx, t, a, now)
	return t, err == nil, err
}

// absorb records on an open ticket an alert that opens no ticket of its
// own: nothing an alert does goes unrecorded.
func (tx *Tx) absorb(ctx context.Context, t proactive.Ticket, a proactive.Alert) (proactive.Ticket, error) {
	return tx.countAlert(ctx, t, a, tx.s.clock())
}

// countAlert adds an alert to a ticket's count of absorbed alerts, with
// when it was seen and its own time.
func (tx *Tx) countAlert(ctx context.Context, t proactive.Ticket, a proactive.Alert, now time.Time) (proactive.Ticket, error) {
	fired := dbTime(a.FiredAt)
	if _, err := tx.tx.ExecContext(ctx, `UPDATE tickets SET alerts_absorbed = alerts_absorbed + 1, last_alert_at = $2,
		last_alert_fired_at = $3, updated_at = $2 WHERE id = $1`, t.ID, now, nullTime(fired)); err != nil {
		return proactive.Ticket{}, fmt.Errorf("count absorbed alert: %w", err)
	}
	t.AlertsAbsorbed++
	t.LastAlertAt, t.LastAlertFiredAt = now, fired
	return t, nil
}

// insertEvent appends an event to a ticket's timeline.
func insertEvent(ctx context.Context, q querier, ticket int64, at time.Time, kind proactive.TicketEventKind, actor string, body any) (proactive.TicketEvent, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return proactive.TicketEvent{}, fmt.Errorf("encode %s event: %w", kind, err)
	}
	if raw, err = canonicalJSON(raw); err != nil {
		return proactive.TicketEvent{}, fmt.Errorf("encode %s event: %w", kind, err)
	}
	e := proactive.TicketEvent{TicketID: ticket, At: at, Kind: kind, Actor: actor, Body: raw}
	err = q.QueryRowContext(ctx, `INSERT INTO ticket_events (ticket_id, at, kind, actor, body)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, ticket, at, string(kind), actor, string(raw)).Scan(&e.ID)
	if err != nil {
		return e, err
	}
	// Whatever lands on the timeline changes the ticket for those who poll
	// with updated_since.
	_, err = q.ExecContext(ctx, `UPDATE tickets SET updated_at = $2 WHERE id = $1 AND updated_at < $2`, ticket, at)
	return e, err
}

// validateActor checks who is acting and a free-text note.
func validateActor(v *validator, actor, note string) {
	v.text("actor", actor, 100, true)
	v.text("note", note, 2000, false)
}

// Transition moves a ticket to another status along the state machine (see
// proactive.TicketStatus.Next) and records it on the timeline with actor and
// note. An illegal move is EConflict with the reason, and so is losing a race: of two
// concurrent transitions of one ticket, exactly one succeeds. To close a
// ticket use CloseTicket, which records the outcome. ENotFound for no such ticket.
func (c *conn) Transition(ctx context.Context, id int64, to proactive.TicketStatus, actor, note string) (proactive.Ticket, error) {
	v := newValidator("transition")
	switch {
	case to == proactive.TicketClosed:
		v.addf("status", "closing needs an outcome: use CloseTicket")
	case !validStatus(to):
		v.addf("status", "%q is not a ticket status", to)
	}
	validateActor(v, actor, note)
	if err := v.err(); err != nil {
		return proactive.Ticket{}, err
	}
	var t proactive.Ticket
	err := c.inTx(ctx, func(tx *Tx) error {
		var err error
		t, err = tx.transition(ctx, id, to, actor, map[string]any{"note": note}, "", "")
		return err
	})
	return t, wrapOp("transition ticket", err)
}

// CloseTicket closes a visited ticket with the visit's outcome and notes. Like
// Transition, an illegal move or a lost race is EConflict. With outcome
// part_replaced it also records, in the same transaction, that the ticket's
// component was replaced at the visit's time (see recordReplacement).
func (c *conn) CloseTicket(ctx context.Context, id int64, outcome proactive.Outcome, notes, actor string) (proactive.Ticket, error) {
	v := newValidator("close")
	v.check(outcome.Valid(), "outcome", "%q is not fault_confirmed, no_fault_found, part_replaced or false_alarm", outcome)
	validateActor(v, actor, notes)
	if err := v.err(); err != nil {
		return proactive.Ticket{}, err
	}
	body := map[string]any{"outcome": outcome, "notes": notes}
	var t proactive.Ticket
	err := c.inTx(ctx, func(tx *Tx) error {
		var err error
		t, err = tx.transition(ctx, id, proactive.TicketClosed, actor, body, outcome, notes)
		if err == nil && outcome == proactive.OutcomePartReplaced {
			err = tx.recordReplacement(ctx, t, t.ClosedAt)
		}
		return err
	})
	return t, wrapOp("close ticket", err)
}

// transition is the checked compare-and-set of a ticket's status.
func (tx *Tx) transition(ctx context.Context, id int64, to proactive.TicketStatus, actor string, body map[string]any,
	outcome proactive.Outcome, notes string) (proactive.Ticket, error) {
	t, err := getTicket(ctx, tx.tx, id)
	if err != nil {
		return proactive.Ticket{}, err
	}
	if !t.Status.CanTransition(to) {
		return proactive.Ticket{}, illegal(t, to)
	}
	// A dismissal (false_alarm) closes a ticket before any visit; every
	// other outcome is what a visit found.
	if to == proactive.TicketClosed && (outcome == proactive.OutcomeFalseAlarm) != (t.Status == proactive.TicketOpen || t.Status == proactive.TicketReview) {
		if outcome == proactive.OutcomeFalseAlarm {
			return proactive.Ticket{}, proactive.Errorf(proactive.EConflict, "ticket %d is %s: only an open ticket or one in review can be dismissed as a false alarm", t.ID, t.Status)
		}
		return proactive.Ticket{}, proactive.Errorf(proactive.EConflict, "ticket %d is %s: it closes with %s only after a visit (dismiss it as false_alarm instead)", t.ID, t.Status, outcome)
	}
	now := tx.s.clock()
	var closedAt sql.NullTime
	if to.Terminal() {
		closedAt = sql.NullTime{Time: now, Valid: true}
	}
	// The status in the WHERE makes this a compare-and-set: on PostgreSQL a
	// concurrent transition that committed first leaves no row to update.
	q := `UPDATE tickets SET status = $3, updated_at = $4, closed_at = $5 WHERE id = $1 AND status = $2`
	args := []any{id, string(t.Status), string(to), now, closedAt}
	if outcome != "" {
		q = `UPDATE tickets SET status = $3, updated_at = $4, closed_at = $5, outcome = $6, outcome_notes = $7
			WHERE id = $1 AND status = $2`
		args = append(args, string(outcome), notes)
	}
	res, err := tx.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return proactive.Ticket{}, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return proactive.Ticket{}, err
	} else if n == 0 {
		cur, err := getTicket(ctx, tx.tx, id)
		if err != nil {
			return proactive.Ticket{}, err
		}
		return proactive.Ticket{}, proactive.Errorf(proactive.EConflict,
			"ticket %d went from %s to %s meanwhile: it was not moved to %s", id, t.Status, cur.Status, to)
	}
	from := t.Status
	body["from"], body["to"] = from, to
	if _, err := insertEvent(ctx, tx.tx, id, now, proactive.TicketEventState, actor, body); err != nil {
		return proactive.Ticket{}, err
	}
	t.Status, t.UpdatedAt = to, now
	t.ClosedAt = fromNull(closedAt)
	if outcome != "" {
		t.Outcome, t.OutcomeNotes = outcome, notes
	}
	// Every status change passes here: its event is queued with it.
	if err := tx.emitTicket(ctx, t); err != nil {
		return proactive.Ticket{}, err
	}
	if obs := tx.s.moveObservers(); len(obs) > 0 {
		m := TicketMove{From: from, Ticket: t}
		tx.onCommit(func() {
			for _, f := range obs {
				f(m)
			}
		})
	}
	return t, nil
}

// TicketMove is one committed status change of a ticket: From is the
// status it left, Ticket the ticket as it now is.
type TicketMove struct {
	From   proactive.TicketStatus
	Ticket proactive.Ticket
}

// ObserveTransitions makes f see every ticket status change of this
// store, once its transaction has committed, so that metrics are counted
// where the event happens instead of recomputed from the tables. f runs
// on the committing goroutine: it must be quick and must not block.
func (s *Store) ObserveTransitions(f func(TicketMove)) {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	s.observers = append(s.observers[:len(s.observers):len(s.observers)], f)
}

// moveObservers returns the observers registered so far.
func (s *Store) moveObservers() []func(TicketMove) {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	return s.observers
}

// Assign assigns a ticket to a technician, or unassigns it when technician
// is empty, and records it on the timeline. Assigning the current
// technician again changes nothing. ENotFound for no such ticket or
// technician; EConflict for a ticket in a terminal state.
func (c *conn) Assign(ctx context.Context, id int64, technician, actor string) (proactive.Ticket, error) {
	v := newValidator("assignment")
	validateActor(v, actor, "")
	if err := v.err(); err != nil {
		return proactive.Ticket{}, err
	}
	var t proactive.Ticket
	err := c.inTx(ctx, func(tx *Tx) error {
		var err error
		t, err = tx.assign(ctx, id, technician, actor)
		return err
	})
	return t, wrapOp("assign ticket", err)
}

func (tx *Tx) assign(ctx context.Context, id int64, technician, actor string) (proactive.Ticket, error) {
	t, err := getTicket(ctx, tx.tx, id)
	if err != nil {
		return proactive.Ticket{}, err
	}
	if t.Status.Terminal() {
		return proactive.Ticket{}, proactive.Errorf(proactive.EConflict, "ticket %d is %s: it can no longer be assigned", id, t.Status)
	}
	if t.Technician == technician {
		return t, nil
	}
	var tech sql.NullString
	if technician != "" {
		var one int
		err := tx.tx.QueryRowContext(ctx, `SELECT 1 FROM technicians WHERE id = $1`, technician).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return proactive.Ticket{}, notFound("technician", technician)
		} else if err != nil {
			return proactive.Ticket{}, err
		}
		tech = sql.NullString{String: technician, Valid: true}
	}
	now := tx.s.clock()
	res, err := tx.tx.ExecContext(ctx, `UPDATE tickets SET technician_id = $2, updated_at = $3
		WHERE id = $1 AND status NOT IN `+terminalSQL, id, tech, now)
	if err != nil {
		return proactive.Ticket{}, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return proactive.Ticket{}, err
	} else if n == 0 {
		return proactive.Ticket{}, proactive.Errorf(proactive.EConflict, "ticket %d was finished meanwhile: it can no longer be assigned", id)
	}
	body := map[string]any{"technician": technician, "previous": t.Technician}
	if _, err := insertEvent(ctx, tx.tx, id, now, proactive.TicketEventAssignment, actor, body); err != nil {
		return proactive.Ticket{}, err
	}
	t.Technician, t.UpdatedAt = technician, now
	return t, nil
}

// maxComment bounds a comment's text.
const maxComment = 4000

// Comment adds a person's remark to a ticket's timeline, in any state.
// ENotFound for no such ticket.
func (c *conn) Comment(ctx context.Context, id int64, actor, text string) (proactive.TicketEvent, error) {
	v := newValidator("comment")
	v.text("actor", actor, 100, true)
	text = strings.TrimSpace(text)
	if text == "" {
		v.addf("text", "required")
	} else if utf8.RuneCountInString(text) > maxComment {
		v.addf("text", "longer than %d characters", maxComment)
	}
	if err := v.err(); err != nil {
		return proactive.TicketEvent{}, err
	}
	var e proactive.TicketEvent
	err := c.inTx(ctx, func(tx *Tx) error {
		var err error
		e, err = tx.record(ctx, id, proactive.TicketEventComment, actor, map[string]any{"text": text})
		return err
	})
	return e, wrapOp("comment on ticket", err)
}

// Record appends an event of kind alert, message or comment to a ticket's
// timeline, with body (any value that encodes as a JSON object). State and
// assignment events are written only by Transition, CloseTicket and Assign.
// ENotFound for no such ticket.
func (c *conn) Record(ctx context.Context, id int64, kind proactive.TicketEventKind, actor string, body any) (proactive.TicketEvent, error) {
	v := newValidator("event")
	switch {
	case kind == proactive.TicketEventState || kind == proactive.TicketEventAssignment:
		v.addf("kind", "%s events are written by Transition, CloseTicket and Assign", kind)
	case !kind.Valid():
		v.addf("kind", "%q is not alert, message or comment", kind)
	}
	v.text("actor", actor, 100, true)
	if raw, err := json.Marshal(body); err != nil || len(raw) == 0 || raw[0] != '{' {
		v.addf("body", "must encode as a JSON object")
	} else if len(raw) > maxMetadata {
		v.addf("body", "larger than %d bytes", maxMetadata)
	}
	if err := v.err(); err != nil {
		return proactive.TicketEvent{}, err
	}
	var e proactive.TicketEvent
	err := c.inTx(ctx, func(tx *Tx) error {
		var err error
		e, err = tx.record(ctx, id, kind, actor, body)
		return err
	})
	return e, wrapOp("record ticket event", err)
}

func (tx *Tx) record(ctx context.Context, id int64, kind proactive.TicketEventKind, actor string, body any) (proactive.TicketEvent, error) {
	var one int
	err := tx.tx.QueryRowContext(ctx, `SELECT 1 FROM tickets WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return proactive.TicketEvent{}, notFound("ticket", id)
	} else if err != nil {
		return proactive.TicketEvent{}, err
	}
	return insertEvent(ctx, tx.tx, id, tx.s.clock(), kind, actor, body)
}

// GetTicket returns a ticket with its timeline; ENotFound if there is none.
func (c *conn) GetTicket(ctx context.Context, id int64) (proactive.Ticket, error) {
	t, err := getTicket(ctx, c.read, id)
	if err != nil {
		return proactive.Ticket{}, wrapOp("get ticket", err)
	}
	if t.Timeline, err = c.timeline(ctx, id); err != nil {
		return proactive.Ticket{}, fmt.Errorf("get ticket: %w", err)
	}
	return t, nil
}

// ActiveTicket returns the non-terminal ticket of a device's component;
// ENotFound if it has none.
func (c *conn) ActiveTicket(ctx context.Context, dev proactive.DeviceID, component string) (proactive.Ticket, error) {
	t, err := activeTicket(ctx, c.read, dev, component)
	if errors.Is(err, sql.ErrNoRows) {
		return proactive.Ticket{}, proactive.Errorf(proactive.ENotFound, "device %s has no open ticket for %s", dev, component)
	}
	if err != nil {
		return proactive.Ticket{}, fmt.Errorf("active ticket: %w", err)
	}
	return t, nil
}

// LockTicket reads a ticket without its timeline and, on PostgreSQL, locks
// its row until the transaction ends, so that a check on it (whose ticket it
// is) holds until the change it guards commits. ENotFound for no such ticket.
func (tx *Tx) LockTicket(ctx context.Context, id int64) (proactive.Ticket, error) {
	q := `SELECT ` + ticketColumns + ` FROM tickets WHERE id = $1`
	if tx.s.dialect == Postgres {
		q += ` FOR UPDATE`
	}
	t, err := scanTicket(tx.tx.QueryRowContext(ctx, q, id))
	if errors.Is(err, sql.ErrNoRows) {
		return proactive.Ticket{}, notFound("ticket", id)
	} else if err != nil {
		return proactive.Ticket{}, fmt.Errorf("lock ticket: %w", err)
	}
	return t, nil
}

func (c *conn) timeline(ctx context.Context, id int64) ([]proactive.TicketEvent, error) {
	rows, err := c.read.QueryContext(ctx, `SELECT id, ticket_id, at, kind, actor, body FROM ticket_events
		WHERE ticket_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []proactive.TicketEvent
	for rows.Next() {
		var e proactive.TicketEvent
		var body []byte
		if err := rows.Scan(&e.ID, &e.TicketID, &e.At, &e.Kind, &e.Actor, &body); err != nil {
			return nil, err
		}
		e.At, e.Body = e.At.UTC(), mustCanonical(body)
		out = append(out, e)
	}
	return out, rows.Err()
}

// TicketFilter narrows ListTickets and CountTickets; zero fields match
// everything, and the conditions of several fields all hold.
type TicketFilter struct {
	// Status keeps tickets in any of these states.
	Status []proactive.TicketStatus
	// Active keeps tickets not in a terminal state.
	Active     bool
	Device     proactive.DeviceID
	Technician string
	Rule       string
	// Severity keeps tickets of any of these severities.
	Severity []proactive.Severity
	// Query keeps tickets whose device id, summary, rule, component or
	// technician contains it, case ignored, and the ticket it numbers:
	// "42" matches ticket 42 and every text with 42 in it, "#42" ticket 42
	// only. At most 200 characters.
	Query string
	// Region keeps tickets whose device's site postal code starts with it,
	// spaces and case ignored, as technicians' service areas match ("75"
	// is Paris, "SW1" covers SW1A 1AA). Letters, digits and spaces only.
	Region string
	// OpenedAfter and OpenedBefore keep tickets opened at or after, and
	// before, these times; zero is unbounded.
	OpenedAfter, OpenedBefore time.Time
	// UpdatedSince keeps tickets changed at or after it (a status, an
	// assignment, anything on the timeline, an absorbed alert): what an
	// integration polls for. Zero is unbounded.
	UpdatedSince time.Time
	// IDs keeps these tickets, at most 500.
	IDs []int64
	// FollowUp keeps tickets with a follow-up waiting for a person.
	FollowUp bool
	ListOptions
}

// maxTicketQuery bounds TicketFilter.Query.
const maxTicketQuery = 200

// likeEscaper escapes LIKE's wildcards, for patterns with ESCAPE '\'.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// where returns f's conditions but the cursor's, joined with AND, with
// their arguments appended to args ($n placeholders), and records f's
// problems in v.
func (f TicketFilter) where(v *validator, args []any) (string, []any) {
	conds := []string{"1 = 1"}
	arg := func(x any) string {
		args = append(args, x)
		return fmt.Sprintf("$%d", len(args))
	}
	in := func(column string, vals []string) {
		ph := make([]string, len(vals))
		for i, x := range vals {
			ph[i] = arg(x)
		}
		conds = append(conds, column+" IN ("+strings.Join(ph, ", ")+")")
	}
	if len(f.Status) > 0 {
		vals := make([]string, len(f.Status))
		for i, st := range f.Status {
			v.check(validStatus(st), fmt.Sprintf("status[%d]", i), "%q is not a ticket status", st)
			vals[i] = string(st)
		}
		in("status", vals)
	}
	if len(f.Severity) > 0 {
		vals := make([]string, len(f.Severity))
		for i, sev := range f.Severity {
			v.check(sev.Valid(), fmt.Sprintf("severity[%d]", i), "%q is not info, warning or critical", sev)
			vals[i] = string(sev)
		}
		in("severity", vals)
	}
	if len(f.IDs) > 0 {
		v.check(len(f.IDs) <= 500, "ids", "more than 500 tickets")
		ph := make([]string, len(f.IDs))
		for i, id := range f.IDs {
			ph[i] = arg(id)
		}
		conds = append(conds, "id IN ("+strings.Join(ph, ", ")+")")
	}
	if f.Active {
		conds = append(conds, "status NOT IN "+terminalSQL)
	}
	if f.Device != "" {
		conds = append(conds, "device_id = "+arg(string(f.Device)))
	}
	if f.Technician != "" {
		conds = append(conds, "technician_id = "+arg(f.Technician))
	}
	if f.Rule != "" {
		conds = append(conds, "rule = "+arg(f.Rule))
	}
	if f.FollowUp {
		conds = append(conds, "follow_up_reason <> ''")
	}
	q := strings.TrimSpace(f.Query)
	if n, err := strconv.ParseInt(strings.TrimPrefix(q, "#"), 10, 64); strings.HasPrefix(q, "#") && err == nil {
		conds = append(conds, "id = "+arg(n))
	} else if q != "" {
		v.text("query", q, maxTicketQuery, false)
		p := arg("%" + likeEscaper.Replace(strings.ToLower(q)) + "%")
		cond := `(LOWER(device_id) LIKE ` + p + ` ESCAPE '\' OR LOWER(summary) LIKE ` + p + ` ESCAPE '\'
			OR LOWER(rule) LIKE ` + p + ` ESCAPE '\' OR LOWER(component) LIKE ` + p + ` ESCAPE '\'
			OR LOWER(COALESCE(technician_id, '')) LIKE ` + p + ` ESCAPE '\'`
		if n, err := strconv.ParseInt(q, 10, 64); err == nil && n > 0 {
			cond += " OR id = " + arg(n)
		}
		conds = append(conds, cond+")")
	}
	if f.Region != "" {
		region := normalizePostal(f.Region)
		v.check(region != "" && len(region) <= 16 && !strings.ContainsFunc(region, func(r rune) bool {
			return (r < 'A' || r > 'Z') && (r < '0' || r > '9')
		}), "region", "%q is not the start of a postal code (letters and digits)", f.Region)
		// Letters and digits only: the pattern needs no escaping.
		conds = append(conds, `device_id IN (SELECT id FROM devices
			WHERE REPLACE(UPPER(site_postal_code), ' ', '') LIKE `+arg(region+"%")+`)`)
	}
	if !f.OpenedAfter.IsZero() {
		conds = append(conds, "opened_at >= "+arg(dbTime(f.OpenedAfter)))
	}
	if !f.OpenedBefore.IsZero() {
		conds = append(conds, "opened_at < "+arg(dbTime(f.OpenedBefore)))
	}
	if !f.UpdatedSince.IsZero() {
		conds = append(conds, "updated_at >= "+arg(dbTime(f.UpdatedSince)))
	}
	return strings.Join(conds, " AND "), args
}

// ListTickets returns tickets, newest first, without their timelines.
// EInvalid for an unknown status or severity, a query too long, a region
// that is no postal code prefix, or a malformed cursor.
func (c *conn) ListTickets(ctx context.Context, f TicketFilter) (Page[proactive.Ticket], error) {
	v := newValidator("ticket filter")
	var before int64 = 1<<63 - 1
	if f.Cursor != "" {
		n, err := strconv.ParseInt(f.Cursor, 10, 64)
		v.check(err == nil && n > 0, "cursor", "%q is not a cursor from a previous page", f.Cursor)
		before = n
	}
	cond, args := f.where(v, []any{before})
	if err := v.err(); err != nil {
		return Page[proactive.Ticket]{}, err
	}
	limit := f.limit()
	q := `SELECT ` + ticketColumns + ` FROM tickets WHERE id < $1 AND ` + cond
	args = append(args, limit+1)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := c.read.QueryContext(ctx, q, args...)
	if err != nil {
		return Page[proactive.Ticket]{}, fmt.Errorf("list tickets: %w", err)
	}
	defer rows.Close()
	var page Page[proactive.Ticket]
	for rows.Next() {
		t, err := scanTicket(rows)
		if err != nil {
			return Page[proactive.Ticket]{}, fmt.Errorf("list tickets: %w", err)
		}
		page.Items = append(page.Items, t)
	}
	if err := rows.Err(); err != nil {
		return Page[proactive.Ticket]{}, fmt.Errorf("list tickets: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.Next = strconv.FormatInt(page.Items[limit-1].ID, 10)
	}
	return page, nil
}

// CountTickets counts the tickets matching f by status; statuses without
// any are left out. f's ListOptions are ignored. EInvalid as ListTickets.
func (c *conn) CountTickets(ctx context.Context, f TicketFilter) (map[proactive.TicketStatus]int, error) {
	v := newValidator("ticket filter")
	cond, args := f.where(v, nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	rows, err := c.read.QueryContext(ctx, `SELECT status, COUNT(*) FROM tickets WHERE `+cond+` GROUP BY status`, args...)
	if err != nil {
		return nil, fmt.Errorf("count tickets: %w", err)
	}
	defer rows.Close()
	out := map[proactive.TicketStatus]int{}
	for rows.Next() {
		var st proactive.TicketStatus
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count tickets: %w", err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count tickets: %w", err)
	}
	return out, nil
}

// TicketRules returns the names of the rules that opened tickets, sorted,
// at most 500: the choices of a filter on TicketFilter.Rule.
func (c *conn) TicketRules(ctx context.Context) ([]string, error) {
	rows, err := c.read.QueryContext(ctx, `SELECT DISTINCT rule FROM tickets ORDER BY rule LIMIT 500`)
	if err != nil {
		return nil, fmt.Errorf("list ticket rules: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, fmt.Errorf("list ticket rules: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list ticket rules: %w", err)
	}
	return out, nil
}
