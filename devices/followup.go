package devices

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// RaiseFollowUp flags a ticket with a customer's request that needs a
// person, for reason (a proactive.FollowUp* reason), and records it on the
// timeline. A ticket already flagged keeps its first reason and since: the
// task is the same, and the timeline gets the new request. ENotFound for no
// such ticket.
func (tx *Tx) RaiseFollowUp(ctx context.Context, ticket int64, reason, actor string, at time.Time) error {
	if _, err := tx.tx.ExecContext(ctx, `UPDATE tickets SET follow_up_reason = $2, follow_up_since = $3, updated_at = $3
		WHERE id = $1 AND follow_up_reason = ''`, ticket, reason, dbTime(at)); err != nil {
		return fmt.Errorf("raise follow-up: %w", err)
	}
	if _, err := tx.record(ctx, ticket, proactive.TicketEventFollowUp, actor,
		map[string]any{"reason": reason, "note": proactive.FollowUpNotes[reason]}); err != nil {
		return err
	}
	if reason != proactive.FollowUpCall {
		return nil
	}
	// On the ticket's order: a CRM sees the call request after the offer.
	ev := proactive.CustomerEvent{TicketID: ticket, Reason: reason}
	err := tx.tx.QueryRowContext(ctx, `SELECT t.device_id, COALESCE(o.customer_id, '') FROM tickets t
		LEFT JOIN outreach o ON o.ticket_id = t.id WHERE t.id = $1`, ticket).Scan(&ev.DeviceID, &ev.CustomerID)
	if err != nil {
		return fmt.Errorf("raise follow-up: %w", err)
	}
	return tx.emit(ctx, proactive.EventCallbackRequested, ticketKey(ticket), ev)
}

// HandleFollowUp marks a ticket's follow-up handled by actor, with an
// optional note, on the timeline, and returns the ticket. ENotFound for no
// such ticket, EConflict for a ticket without a follow-up (handled by
// someone else meanwhile, say).
func (c *conn) HandleFollowUp(ctx context.Context, ticket int64, actor, note string) (proactive.Ticket, error) {
	v := newValidator("follow-up")
	actor, note = strings.TrimSpace(actor), strings.TrimSpace(note)
	v.text("actor", actor, 100, true)
	v.text("note", note, maxComment, false)
	if err := v.err(); err != nil {
		return proactive.Ticket{}, err
	}
	err := c.inTx(ctx, func(tx *Tx) error {
		t, err := tx.LockTicket(ctx, ticket)
		if err != nil {
			return err
		}
		if t.FollowUp == nil {
			return proactive.Errorf(proactive.EConflict, "ticket %d has no follow-up to handle", ticket)
		}
		if _, err := tx.tx.ExecContext(ctx, `UPDATE tickets SET follow_up_reason = '', follow_up_since = NULL, updated_at = $2
			WHERE id = $1`, ticket, dbTime(tx.s.clock())); err != nil {
			return fmt.Errorf("handle follow-up: %w", err)
		}
		body := map[string]any{"handled": t.FollowUp.Reason, "since": t.FollowUp.Since}
		if note != "" {
			body["note"] = note
		}
		_, err = tx.record(ctx, ticket, proactive.TicketEventFollowUp, actor, body)
		return err
	})
	if err != nil {
		return proactive.Ticket{}, wrapOp("handle follow-up", err)
	}
	return c.GetTicket(ctx, ticket)
}

// Now is the store's clock, for a change written in tx that has no time of
// its own.
func (tx *Tx) Now() time.Time { return tx.s.clock() }
