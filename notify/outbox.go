package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/proactivehq/proactive/devices"
)

// Outbox statuses. pending waits for its next attempt; sending is claimed by
// an attempt in flight; unknown had an ambiguous attempt and waits to be
// reconciled; sent was taken by the provider (its delivery is then
// provider_status); failed gave up; suppressed was never sent because the
// customer withdrew consent.
const (
	statusPending    = "pending"
	statusSending    = "sending"
	statusUnknown    = "unknown"
	statusSent       = "sent"
	statusFailed     = "failed"
	statusSuppressed = "suppressed"
)

// outRow is an outbox row as the sender reads it.
type outRow struct {
	ID        int64
	Ticket    sql.NullInt64
	Customer  string
	To        string
	TimeZone  string
	Kind      string
	Body      string
	Urgent    bool
	Status    string
	Attempts  int
	ClaimedAt sql.NullTime
}

func (r outRow) message(publicURL string) Message {
	m := Message{ID: r.ID, To: r.To, Body: r.Body, Kind: r.Kind}
	if publicURL != "" {
		m.StatusCallback = publicURL + StatusPath + "?m=" + strconv.FormatInt(r.ID, 10)
	}
	return m
}

// deliver makes one attempt at every due message, one goroutine per
// customer (so that a customer's messages keep their order) and at most
// Concurrency at once, and returns when they are done. reclaim first turns
// the claims of dead attempts into unknown outcomes.
func (n *Notifier) deliver(ctx context.Context, reclaim bool) error {
	now := n.clock()
	if reclaim {
		if err := n.reclaimStale(ctx, now); err != nil {
			return err
		}
	}
	rows, err := n.store.QueryContext(ctx, `SELECT id, ticket_id, customer_id, to_phone, time_zone, kind, body, urgent, status,
		attempts, claimed_at FROM outbox WHERE status IN ('pending', 'unknown') AND next_attempt_at <= $1 ORDER BY id LIMIT 1000`, now)
	if err != nil {
		return fmt.Errorf("read due messages: %w", err)
	}
	var order []string
	byCustomer := map[string][]outRow{}
	for rows.Next() {
		var r outRow
		if err := rows.Scan(&r.ID, &r.Ticket, &r.Customer, &r.To, &r.TimeZone, &r.Kind, &r.Body, &r.Urgent, &r.Status,
			&r.Attempts, &r.ClaimedAt); err != nil {
			rows.Close()
			return fmt.Errorf("read due messages: %w", err)
		}
		if byCustomer[r.Customer] == nil {
			order = append(order, r.Customer)
		}
		byCustomer[r.Customer] = append(byCustomer[r.Customer], r)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("read due messages: %w", err)
	}
	sem := make(chan struct{}, n.opt.Concurrency)
	var wg sync.WaitGroup
	for _, c := range order {
		sem <- struct{}{}
		wg.Add(1)
		go func(msgs []outRow) {
			defer func() { <-sem; wg.Done() }()
			for _, r := range msgs {
				if err := n.attempt(ctx, r); err != nil {
					n.metrics.sendErrors.Inc()
					n.log.Error("deliver message", "message", r.ID, "kind", r.Kind, "err", err)
				}
			}
		}(byCustomer[c])
	}
	wg.Wait()
	return nil
}

// reclaimStale turns messages claimed by an attempt that never reported
// (its process died mid-send) into unknown ones, to be reconciled.
func (n *Notifier) reclaimStale(ctx context.Context, now time.Time) error {
	cutoff := now.Add(-2 * n.opt.SendTimeout)
	var stale int
	if err := n.store.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE status = 'sending' AND claimed_at < $1`, cutoff).
		Scan(&stale); err != nil {
		return fmt.Errorf("find stale attempts: %w", err)
	}
	if stale == 0 {
		return nil
	}
	return n.store.WithTx(ctx, func(tx *devices.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'unknown', next_attempt_at = $1,
			last_error = 'the process sending it stopped' WHERE status = 'sending' AND claimed_at < $2`, now, cutoff)
		return err
	})
}

