package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// Incidents: the rows behind the notifier's grouping of many devices firing
// one rule (see notify/incident.go for the decision). Every firing alert the
// notifier sees is a row of firings; an incident groups firings, and the
// tickets they opened carry its id.

// CountModelDevices counts the registered devices whose model matches one of
// globs (path.Match, as rules' models are matched), or every device when
// globs is empty: how many devices a rule applies to.
func (c *conn) CountModelDevices(ctx context.Context, globs []string) (int, error) {
	rows, err := c.read.QueryContext(ctx, `SELECT model, COUNT(*) FROM devices GROUP BY model`)
	if err != nil {
		return 0, fmt.Errorf("count devices by model: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var model string
		var count int
		if err := rows.Scan(&model, &count); err != nil {
			return 0, fmt.Errorf("count devices by model: %w", err)
		}
		if len(globs) == 0 || slices.ContainsFunc(globs, func(g string) bool { ok, _ := path.Match(g, model); return ok }) {
			n += count
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("count devices by model: %w", err)
	}
	return n, nil
}

// LockRule serialises, until tx ends, the grouping of a rule's alerts among
// concurrent notifiers: on PostgreSQL with a transaction-level advisory
// lock; SQLite's write transaction is serial already.
func (tx *Tx) LockRule(ctx context.Context, rule string) error {
	if tx.s.dialect != Postgres {
		return nil
	}
	if _, err := tx.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('incident:' || $1::text))`, rule); err != nil {
		return fmt.Errorf("lock rule %s: %w", rule, err)
	}
	return nil
}

// RecordFiring records that rule fired for dev at at (the alert's time),
// with the ticket the alert opened or updated.
func (tx *Tx) RecordFiring(ctx context.Context, rule string, dev proactive.DeviceID, ticket int64, at time.Time) error {
	if _, err := tx.tx.ExecContext(ctx, `INSERT INTO firings (rule, device_id, ticket_id, fired_at) VALUES ($1, $2, $3, $4)`,
		rule, string(dev), ticket, dbTime(at)); err != nil {
		return fmt.Errorf("record firing: %w", err)
	}
	return nil
}

// ActiveIncident returns the id of the rule's open incident whose latest
// alert is at since or later; false when there is none.
func (tx *Tx) ActiveIncident(ctx context.Context, rule string, since time.Time) (int64, bool, error) {
	var id int64
	err := tx.tx.QueryRowContext(ctx, `SELECT id FROM incidents WHERE rule = $1 AND status = 'open' AND last_alert_at >= $2
		ORDER BY last_alert_at DESC, id DESC LIMIT 1`, rule, dbTime(since)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, fmt.Errorf("read active incident: %w", err)
	}
	return id, true, nil
}

// UngroupedDevices counts the distinct devices that fired rule between from
// and to (alert times, inclusive) in firings no incident holds yet.
func (tx *Tx) UngroupedDevices(ctx context.Context, rule string, from, to time.Time) (int, error) {
	var n int
	err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(DISTINCT device_id) FROM firings
		WHERE rule = $1 AND fired_at >= $2 AND fired_at <= $3 AND incident_id IS NULL`, rule, dbTime(from), dbTime(to)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count firing devices: %w", err)
	}
	return n, nil
}

// OpenIncident creates an open incident of rule, measured against
// applicable devices, and returns its id. Its alert times are set as
// firings join it (JoinIncident).
func (tx *Tx) OpenIncident(ctx context.Context, rule string, at time.Time, applicable int) (int64, error) {
	now := tx.s.clock()
	var id int64
	err := tx.tx.QueryRowContext(ctx, `INSERT INTO incidents (rule, status, opened_at, first_alert_at, last_alert_at, updated_at, applicable)
		VALUES ($1, 'open', $2, $3, $3, $2, $4) RETURNING id`, rule, now, dbTime(at), applicable).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("open incident: %w", err)
	}
	inc := proactive.Incident{ID: id, Rule: rule, Status: proactive.IncidentOpen, OpenedAt: now, FirstAlertAt: dbTime(at),
		LastAlertAt: dbTime(at), Applicable: applicable, Devices: []proactive.DeviceID{}, Tickets: []int64{}}
	if err := tx.emit(ctx, proactive.EventIncidentOpened, incidentKey(id), inc); err != nil {
		return 0, err
	}
	return id, nil
}

