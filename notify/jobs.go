package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// runJobs runs the scheduled jobs due at the notifier's clock. A job is
// marked done in the transaction of its effects, so a crash either does
// both or neither.
func (n *Notifier) runJobs(ctx context.Context) error {
	now := n.clock()
	rows, err := n.store.QueryContext(ctx, `SELECT id, kind, ticket_id FROM jobs WHERE done_at IS NULL AND due_at <= $1
		ORDER BY due_at, id LIMIT 500`, now)
	if err != nil {
		return fmt.Errorf("read due jobs: %w", err)
	}
	type job struct {
		id     int64
		kind   string
		ticket int64
	}
	var due []job
	for rows.Next() {
		var j job
		if err := rows.Scan(&j.id, &j.kind, &j.ticket); err != nil {
			rows.Close()
			return fmt.Errorf("read due jobs: %w", err)
		}
		due = append(due, j)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("read due jobs: %w", err)
	}
	woke := false
	for _, j := range due {
		queued, err := n.runJob(ctx, j.id, j.kind, j.ticket)
		if err != nil {
			n.metrics.jobErrors.Inc()
			n.log.Error("run job", "job", j.kind, "ticket", j.ticket, "err", err)
			n.setAsideJob(ctx, j.id, err, now)
			continue
		}
		woke = woke || queued
	}
	if woke {
		n.notifyWake()
	}
	return nil
}

// jobRetry is how long a job that failed on the database waits before
// the next try: it then no longer holds its place at the head of the due
// jobs, which a run of failing jobs would otherwise fill.
const jobRetry = time.Minute

// setAsideJob deals with a job that failed: one that cannot succeed (its
// ticket or device is gone, or its data is invalid) is ended; one that
// failed on the database is tried again after jobRetry.
func (n *Notifier) setAsideJob(ctx context.Context, id int64, cause error, now time.Time) {
	query, arg := `UPDATE jobs SET due_at = $2 WHERE id = $1 AND done_at IS NULL`, now.Add(jobRetry)
	if code := proactive.ErrorCode(cause); code == proactive.ENotFound || code == proactive.EInvalid {
		query, arg = `UPDATE jobs SET done_at = $2 WHERE id = $1 AND done_at IS NULL`, now
	}
	if err := n.store.WithTx(ctx, func(tx *devices.Tx) error {
		_, err := tx.ExecContext(ctx, query, id, arg)
		return err
	}); err != nil {
		n.log.Error("set a failed job aside", "job_id", id, "err", err)
	}
}

// runJob runs one job, reporting whether it queued a message.
func (n *Notifier) runJob(ctx context.Context, id int64, kind string, ticket int64) (bool, error) {
	p, err := n.partyOfTicket(ctx, ticket)
	if err != nil {
		return false, err
	}
	now := n.clock()
	queued := false
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		if tx.Dialect() == devices.Postgres {
			// Another notifier running this job holds its row: leave it to
			// that one instead of waiting to find it done.
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM jobs WHERE id = $1 AND done_at IS NULL FOR UPDATE SKIP LOCKED`, id).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			} else if err != nil {
				return err
			}
		}
		// Marking the job done in the transaction of its effects is the
		// claim: of two notifiers, one updates the row.
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET done_at = $2 WHERE id = $1 AND done_at IS NULL`, id, now)
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil || k == 0 {
			return err // another notifier ran it
		}
		conv, err := readConversation(ctx, tx, ticket)
		if err != nil {
			return err
		}
		var status proactive.TicketStatus
		if err := tx.QueryRowContext(ctx, `SELECT status FROM tickets WHERE id = $1`, ticket).Scan(&status); err != nil {
			return err
		}
		switch kind {
		case jobOfferReminder:
			if conv.Stage != stageOffer || status != proactive.TicketOffered || !p.Customer.SMSConsent {
				return nil
			}
			slots, err := offerSlots(ctx, tx, ticket, conv.Offer)
			if err != nil {
				return err
			}
			// Only slots still ahead are worth a reminder; they keep the
			// numbers the offer gave them.
			slots = slices.DeleteFunc(slots, func(s Slot) bool { return s.Start.Before(now.Add(n.opt.SlotLead)) })
			if len(slots) == 0 {
				return nil
			}
			d := p.data()
			d.Slots = n.slotLines(p, slots)
			text, err := render(p.Customer.Language, KindOfferReminder, d)
			if err != nil {
				return err
			}
			_, err = n.enqueue(ctx, tx, p, ticket, KindOfferReminder, text, false)
			queued = err == nil
			return err
		case jobOfferExpire:
			if conv.Stage != stageOffer || status != proactive.TicketOffered {
				return nil
			}
			if _, err := tx.Transition(ctx, ticket, proactive.TicketExpired, "notify", "offer got no reply"); err != nil {
				return err
			}
			if err := releaseHolds(ctx, tx, ticket, now); err != nil {
				return err
			}
			return setStage(ctx, tx, ticket, stageDone, now)
		case jobVisitReminder:
			a, err := bookedAppointment(ctx, tx, ticket)
			if errors.Is(err, sql.ErrNoRows) || status != proactive.TicketScheduled || !p.Customer.SMSConsent {
				return nil
			} else if err != nil {
				return err
			}
			d := p.data()
			d.Visit = formatSlot(p.Customer.Language, a.Start, a.End, n.zone(p.Device.TimeZone))
			text, err := render(p.Customer.Language, KindVisitReminder, d)
			if err != nil {
				return err
			}
			_, err = n.enqueue(ctx, tx, p, ticket, KindVisitReminder, text, false)
			queued = err == nil
			return err
		case jobSurveyTimeout:
			if conv.Stage != stageSurvey {
				return nil
			}
			if _, err := tx.Record(ctx, ticket, devices.EventMessage, "notify", map[string]any{
				"survey": "no answer", "after": n.opt.SurveyTimeout.String()}); err != nil {
				return err
			}
			return n.endSurvey(ctx, tx, ticket, now)
		}
		return fmt.Errorf("unknown job kind %q", kind)
	})
	return queued, wrap("run "+kind, err)
}