// attempt runs one message through the policy checks and, if they pass, one
// delivery attempt, and records the outcome.
//
// The checks and the claim are one transaction holding the customer's lock
// (lockCustomer), so that with several notifiers on one database a message
// is claimed by one of them, the daily cap counts every claim made
// elsewhere, an opt-out committed before the claim is seen, and a
// customer's messages still go out in order.
func (n *Notifier) attempt(ctx context.Context, r outRow) error {
	now := n.clock()
	if r.Status == statusUnknown {
		return n.reconcile(ctx, r, now)
	}
	var (
		claimed  bool
		deferred string
	)
	err := n.store.WithTx(ctx, func(tx *devices.Tx) error {
		if err := lockCustomer(ctx, tx, r.Customer); err != nil {
			return err
		}
		// Under the lock the row's status is current: another notifier may
		// have claimed, sent or suppressed it since it was read.
		var status string
		var next time.Time
		if err := tx.QueryRowContext(ctx, `SELECT status, next_attempt_at FROM outbox WHERE id = $1`, r.ID).
			Scan(&status, &next); err != nil {
			return fmt.Errorf("read message: %w", err)
		}
		if status != statusPending || next.After(now) {
			return nil
		}
		// An earlier message of the customer, in flight or due, goes first
		// (another notifier has it); this one is left to a later pass.
		var earlier int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE customer_id = $1 AND id < $2
			AND (status = 'sending' OR (status = 'pending' AND next_attempt_at <= $3))`,
			r.Customer, r.ID, now).Scan(&earlier); err != nil {
			return fmt.Errorf("check messages in flight: %w", err)
		}
		if earlier > 0 {
			return nil
		}
		var consent bool
		var q devices.QuietHours
		if err := tx.QueryRowContext(ctx, `SELECT sms_consent, quiet_start, quiet_end FROM customers WHERE id = $1`, r.Customer).
			Scan(&consent, &q.Start, &q.End); err != nil {
			return fmt.Errorf("read customer: %w", err)
		}
		if !consent && r.Kind != KindHelp {
			return finishTx(ctx, tx, r, statusSuppressed, "customer has not consented or opted out")
		}
		if proactiveKind(r.Kind) {
			if !r.Urgent {
				if until, quiet := quietUntil(q, now, n.zone(r.TimeZone)); quiet {
					deferred = "quiet_hours"
					return deferTx(ctx, tx, r.ID, until, "quiet hours")
				}
			}
			if until, capped, err := n.capped(ctx, tx, r.Customer, now); err != nil {
				return err
			} else if capped {
				deferred = "daily_cap"
				return deferTx(ctx, tx, r.ID, until, "daily cap")
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'sending', claimed_at = $2, attempts = attempts + 1
			WHERE id = $1 AND status = 'pending'`, r.ID, now)
		if err != nil {
			return err
		}
		k, err := res.RowsAffected()
		claimed = k == 1
		return err
	})
	if err != nil {
		return fmt.Errorf("claim message: %w", err)
	}
	if deferred != "" {
		n.metrics.deferred.WithLabelValues(deferred).Inc()
	}
	if !claimed {
		return nil
	}
	r.Attempts++
	return n.send(ctx, r, now)
}

