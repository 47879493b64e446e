package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/proactivehq/proactive"
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
type outRow = devices.OutboxMessage

// message is what the sender sends of r.
func message(r outRow, publicURL string) Message {
	m := Message{ID: r.ID, Channel: r.Channel.OrSMS(), To: r.To, Body: r.Body, Kind: r.Kind, Stage: r.Stage}
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
	due, err := n.store.OutboxDue(ctx, now, 1000)
	if err != nil {
		return err
	}
	var order []string
	byCustomer := map[string][]outRow{}
	for _, r := range due {
		if byCustomer[r.Customer] == nil {
			order = append(order, r.Customer)
		}
		byCustomer[r.Customer] = append(byCustomer[r.Customer], r)
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
	_, err := n.store.OutboxReclaim(ctx, now.Add(-2*n.opt.SendTimeout), now, "the process sending it stopped")
	return err
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
		claimed, suppressed bool
		deferred            string
	)
	err := n.store.WithTx(ctx, func(tx *devices.Tx) error {
		if err := tx.LockCustomerMessages(ctx, r.Customer); err != nil {
			return err
		}
		// Under the lock the row's status is current: another notifier may
		// have claimed, sent or suppressed it since it was read.
		status, next, err := tx.OutboxStatus(ctx, r.ID)
		if err != nil {
			return err
		}
		if status != statusPending || next.After(now) {
			return nil
		}
		// An earlier message of the customer, in flight or due, goes first
		// (another notifier has it); this one is left to a later pass.
		if earlier, err := tx.OutboxAhead(ctx, r.Customer, r.ID, now); err != nil || earlier > 0 {
			return err
		}
		// Consent is the message's channel's: an opt-out of one channel
		// never stops the others.
		consent, q, err := tx.CustomerPolicy(ctx, r.Customer, r.Channel)
		if err != nil {
			return err
		}
		if !consent && r.Kind != KindHelp && r.Kind != KindOptOut {
			suppressed = true
			return finishTx(ctx, tx, r, statusSuppressed, "customer has not consented to "+string(r.Channel.OrSMS())+" or opted out of it")
		}
		if proactiveKind(r.Kind) {
			if !r.Urgent {
				if until, quiet := quietUntil(q, now, n.zone(r.TimeZone)); quiet {
					deferred = "quiet_hours"
					if err := tx.OutboxDefer(ctx, r.ID, until, "quiet hours"); err != nil {
						return err
					}
					return holdOffer(ctx, tx, r, heldQuietHours, until, now)
				}
			}
			if until, capped, err := n.capped(ctx, tx, r.Customer, now); err != nil {
				return err
			} else if capped {
				deferred = "daily_cap"
				if err := tx.OutboxDefer(ctx, r.ID, until, "daily cap"); err != nil {
					return err
				}
				return holdOffer(ctx, tx, r, heldDailyCap, until, now)
			}
		}
		claimed, err = tx.OutboxClaim(ctx, r.ID, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("claim message: %w", err)
	}
	if deferred != "" {
		n.metrics.deferred.WithLabelValues(deferred).Inc()
		if r.Kind == KindOffer {
			n.metrics.held.WithLabelValues(deferred).Inc()
		}
	}
	if suppressed {
		n.metrics.channel(r.Channel, "suppressed")
	}
	if !claimed {
		return nil
	}
	r.Attempts++
	return n.send(ctx, r, now)
}

// send makes the attempt on a claimed message and records what came of it.
func (n *Notifier) send(ctx context.Context, r outRow, claimedAt time.Time) error {
	m := message(r, n.opt.PublicURL)
	var err error
	if m.Channel == ChannelEmail {
		// A failure to read what the email needs is one more attempt.
		if err = n.prepareEmail(ctx, r, &m); err != nil {
			err = fmt.Errorf("%w: prepare the email: %v", ErrTemporary, err)
		}
	}
	var rec Receipt
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, n.opt.SendTimeout)
		rec, err = n.sender.Send(sctx, m)
		cancel()
	}
	now := n.clock()
	switch {
	case err == nil:
		return n.markSent(ctx, r, rec, now)
	case errors.Is(err, ErrOptedOut):
		n.metrics.attempts.WithLabelValues("failed").Inc()
		n.metrics.channel(r.Channel, "failed")
		return n.store.WithTx(ctx, func(tx *devices.Tx) error {
			if err := finishTx(ctx, tx, r, statusFailed, clipError(err)); err != nil {
				return err
			}
			return n.optedOutTx(ctx, tx, r.Customer, r.Channel, now)
		})
	case errors.Is(err, ErrAmbiguous):
		n.metrics.attempts.WithLabelValues("unknown").Inc()
		n.metrics.channel(r.Channel, "unknown")
		return n.store.OutboxUnknown(ctx, r.ID, claimedAt.Add(n.opt.ReconcileAfter), clipError(err))
	case errors.Is(err, ErrTemporary) && r.Attempts < n.opt.MaxAttempts:
		n.metrics.attempts.WithLabelValues("retry").Inc()
		n.metrics.channel(r.Channel, "retry")
		// Step, not Delay: the next attempt is persisted, a schedule without
		// jitter.
		next := now.Add(proactive.Backoff{Base: n.opt.RetryBackoff, Max: n.opt.MaxBackoff}.Step(r.Attempts))
		return n.store.OutboxRetry(ctx, r.ID, next, clipError(err))
	}
	n.metrics.attempts.WithLabelValues("failed").Inc()
	n.metrics.channel(r.Channel, "failed")
	return n.finish(ctx, r, statusFailed, clipError(err))
}