// JoinIncident puts into incident id the firings of its rule between from
// and to that no incident holds, and their tickets: each active ticket gets
// the incident's id and a timeline entry; an open one whose offer waits
// (held_reason ” or group_wait) moves to review with held_reason incident,
// while a ticket for the field team alone (contact_none, or approved
// without a customer to text) stays open; the jobs of the kinds in cancel
// (an offer still waiting) are disarmed. Ticket stay (0: none) only gets
// the incident's id: its alert is being decided on by the caller. It returns
// the ids of the tickets that moved to review.
func (tx *Tx) JoinIncident(ctx context.Context, id int64, from, to time.Time, stay int64, cancel ...string) ([]int64, error) {
	now := tx.s.clock()
	var rule string
	if err := tx.tx.QueryRowContext(ctx, `SELECT rule FROM incidents WHERE id = $1`, id).Scan(&rule); errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("incident", id)
	} else if err != nil {
		return nil, fmt.Errorf("join incident: %w", err)
	}
	if _, err := tx.tx.ExecContext(ctx, `UPDATE firings SET incident_id = $1
		WHERE rule = $2 AND fired_at >= $3 AND fired_at <= $4 AND incident_id IS NULL`, id, rule, dbTime(from), dbTime(to)); err != nil {
		return nil, fmt.Errorf("join incident: %w", err)
	}
	if _, err := tx.tx.ExecContext(ctx, `UPDATE incidents SET updated_at = $2,
		first_alert_at = (SELECT MIN(fired_at) FROM firings WHERE incident_id = $1),
		last_alert_at = (SELECT MAX(fired_at) FROM firings WHERE incident_id = $1) WHERE id = $1`, id, now); err != nil {
		return nil, fmt.Errorf("join incident: %w", err)
	}
	rows, err := tx.tx.QueryContext(ctx, `SELECT DISTINCT t.id FROM firings f JOIN tickets t ON t.id = f.ticket_id
		WHERE f.incident_id = $1 AND t.incident_id IS NULL AND t.status NOT IN `+terminalSQL+` ORDER BY t.id`, id)
	if err != nil {
		return nil, fmt.Errorf("join incident: %w", err)
	}
	tickets, err := scanIDs(rows)
	if err != nil {
		return nil, fmt.Errorf("join incident: %w", err)
	}
	note := fmt.Sprintf("part of incident %d: many devices fired %s at once; no customer is texted", id, rule)
	var held []int64
	for _, t := range tickets {
		if _, err := tx.tx.ExecContext(ctx, `UPDATE tickets SET incident_id = $2, updated_at = $3 WHERE id = $1`, t, id, now); err != nil {
			return nil, fmt.Errorf("join incident: %w", err)
		}
		cur, err := getTicket(ctx, tx.tx, t)
		if err != nil {
			return nil, fmt.Errorf("join incident: %w", err)
		}
		if t != stay && cur.Status == proactive.TicketOpen && (cur.HeldReason == "" || cur.HeldReason == waitingReason) {
			if err := tx.Hold(ctx, t, incidentReason); err != nil {
				return nil, err
			}
			if _, err := tx.transition(ctx, t, proactive.TicketReview, "notify", map[string]any{"note": note, "incident_id": id}, "", ""); err != nil {
				return nil, fmt.Errorf("join incident: %w", err)
			}
			held = append(held, t)
		} else if _, err := insertEvent(ctx, tx.tx, t, now, proactive.TicketEventMessage, "notify",
			map[string]any{"incident_id": id, "note": note}); err != nil {
			return nil, fmt.Errorf("join incident: %w", err)
		}
		if err := tx.CancelJobs(ctx, t, now, cancel...); err != nil {
			return nil, err
		}
	}
	return held, nil
}

// The held reasons JoinIncident and EndWait read and write: an offer
// waiting notify.group_wait, and a ticket held by its incident.
const (
	waitingReason  = "group_wait"
	incidentReason = "incident"
)

// EndWait clears a ticket's held reason when it is reason (an offer that
// waited and now goes out), in this transaction.
func (tx *Tx) EndWait(ctx context.Context, id int64, reason string) error {
	if _, err := tx.tx.ExecContext(ctx, `UPDATE tickets SET held_reason = '' WHERE id = $1 AND held_reason = $2`, id, reason); err != nil {
		return fmt.Errorf("end the offer's wait: %w", err)
	}
	return nil
}