// lockCustomer serializes, across processes, the claims of one customer's
// messages until tx ends. PostgreSQL takes a transaction advisory lock on
// the customer; on SQLite the transaction already holds the database's
// write lock.
func lockCustomer(ctx context.Context, tx *devices.Tx, customer string) error {
	if tx.Dialect() != devices.Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('proactive.sms:' || $1::text))`, customer); err != nil {
		return fmt.Errorf("lock customer's messages: %w", err)
	}
	return nil
}

// send makes the attempt on a claimed message and records what came of it.
func (n *Notifier) send(ctx context.Context, r outRow, claimedAt time.Time) error {
	sctx, cancel := context.WithTimeout(ctx, n.opt.SendTimeout)
	rec, err := n.sender.Send(sctx, r.message(n.opt.PublicURL))
	cancel()
	now := n.clock()
	switch {
	case err == nil:
		return n.markSent(ctx, r, rec, now)
	case errors.Is(err, ErrAmbiguous):
		n.metrics.attempts.WithLabelValues("unknown").Inc()
		return n.store.WithTx(ctx, func(tx *devices.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'unknown', next_attempt_at = $2, last_error = $3
				WHERE id = $1 AND status = 'sending'`, r.ID, claimedAt.Add(n.opt.ReconcileAfter), clipError(err))
			return err
		})
	case errors.Is(err, ErrTemporary) && r.Attempts < n.opt.MaxAttempts:
		n.metrics.attempts.WithLabelValues("retry").Inc()
		next := now.Add(backoff(n.opt.RetryBackoff, n.opt.MaxBackoff, r.Attempts))
		return n.store.WithTx(ctx, func(tx *devices.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'pending', next_attempt_at = $2, last_error = $3
				WHERE id = $1 AND status = 'sending'`, r.ID, next, clipError(err))
			return err
		})
	}
	n.metrics.attempts.WithLabelValues("failed").Inc()
	return n.finish(ctx, r, statusFailed, clipError(err))
}

// backoff is the delay before retry number attempt: base doubled each
// time, at most max.
func backoff(base, max time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

func clipError(err error) string { return clip(err.Error(), 500) }

// markSent records the provider's acceptance. A status callback may have
// come first and carried a later status: the rank keeps it.
func (n *Notifier) markSent(ctx context.Context, r outRow, rec Receipt, now time.Time) error {
	n.metrics.attempts.WithLabelValues("sent").Inc()
	rank := statusRank(rec.Status)
	var alertAt sql.NullTime
	err := n.store.WithTx(ctx, func(tx *devices.Tx) error {
		var sid sql.NullString
		if rec.SID != "" {
			sid = sql.NullString{String: rec.SID, Valid: true}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'sent', sid = COALESCE($2, sid), sent_at = $3, last_error = '',
			provider_status = CASE WHEN provider_rank < $5 THEN $4 ELSE provider_status END,
			provider_rank = CASE WHEN provider_rank < $5 THEN $5 ELSE provider_rank END
			WHERE id = $1`, r.ID, sid, now, rec.Status, rank); err != nil {
			return err
		}
		if r.Kind != KindOffer || !r.Ticket.Valid {
			return nil
		}
		err := tx.QueryRowContext(ctx, `UPDATE outreach SET first_sms_at = $2 WHERE ticket_id = $1 AND first_sms_at IS NULL
			RETURNING alert_at`, r.Ticket.Int64, now).Scan(&alertAt)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("record sent message: %w", err)
	}
	if alertAt.Valid {
		n.metrics.alertToSMS.Observe(now.Sub(alertAt.Time).Seconds())
	}
	return nil
}

// finish ends a message as failed or suppressed and shows it on its ticket.
func (n *Notifier) finish(ctx context.Context, r outRow, status, reason string) error {
	return n.store.WithTx(ctx, func(tx *devices.Tx) error {
		return finishTx(ctx, tx, r, status, reason)
	})
}

// finishTx is finish in tx.
func finishTx(ctx context.Context, tx *devices.Tx, r outRow, status, reason string) error {
	res, err := tx.ExecContext(ctx, `UPDATE outbox SET status = $2, last_error = $3 WHERE id = $1 AND status IN ('pending', 'sending', 'unknown')`,
		r.ID, status, reason)
	if err != nil {
		return err
	}
	if k, err := res.RowsAffected(); err != nil || k == 0 || !r.Ticket.Valid {
		return err
	}
	_, err = tx.Record(ctx, r.Ticket.Int64, devices.EventMessage, "notify", map[string]any{
		"direction": "out", "kind": r.Kind, "message_id": r.ID, "status": status, "error": reason})
	return err
}

// deferTx moves a pending message's next attempt to until, in tx.
func deferTx(ctx context.Context, tx *devices.Tx, id int64, until time.Time, why string) error {
	_, err := tx.ExecContext(ctx, `UPDATE outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1 AND status = 'pending'`,
		id, until.UTC(), "deferred: "+why)
	return err
}

// capped reports whether the customer had DailyCap proactive messages in
// the last 24 hours, and if so when the oldest of them leaves the window.
// It reads in tx, under the customer's lock, so that claims committed by
// other notifiers count.
func (n *Notifier) capped(ctx context.Context, tx *devices.Tx, customer string, now time.Time) (time.Time, bool, error) {
	// COALESCE over timestamps loses their type on SQLite: pick in Go.
	rows, err := tx.QueryContext(ctx, `SELECT sent_at, claimed_at FROM outbox
		WHERE customer_id = $1 AND kind IN ($2, $3, $4, $5, $6) AND status IN ('sent', 'sending', 'unknown')
		AND (sent_at > $7 OR (sent_at IS NULL AND claimed_at > $7))`, customer,
		KindOffer, KindOfferReminder, KindVisitReminder, KindSurvey, KindDispatch, now.Add(-24*time.Hour))
	if err != nil {
		return time.Time{}, false, fmt.Errorf("count today's messages: %w", err)
	}
	defer rows.Close()
	var times []time.Time
	for rows.Next() {
		var sent, claimed sql.NullTime
		if err := rows.Scan(&sent, &claimed); err != nil {
			return time.Time{}, false, fmt.Errorf("count today's messages: %w", err)
		}
		if sent.Valid {
			times = append(times, sent.Time)
		} else {
			times = append(times, claimed.Time)
		}
	}
	if err := rows.Err(); err != nil {
		return time.Time{}, false, err
	}
	slices.SortFunc(times, time.Time.Compare)
	if len(times) < n.opt.DailyCap {
		return time.Time{}, false, nil
	}
	return times[len(times)-n.opt.DailyCap].Add(24 * time.Hour), true, nil
}

