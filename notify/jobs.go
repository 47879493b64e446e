package notify

import (
	"context"
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
	due, err := n.store.JobsDue(ctx, now, 500)
	if err != nil {
		return err
	}
	woke := false
	for _, j := range due {
		queued, err := n.runJob(ctx, j.ID, j.Kind, j.Ticket)
		if err != nil {
			n.metrics.jobErrors.Inc()
			n.log.Error("run job", "job", j.Kind, "ticket_id", j.Ticket, "err", err)
			n.setAsideJob(ctx, j.ID, err, now)
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
	var err error
	if code := proactive.ErrorCode(cause); code == proactive.ENotFound || code == proactive.EInvalid {
		err = n.store.EndJob(ctx, id, now)
	} else {
		err = n.store.PostponeJob(ctx, id, now.Add(jobRetry))
	}
	if err != nil {
		n.log.Error("set a failed job aside", "job_id", id, "err", err)
	}
}

// runJob runs one job, reporting whether it queued a message.
func (n *Notifier) runJob(ctx context.Context, id int64, kind string, ticket int64) (bool, error) {
	if kind == jobGroupWait {
		return n.runGroupWait(ctx, id, ticket) // no conversation yet
	}
	p, err := n.partyOfTicket(ctx, ticket)
	if err != nil {
		return false, err
	}
	now := n.clock()
	queued := false
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		// Marking the job done in the transaction of its effects is the
		// claim: of two notifiers, one updates the row (on PostgreSQL, one
		// running it makes the other skip it rather than wait).
		if claimed, err := tx.ClaimJob(ctx, id, now); err != nil || !claimed {
			return err // or another notifier ran it
		}
		conv, err := readConversation(ctx, tx, ticket)
		if err != nil {
			return err
		}
		t, err := tx.GetTicket(ctx, ticket)
		if err != nil {
			return err
		}
		status := t.Status
		switch kind {
		case jobOfferReminder:
			if conv.Stage != stageOffer || status != proactive.TicketOffered || !p.reachable() {
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
			m, err := n.linkedMessage(p, ticket, KindOfferReminder, KindOfferReminder, d, false, now)
			if err != nil {
				return err
			}
			_, err = tx.Enqueue(ctx, m)
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
			if proactive.ErrorCode(err) == proactive.ENotFound || status != proactive.TicketScheduled || !p.reachable() {
				return nil
			} else if err != nil {
				return err
			}
			d := p.data()
			d.Visit = formatSlot(p.Customer.Language, a.Start, a.End, n.zone(p.Device.TimeZone))
			m, err := n.linkedMessage(p, ticket, KindVisitReminder, KindVisitReminder, d, false, now)
			if err != nil {
				return err
			}
			_, err = tx.Enqueue(ctx, m)
			queued = err == nil
			return err
		case jobSurveyTimeout:
			if conv.Stage == stageNPS || conv.Stage == stageCES {
				survey, _ := surveyStage(conv.Stage)
				return n.endQuestion(ctx, tx, ticket, survey, now)
			}
			if conv.Stage != stageSurvey {
				return nil
			}
			if _, err := tx.Record(ctx, ticket, proactive.TicketEventMessage, "notify", map[string]any{
				"survey": "no answer", "after": n.opt.SurveyTimeout.String()}); err != nil {
				return err
			}
			return n.endSurvey(ctx, tx, ticket, now)
		}
		return fmt.Errorf("unknown job kind %q", kind)
	})
	return queued, wrap("run "+kind, err)
}