// scanIDs reads a column of ids and closes rows.
func scanIDs(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

const incidentColumns = `id, rule, status, opened_at, first_alert_at, last_alert_at, closed_at, applicable`

func scanIncident(row interface{ Scan(...any) error }) (proactive.Incident, error) {
	var i proactive.Incident
	var closed sql.NullTime
	err := row.Scan(&i.ID, &i.Rule, &i.Status, &i.OpenedAt, &i.FirstAlertAt, &i.LastAlertAt, &closed, &i.Applicable)
	if err != nil {
		return proactive.Incident{}, err
	}
	i.OpenedAt, i.FirstAlertAt, i.LastAlertAt = i.OpenedAt.UTC(), i.FirstAlertAt.UTC(), i.LastAlertAt.UTC()
	i.ClosedAt = fromNull(closed)
	return i, nil
}

// members fills an incident's devices and tickets.
func (c *conn) members(ctx context.Context, i *proactive.Incident) error {
	rows, err := c.read.QueryContext(ctx, `SELECT DISTINCT device_id FROM firings WHERE incident_id = $1 ORDER BY device_id`, i.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	i.Devices = []proactive.DeviceID{}
	for rows.Next() {
		var d proactive.DeviceID
		if err := rows.Scan(&d); err != nil {
			return err
		}
		i.Devices = append(i.Devices, d)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	trows, err := c.read.QueryContext(ctx, `SELECT id FROM tickets WHERE incident_id = $1 ORDER BY id`, i.ID)
	if err != nil {
		return err
	}
	if i.Tickets, err = scanIDs(trows); err != nil {
		return err
	}
	if i.Tickets == nil {
		i.Tickets = []int64{}
	}
	return nil
}

// GetIncident returns an incident with its devices and tickets; ENotFound
// if there is none.
func (c *conn) GetIncident(ctx context.Context, id int64) (proactive.Incident, error) {
	i, err := scanIncident(c.read.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return proactive.Incident{}, notFound("incident", id)
	} else if err != nil {
		return proactive.Incident{}, fmt.Errorf("read incident: %w", err)
	}
	if err := c.members(ctx, &i); err != nil {
		return proactive.Incident{}, fmt.Errorf("read incident: %w", err)
	}
	return i, nil
}

// IncidentFilter narrows ListIncidents.
type IncidentFilter struct {
	// Status is open or dismissed; empty for both.
	Status proactive.IncidentStatus
	// Limit is the most incidents returned, default 50, at most 500.
	Limit int
}

// ListIncidents returns incidents, newest first, with their devices and
// tickets. EInvalid for an unknown status.
func (c *conn) ListIncidents(ctx context.Context, f IncidentFilter) ([]proactive.Incident, error) {
	v := newValidator("incident filter")
	v.check(f.Status == "" || f.Status == proactive.IncidentOpen || f.Status == proactive.IncidentDismissed,
		"status", "%q is not open or dismissed", f.Status)
	v.check(f.Limit >= 0 && f.Limit <= 500, "limit", "%d is not between 1 and 500", f.Limit)
	if err := v.err(); err != nil {
		return nil, err
	}
	if f.Limit == 0 {
		f.Limit = 50
	}
	q, args := `SELECT `+incidentColumns+` FROM incidents`, []any{}
	if f.Status != "" {
		q, args = q+` WHERE status = $2`, append(args, string(f.Status))
	}
	args = append([]any{f.Limit}, args...)
	rows, err := c.read.QueryContext(ctx, q+` ORDER BY id DESC LIMIT $1`, args...)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	defer rows.Close()
	out := []proactive.Incident{}
	for rows.Next() {
		i, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		out = append(out, i)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	rows.Close()
	for k := range out {
		if err := c.members(ctx, &out[k]); err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
	}
	return out, nil
}

// DismissIncident closes an open incident as a false alarm: each of its
// tickets in review is closed with the outcome false_alarm (as CloseTicket
// does), and the incident becomes dismissed. Tickets elsewhere (approved,
// or open for the field team) are left as they are. ENotFound
// for no such incident; EConflict for one dismissed already.
func (c *conn) DismissIncident(ctx context.Context, id int64, actor, note string) (proactive.Incident, error) {
	v := newValidator("dismissal")
	validateActor(v, actor, note)
	if err := v.err(); err != nil {
		return proactive.Incident{}, err
	}
	err := c.inTx(ctx, func(tx *Tx) error {
		now := tx.s.clock()
		var status proactive.IncidentStatus
		if err := tx.tx.QueryRowContext(ctx, `SELECT status FROM incidents WHERE id = $1`, id).Scan(&status); errors.Is(err, sql.ErrNoRows) {
			return notFound("incident", id)
		} else if err != nil {
			return err
		}
		res, err := tx.tx.ExecContext(ctx, `UPDATE incidents SET status = 'dismissed', closed_at = $2, updated_at = $2
			WHERE id = $1 AND status = 'open'`, id, now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return proactive.Errorf(proactive.EConflict, "incident %d is %s already", id, status)
		}
		rows, err := tx.tx.QueryContext(ctx, `SELECT id FROM tickets WHERE incident_id = $1 AND status = 'review' ORDER BY id`, id)
		if err != nil {
			return err
		}
		tickets, err := scanIDs(rows)
		if err != nil {
			return err
		}
		notes := strings.TrimSpace(fmt.Sprintf("incident %d dismissed. %s", id, note))
		for _, t := range tickets {
			if _, err := tx.CloseTicket(ctx, t, proactive.OutcomeFalseAlarm, notes, actor); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return proactive.Incident{}, wrapOp("dismiss incident", err)
	}
	return c.GetIncident(ctx, id)
}