// quietUntil reports whether instant now falls in the quiet hours q in loc,
// and when they end.
func quietUntil(q devices.QuietHours, now time.Time, loc *time.Location) (time.Time, bool) {
	l := now.In(loc)
	if !q.Contains(devices.Clock(l.Hour()*60 + l.Minute())) {
		return time.Time{}, false
	}
	end := time.Date(l.Year(), l.Month(), l.Day(), 0, int(q.End), 0, 0, loc)
	if !end.After(l) {
		end = time.Date(l.Year(), l.Month(), l.Day()+1, 0, int(q.End), 0, 0, loc)
	}
	return end, true
}

// reconcile settles a message whose last attempt had an unknown outcome.
// A provider that can list its messages is asked: found, the message is
// sent; not found once ReconcileAfter has passed since the attempt, it is
// sent again. A provider that cannot be asked gets no second attempt: the
// message fails and its ticket says so, because a duplicate text is worse
// than a dispatcher's follow-up.
func (n *Notifier) reconcile(ctx context.Context, r outRow, now time.Time) error {
	f, ok := n.sender.(Finder)
	if !ok {
		return n.finish(ctx, r, statusFailed, "delivery outcome unknown: not sent again to avoid a duplicate")
	}
	// Take the message for the time of one lookup, so that another
	// notifier does not settle it at the same time; if this process dies,
	// the lease runs out and another takes it up.
	var leased bool
	err := n.store.WithTx(ctx, func(tx *devices.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET next_attempt_at = $2 WHERE id = $1 AND status = 'unknown' AND next_attempt_at <= $3`,
			r.ID, now.Add(2*n.opt.SendTimeout), now)
		if err != nil {
			return err
		}
		k, err := res.RowsAffected()
		leased = k == 1
		return err
	})
	if err != nil || !leased {
		return err
	}
	since := r.ClaimedAt.Time.Add(-5 * time.Minute)
	sctx, cancel := context.WithTimeout(ctx, n.opt.SendTimeout)
	rec, found, err := f.Find(sctx, r.message(n.opt.PublicURL), since)
	cancel()
	switch {
	case err != nil:
		return n.store.WithTx(ctx, func(tx *devices.Tx) error {
			_, err2 := tx.ExecContext(ctx, `UPDATE outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1 AND status = 'unknown'`,
				r.ID, now.Add(n.opt.ReconcileAfter), "reconcile: "+clipError(err))
			return err2
		})
	case found:
		n.metrics.reconciled.WithLabelValues("found").Inc()
		return n.markSent(ctx, r, rec, now)
	case r.ClaimedAt.Valid && now.Before(r.ClaimedAt.Time.Add(n.opt.ReconcileAfter)):
		return n.deferUnknown(ctx, r.ID, r.ClaimedAt.Time.Add(n.opt.ReconcileAfter))
	}
	resend := false
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'pending', next_attempt_at = $2 WHERE id = $1 AND status = 'unknown'`, r.ID, now)
		if err != nil {
			return err
		}
		k, err := res.RowsAffected()
		resend = k == 1
		return err
	})
	if err != nil || !resend {
		return err
	}
	n.metrics.reconciled.WithLabelValues("resent").Inc()
	r.Status = statusPending
	return n.attempt(ctx, r)
}

func (n *Notifier) deferUnknown(ctx context.Context, id int64, until time.Time) error {
	return n.store.WithTx(ctx, func(tx *devices.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE outbox SET next_attempt_at = $2 WHERE id = $1 AND status = 'unknown'`, id, until.UTC())
		return err
	})
}

// statusRank orders the provider's message statuses so that a late or
// repeated callback never moves a message backwards. Final statuses share
// the top rank: the first one reported stands.
func statusRank(s string) int {
	switch s {
	case "accepted", "scheduled":
		return 1
	case "queued":
		return 2
	case "sending":
		return 3
	case "sent":
		return 4
	case "delivered", "undelivered", "failed", "canceled", "read":
		return 5
	}
	return 0
}