func clipError(err error) string { return clip(err.Error(), 500) }

// markSent records the provider's acceptance. A status callback may have
// come first and carried a later status: the rank keeps it.
func (n *Notifier) markSent(ctx context.Context, r outRow, rec Receipt, now time.Time) error {
	n.metrics.attempts.WithLabelValues("sent").Inc()
	n.metrics.channel(r.Channel, "sent")
	receipt := devices.OutboxReceipt{SID: rec.SID, Status: rec.Status, Rank: statusRank(rec.Status), At: now}
	if r.Kind == KindOffer {
		receipt.FirstOf = r.Ticket
	}
	alertAt, err := n.store.OutboxSent(ctx, r.ID, receipt)
	if err != nil {
		return err
	}
	if !alertAt.IsZero() {
		n.metrics.alertToSMS.Observe(now.Sub(alertAt).Seconds())
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
	if ok, err := tx.OutboxFinish(ctx, r.ID, status, reason); err != nil || !ok || r.Ticket == 0 {
		return err
	}
	if _, err := tx.Record(ctx, r.Ticket, proactive.TicketEventMessage, "notify", map[string]any{
		"direction": "out", "kind": r.Kind, "message_id": r.ID, "status": status, "error": reason,
		"channel": string(r.Channel.OrSMS())}); err != nil {
		return err
	}
	if status == statusFailed && offerKind(r.Kind) {
		// The customer never saw the offer: a person calls instead of the
		// ticket waiting out its expiry.
		return tx.RaiseFollowUp(ctx, r.Ticket, proactive.FollowUpUndelivered, "notify", tx.Now())
	}
	return nil
}

// offerKind reports whether messages of kind k offer slots, so that their
// failure leaves the customer without a way to book.
func offerKind(k string) bool { return k == KindOffer || k == KindOfferReminder || k == KindReoffer }

// capped reports whether the customer had DailyCap proactive messages in
// the last 24 hours, and if so when the oldest of them leaves the window.
// It reads in tx, under the customer's lock, so that claims committed by
// other notifiers count.
func (n *Notifier) capped(ctx context.Context, tx *devices.Tx, customer string, now time.Time) (time.Time, bool, error) {
	times, err := tx.OutboxSentSince(ctx, customer,
		[]string{KindOffer, KindOfferReminder, KindVisitReminder, KindSurvey, KindDispatch}, now.Add(-24*time.Hour))
	if err != nil {
		return time.Time{}, false, err
	}
	if len(times) < n.opt.DailyCap {
		return time.Time{}, false, nil
	}
	return times[len(times)-n.opt.DailyCap].Add(24 * time.Hour), true, nil
}

// quietUntil reports whether instant now falls in the quiet hours q in loc,
// and when they end.
func quietUntil(q proactive.QuietHours, now time.Time, loc *time.Location) (time.Time, bool) {
	l := now.In(loc)
	if !q.Contains(proactive.Clock(l.Hour()*60 + l.Minute())) {
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
	notSentAgain := func() error {
		return n.finish(ctx, r, statusFailed, "delivery outcome unknown: not sent again to avoid a duplicate")
	}
	// Take the message for the time of one lookup, so that another
	// notifier does not settle it at the same time; if this process dies,
	// the lease runs out and another takes it up.
	leased, err := n.store.OutboxLease(ctx, r.ID, now, now.Add(2*n.opt.SendTimeout))
	if err != nil || !leased {
		return err
	}
	since := r.ClaimedAt.Add(-5 * time.Minute)
	sctx, cancel := context.WithTimeout(ctx, n.opt.SendTimeout)
	rec, found, err := f.Find(sctx, message(r, n.opt.PublicURL), since)
	cancel()
	switch {
	case errors.Is(err, ErrCannotFind):
		return notSentAgain()
	case err != nil:
		return n.store.OutboxDelayUnknown(ctx, r.ID, now.Add(n.opt.ReconcileAfter), "reconcile: "+clipError(err))
	case found:
		n.metrics.reconciled.WithLabelValues("found").Inc()
		return n.markSent(ctx, r, rec, now)
	case !r.ClaimedAt.IsZero() && now.Before(r.ClaimedAt.Add(n.opt.ReconcileAfter)):
		return n.store.OutboxDelayUnknown(ctx, r.ID, r.ClaimedAt.Add(n.opt.ReconcileAfter), "")
	}
	resend, err := n.store.OutboxResend(ctx, r.ID, now)
	if err != nil || !resend {
		return err
	}
	n.metrics.reconciled.WithLabelValues("resent").Inc()
	r.Status = statusPending
	return n.attempt(ctx, r)
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
