package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// OutboxMessage is an outgoing message of the notifier's outbox as its
// sender reads it.
type OutboxMessage struct {
	ID int64
	// Ticket is the message's ticket, 0 for one outside any ticket.
	Ticket   int64
	Customer string
	// Channel is the message's channel and To its address there: a phone
	// number for sms and whatsapp, an email address for email.
	Channel  proactive.Channel
	To       string
	TimeZone string
	Kind     string
	Body     string
	Urgent   bool
	// Status is pending, sending, unknown, sent, failed or suppressed.
	Status   string
	Attempts int
	// ClaimedAt is when the last attempt claimed it, zero before any.
	ClaimedAt time.Time
	// Stage is the stage of the ticket's SMS conversation as the message
	// is read to be sent (offer, scheduled, survey, done), empty without
	// one: what the customer may answer next.
	Stage string
}

// OutboxDue returns the pending and unknown messages due at now, oldest
// first, at most limit.
func (c *conn) OutboxDue(ctx context.Context, now time.Time, limit int) ([]OutboxMessage, error) {
	rows, err := c.read.QueryContext(ctx, `SELECT o.id, o.ticket_id, o.customer_id, o.to_phone, o.time_zone, o.kind, o.body, o.urgent,
		o.status, o.attempts, o.claimed_at, o.channel, COALESCE(c.stage, '') FROM outbox o LEFT JOIN outreach c ON c.ticket_id = o.ticket_id
		WHERE o.status IN ('pending', 'unknown') AND o.next_attempt_at <= $1 ORDER BY o.id LIMIT $2`,
		dbTime(now), limit)
	if err != nil {
		return nil, fmt.Errorf("read due messages: %w", err)
	}
	defer rows.Close()
	var out []OutboxMessage
	for rows.Next() {
		var m OutboxMessage
		var ticket sql.NullInt64
		var claimed sql.NullTime
		if err := rows.Scan(&m.ID, &ticket, &m.Customer, &m.To, &m.TimeZone, &m.Kind, &m.Body, &m.Urgent, &m.Status,
			&m.Attempts, &claimed, &m.Channel, &m.Stage); err != nil {
			return nil, fmt.Errorf("read due messages: %w", err)
		}
		m.Ticket, m.ClaimedAt = ticket.Int64, fromNull(claimed)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read due messages: %w", err)
	}
	return out, nil
}

// OutboxReclaim turns the messages claimed before cutoff and still sending
// (the process sending them died) into unknown ones due at now, with reason
// as their last error. It reports how many it turned.
func (c *conn) OutboxReclaim(ctx context.Context, cutoff, now time.Time, reason string) (int, error) {
	// Counting on the read pool first keeps the usual pass, with nothing
	// stale, off SQLite's write lock.
	var stale int
	if err := c.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE status = 'sending' AND claimed_at < $1`,
		dbTime(cutoff)).Scan(&stale); err != nil {
		return 0, fmt.Errorf("find stale attempts: %w", err)
	}
	if stale == 0 {
		return 0, nil
	}
	res, err := c.write.ExecContext(ctx, `UPDATE outbox SET status = 'unknown', next_attempt_at = $1, last_error = $3
		WHERE status = 'sending' AND claimed_at < $2`, dbTime(now), dbTime(cutoff), reason)
	if err != nil {
		return 0, fmt.Errorf("reclaim stale attempts: %w", err)
	}
	k, err := res.RowsAffected()
	return int(k), err
}

// LockCustomerMessages serializes, across processes, the claims of one
// customer's messages until the transaction ends. PostgreSQL takes a
// transaction advisory lock on the customer; on SQLite the transaction
// already holds the database's write lock.
func (tx *Tx) LockCustomerMessages(ctx context.Context, customer string) error {
	if tx.s.dialect != Postgres {
		return nil
	}
	if _, err := tx.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('proactive.sms:' || $1::text))`, customer); err != nil {
		return fmt.Errorf("lock customer's messages: %w", err)
	}
	return nil
}

// OutboxStatus returns a message's status and when it is next due.
// ENotFound for no such message.
func (c *conn) OutboxStatus(ctx context.Context, id int64) (string, time.Time, error) {
	var status string
	var next time.Time
	err := c.read.QueryRowContext(ctx, `SELECT status, next_attempt_at FROM outbox WHERE id = $1`, id).Scan(&status, &next)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, notFound("message", id)
	} else if err != nil {
		return "", time.Time{}, fmt.Errorf("read message: %w", err)
	}
	return status, next.UTC(), nil
}

// OutboxAhead counts the customer's messages older than id that go first:
// in flight, or pending and due at now.
func (c *conn) OutboxAhead(ctx context.Context, customer string, id int64, now time.Time) (int, error) {
	var n int
	if err := c.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE customer_id = $1 AND id < $2
		AND (status = 'sending' OR (status = 'pending' AND next_attempt_at <= $3))`,
		customer, id, dbTime(now)).Scan(&n); err != nil {
		return 0, fmt.Errorf("check messages in flight: %w", err)
	}
	return n, nil
}

// CustomerPolicy returns what the outbox checks of a customer before a
// message on channel ch: whether they consent to ch and their quiet hours.
// ENotFound for no such customer.
func (c *conn) CustomerPolicy(ctx context.Context, customer string, ch proactive.Channel) (consent bool, q proactive.QuietHours, err error) {
	col, _ := consentColumns(ch.OrSMS())
	err = c.read.QueryRowContext(ctx, `SELECT `+col+`, quiet_start, quiet_end FROM customers WHERE id = $1`, customer).
		Scan(&consent, &q.Start, &q.End)
	if errors.Is(err, sql.ErrNoRows) {
		return false, proactive.QuietHours{}, notFound("customer", customer)
	} else if err != nil {
		return false, proactive.QuietHours{}, fmt.Errorf("read customer: %w", err)
	}
	return consent, q, nil
}

// OutboxSentSince returns, oldest first, when the customer's messages of
// the given kinds that were sent, or are being sent or unknown, left (or
// were claimed, when not sent yet) after since: what a daily cap counts.
// Run in the transaction holding LockCustomerMessages, it sees every claim
// other notifiers committed.
func (c *conn) OutboxSentSince(ctx context.Context, customer string, kinds []string, since time.Time) ([]time.Time, error) {
	args := []any{customer, dbTime(since)}
	ph := make([]string, len(kinds))
	for i, k := range kinds {
		args = append(args, k)
		ph[i] = "$" + strconv.Itoa(len(args))
	}
	if len(kinds) == 0 {
		return nil, nil
	}
	// COALESCE over timestamps loses their type on SQLite: pick in Go.
	rows, err := c.read.QueryContext(ctx, `SELECT sent_at, claimed_at FROM outbox
		WHERE customer_id = $1 AND kind IN (`+strings.Join(ph, ", ")+`) AND status IN ('sent', 'sending', 'unknown')
		AND (sent_at > $2 OR (sent_at IS NULL AND claimed_at > $2))`, args...)
	if err != nil {
		return nil, fmt.Errorf("count today's messages: %w", err)
	}
	defer rows.Close()
	var times []time.Time
	for rows.Next() {
		var sent, claimed sql.NullTime
		if err := rows.Scan(&sent, &claimed); err != nil {
			return nil, fmt.Errorf("count today's messages: %w", err)
		}
		if sent.Valid {
			times = append(times, sent.Time.UTC())
		} else {
			times = append(times, claimed.Time.UTC())
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count today's messages: %w", err)
	}
	slices.SortFunc(times, time.Time.Compare)
	return times, nil
}

// update runs a single-row UPDATE and reports whether it changed a row.
func (c *conn) update(ctx context.Context, q string, args ...any) (bool, error) {
	res, err := c.write.ExecContext(ctx, q, args...)
	if err != nil {
		return false, err
	}
	k, err := res.RowsAffected()
	return k > 0, err
}

// OutboxClaim claims a pending message for an attempt at now, counting the
// attempt; false when it was not pending (another notifier has it).
func (c *conn) OutboxClaim(ctx context.Context, id int64, now time.Time) (bool, error) {
	ok, err := c.update(ctx, `UPDATE outbox SET status = 'sending', claimed_at = $2, attempts = attempts + 1
		WHERE id = $1 AND status = 'pending'`, id, dbTime(now))
	if err != nil {
		return false, fmt.Errorf("claim message: %w", err)
	}
	return ok, nil
}

// OutboxDefer moves a pending message's next attempt to until, with why
// as its last error.
func (c *conn) OutboxDefer(ctx context.Context, id int64, until time.Time, why string) error {
	if _, err := c.update(ctx, `UPDATE outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1 AND status = 'pending'`,
		id, dbTime(until), "deferred: "+why); err != nil {
		return fmt.Errorf("defer message: %w", err)
	}
	return nil
}

// OutboxFinish ends a message not yet finished as status (failed or
// suppressed) with reason; false when it was already finished.
func (c *conn) OutboxFinish(ctx context.Context, id int64, status, reason string) (bool, error) {
	ok, err := c.update(ctx, `UPDATE outbox SET status = $2, last_error = $3 WHERE id = $1 AND status IN ('pending', 'sending', 'unknown')`,
		id, status, reason)
	if err != nil {
		return false, fmt.Errorf("finish message: %w", err)
	}
	return ok, nil
}

// OutboxRetry puts a message in flight back to pending, due at next, after
// a failed attempt that may be tried again.
func (c *conn) OutboxRetry(ctx context.Context, id int64, next time.Time, lastErr string) error {
	if _, err := c.update(ctx, `UPDATE outbox SET status = 'pending', next_attempt_at = $2, last_error = $3
		WHERE id = $1 AND status = 'sending'`, id, dbTime(next), lastErr); err != nil {
		return fmt.Errorf("retry message: %w", err)
	}
	return nil
}

// OutboxUnknown marks a message in flight whose attempt had an ambiguous
// outcome as unknown, to be reconciled at next.
func (c *conn) OutboxUnknown(ctx context.Context, id int64, next time.Time, lastErr string) error {
	if _, err := c.update(ctx, `UPDATE outbox SET status = 'unknown', next_attempt_at = $2, last_error = $3
		WHERE id = $1 AND status = 'sending'`, id, dbTime(next), lastErr); err != nil {
		return fmt.Errorf("mark message unknown: %w", err)
	}
	return nil
}

// OutboxLease takes an unknown message due at now until until, for the
// time of one lookup at the provider; false when it was not due (another
// notifier has it).
func (c *conn) OutboxLease(ctx context.Context, id int64, now, until time.Time) (bool, error) {
	ok, err := c.update(ctx, `UPDATE outbox SET next_attempt_at = $2 WHERE id = $1 AND status = 'unknown' AND next_attempt_at <= $3`,
		id, dbTime(until), dbTime(now))
	if err != nil {
		return false, fmt.Errorf("lease message: %w", err)
	}
	return ok, nil
}

// OutboxDelayUnknown moves an unknown message's next reconciliation to
// until, recording lastErr unless it is empty.
func (c *conn) OutboxDelayUnknown(ctx context.Context, id int64, until time.Time, lastErr string) error {
	q, args := `UPDATE outbox SET next_attempt_at = $2 WHERE id = $1 AND status = 'unknown'`, []any{id, dbTime(until)}
	if lastErr != "" {
		q = `UPDATE outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1 AND status = 'unknown'`
		args = append(args, lastErr)
	}
	if _, err := c.update(ctx, q, args...); err != nil {
		return fmt.Errorf("delay message: %w", err)
	}
	return nil
}

// OutboxResend makes an unknown message pending again, due at now; false
// when it was no longer unknown.
func (c *conn) OutboxResend(ctx context.Context, id int64, now time.Time) (bool, error) {
	ok, err := c.update(ctx, `UPDATE outbox SET status = 'pending', next_attempt_at = $2 WHERE id = $1 AND status = 'unknown'`,
		id, dbTime(now))
	if err != nil {
		return false, fmt.Errorf("resend message: %w", err)
	}
	return ok, nil
}

// OutboxReceipt is the provider's acceptance of a message.
type OutboxReceipt struct {
	// SID is the provider's id of the message, empty when it gave none.
	SID string
	// Status is the provider's status for it, and Rank that status's
	// order: a later callback of a lower rank does not replace it.
	Status string
	Rank   int
	At     time.Time
	// FirstOf is the ticket whose first SMS this is (an offer), or 0: its
	// outreach records when the first SMS left.
	FirstOf int64
}

// OutboxSent records that the provider took a message. A status callback
// may have come first and carried a later status: the rank keeps it. With
// r.FirstOf, it returns when the ticket's alert fired if this was its first
// SMS, for the alert-to-SMS latency; zero otherwise.
func (c *conn) OutboxSent(ctx context.Context, id int64, r OutboxReceipt) (alertAt time.Time, err error) {
	err = c.inTx(ctx, func(tx *Tx) error {
		var sid sql.NullString
		if r.SID != "" {
			sid = sql.NullString{String: r.SID, Valid: true}
		}
		if _, err := tx.tx.ExecContext(ctx, `UPDATE outbox SET status = 'sent', sid = COALESCE($2, sid), sent_at = $3, last_error = '',
			provider_status = CASE WHEN provider_rank < $5 THEN $4 ELSE provider_status END,
			provider_rank = CASE WHEN provider_rank < $5 THEN $5 ELSE provider_rank END
			WHERE id = $1`, id, sid, dbTime(r.At), r.Status, r.Rank); err != nil {
			return err
		}
		if r.FirstOf == 0 {
			return nil
		}
		// An offer that waited for quiet hours or the daily cap is out: its
		// ticket no longer says it waits.
		if _, err := tx.tx.ExecContext(ctx, `UPDATE tickets SET held_reason = '' WHERE id = $1
			AND held_reason IN ('quiet_hours', 'daily_cap')`, r.FirstOf); err != nil {
			return err
		}
		var at sql.NullTime
		err := tx.tx.QueryRowContext(ctx, `UPDATE outreach SET first_sms_at = $2 WHERE ticket_id = $1 AND first_sms_at IS NULL
			RETURNING alert_at`, r.FirstOf, dbTime(r.At)).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		alertAt = fromNull(at)
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("record sent message: %w", err)
	}
	return alertAt, nil
}

// OutboundMessage is an outbox message as the API shows it.
type OutboundMessage struct {
	ID     int64 `json:"id"`
	Ticket int64 `json:"ticket_id,omitempty"`
	// Channel is sms, whatsapp or email; To the address there.
	Channel  proactive.Channel `json:"channel"`
	To       string            `json:"to"`
	Kind     string            `json:"kind"`
	Body     string            `json:"body"`
	Status   string            `json:"status"`
	Attempts int               `json:"attempts"`
	Created  time.Time         `json:"created_at"`
	Sent     time.Time         `json:"sent_at,omitzero"`
	// NextAttempt is when a pending message is tried next.
	NextAttempt time.Time `json:"next_attempt_at,omitzero"`
	SID         string    `json:"sid,omitempty"`
	// Delivery is the provider's latest status: queued, sent, delivered,
	// undelivered, failed ...
	Delivery  string `json:"delivery,omitempty"`
	ErrorCode string `json:"error_code,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// OutboundMessages lists the outgoing messages of a ticket, oldest first;
// ticket 0 lists those of a customer outside any ticket.
func (c *conn) OutboundMessages(ctx context.Context, ticket int64, customer string) ([]OutboundMessage, error) {
	q := `SELECT id, COALESCE(ticket_id, 0), to_phone, kind, body, status, attempts, created_at, sent_at, next_attempt_at,
		COALESCE(sid, ''), provider_status, error_code, last_error, channel FROM outbox WHERE ticket_id = $1 ORDER BY id`
	args := []any{ticket}
	if ticket == 0 {
		q = strings.Replace(q, "ticket_id = $1", "customer_id = $1", 1)
		args = []any{customer}
	}
	rows, err := c.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	defer rows.Close()
	var out []OutboundMessage
	for rows.Next() {
		var m OutboundMessage
		var sent sql.NullTime
		if err := rows.Scan(&m.ID, &m.Ticket, &m.To, &m.Kind, &m.Body, &m.Status, &m.Attempts, &m.Created, &sent, &m.NextAttempt,
			&m.SID, &m.Delivery, &m.ErrorCode, &m.LastError, &m.Channel); err != nil {
			return nil, fmt.Errorf("list messages: %w", err)
		}
		m.Created, m.NextAttempt, m.Sent = m.Created.UTC(), m.NextAttempt.UTC(), fromNull(sent)
		if m.Status != "pending" {
			m.NextAttempt = time.Time{}
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	return out, nil
}

// CountByStatus counts the rows of the outbox (table "outbox") or of the
// tickets ("tickets") in each of the given statuses, for backlog gauges
// scraped often. Both tables have an index that leads with status, so this
// reads only the index entries of those statuses: give it the live ones
// (pending, open, ...), whose rows come and go, not the terminal ones,
// which grow for ever. A status without rows is absent from the map.
func (c *conn) CountByStatus(ctx context.Context, table string, statuses []string) (map[string]int64, error) {
	if table != "outbox" && table != "tickets" {
		return nil, fmt.Errorf("count by status: unknown table %q", table)
	}
	out := map[string]int64{}
	if len(statuses) == 0 {
		return out, nil
	}
	marks := make([]string, len(statuses))
	args := make([]any, len(statuses))
	for i, s := range statuses {
		marks[i], args[i] = fmt.Sprintf("$%d", i+1), s
	}
	rows, err := c.read.QueryContext(ctx, `SELECT status, COUNT(*) FROM `+table+
		` WHERE status IN (`+strings.Join(marks, ", ")+`) GROUP BY status`, args...)
	if err != nil {
		return nil, fmt.Errorf("count %s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var k int64
		if err := rows.Scan(&s, &k); err != nil {
			return nil, fmt.Errorf("count %s: %w", table, err)
		}
		out[s] = k
	}
	return out, rows.Err()
}
