package notify

import (
	"context"
	"errors"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// The webhook paths, under the public URL: notify/twilio serves them, and
// status callbacks point to StatusPath.
const (
	SMSPath    = "/webhooks/twilio/sms"
	StatusPath = "/webhooks/twilio/status"
)

// WebhookRejected counts a webhook request refused for its signature;
// notify/twilio's handler calls it.
func (n *Notifier) WebhookRejected() { n.metrics.webhookRejected.Inc() }

// Status records a delivery status reported by the provider for the
// message with this SID (or, when the provider's answer to the send was
// lost, for outbox message id, which the callback URL carries). It is
// idempotent and monotonic: a repeated or late status never moves a message
// back. A failed or undelivered message is recorded on its ticket.
func (n *Notifier) Status(ctx context.Context, id int64, sid, status, errorCode string) error {
	rank := statusRank(status)
	if sid == "" || rank == 0 {
		return nil // nothing we track
	}
	err := n.store.WithTx(ctx, func(tx *devices.Tx) error {
		of, ok, err := tx.RecordProviderStatus(ctx, devices.ProviderStatus{ID: id, SID: sid, Status: status, Rank: rank,
			ErrorCode: errorCode})
		if err != nil || !ok {
			return err // !ok: unknown SID, or a status no newer than the one kept
		}
		n.metrics.statuses.WithLabelValues(status).Inc()
		if (status == "failed" || status == "undelivered") && of.Ticket > 0 {
			if _, err = tx.Record(ctx, of.Ticket, proactive.TicketEventMessage, "notify", map[string]any{
				"direction": "out", "kind": of.Kind, "sid": sid, "status": status, "error_code": errorCode}); err != nil {
				return err
			}
			if offerKind(of.Kind) {
				if err := tx.RaiseFollowUp(ctx, of.Ticket, proactive.FollowUpUndelivered, "notify", n.clock()); err != nil {
					return err
				}
			}
		}
		if errorCode == codeOptedOut && of.Customer != "" {
			return n.optedOutTx(ctx, tx, of.Customer, of.Channel, n.clock())
		}
		return nil
	})
	return wrap("record delivery status", err)
}

// codeOptedOut is the provider's error code for a recipient who opted out
// with the carrier or the provider (Twilio's 21610, "Attempt to send to
// unsubscribed recipient"), as status callbacks carry it.
const codeOptedOut = "21610"

// optedOutTx records in tx that the provider refused a message on channel
// ch because its customer opted out: consent to ch withdrawn, pending
// messages on ch suppressed, so that the platform agrees with the carrier.
func (n *Notifier) optedOutTx(ctx context.Context, tx *devices.Tx, customer string, ch proactive.Channel, now time.Time) error {
	ch = ch.OrSMS()
	_, err := tx.Apply(ctx, devices.Change{At: now, Customer: customer,
		Consent: &proactive.ConsentEvent{Channel: ch, Granted: false, Method: keywordMethod(ch), Actor: "carrier",
			Note: "the provider refused a message: the recipient opted out (error " + codeOptedOut + ")"},
		Suppress: "customer opted out at the carrier", SuppressOn: ch})
	if err == nil {
		n.metrics.optOuts.WithLabelValues(string(ch)).Inc()
	}
	return err
}

// Inbound handles an SMS from a customer: the provider's message SID (a
// repeated SID is ignored), the sender's number and the text. Opt-out and
// opt-in keywords apply to the customer; the rest to the conversation of
// their latest open ticket. ENotFound for an unknown number. The reply is
// decided from what was read (decideReply) and written in one
// transaction, the SID with it: when that fails the SID is not kept, so
// the provider's retry (it retries on 5xx) is handled afresh.
func (n *Notifier) Inbound(ctx context.Context, sid, from, body string) error {
	st, err := n.readReplyState(ctx, from)
	if err != nil {
		return err
	}
	d, err := n.decideReply(st, sid, body, n.clock())
	if err != nil {
		return err
	}
	tagChannel(&d.Change, st.Channel)
	var techs []proactive.Technician
	if d.Reoffer {
		// Calendars are read outside the transaction, which on SQLite
		// holds the write lock.
		if techs, err = n.technicians(ctx, st.Ticket.Component, st.Party.Device.Site.PostalCode); err != nil {
			return err
		}
	}
	repeat := false
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		res, err := tx.Apply(ctx, d.Change)
		repeat = res.Repeat
		if d.Reoffer && !repeat && (errors.Is(err, devices.ErrSlotTaken) || err == nil && d.Change.Book == nil) {
			n.metrics.slotTaken.Inc()
			return n.reoffer(ctx, tx, st.Ticket, st.Party, techs)
		}
		if d.Reschedule && !repeat && errors.Is(err, devices.ErrSlotTaken) {
			n.metrics.slotTaken.Inc()
			text, rerr := n.render(st.Customer.Language, "reschedule_taken", st.Party.data())
			if rerr != nil {
				return rerr
			}
			_, err = tx.Apply(ctx, devices.Change{At: d.Change.At, Ticket: st.Ticket.ID,
				Messages: []devices.NewMessage{outMessage(st.Party, st.Ticket.ID, KindReoffer, text, false, d.Change.At)}})
		}
		return err
	})
	if repeat {
		return nil
	}
	n.metrics.inbound.WithLabelValues(d.Metric).Inc()
	if d.Metric == "stop" {
		n.metrics.optOuts.WithLabelValues(string(st.Channel)).Inc()
	}
	if err != nil {
		return wrap("handle inbound message", err)
	}
	if d.Survey != "" {
		n.outcomes.answered(d.Survey, d.Score)
	}
	n.notifyWake()
	return nil
}

// readReplyState reads what a reply from phone number from is decided
// against: its sender and their conversations. ENotFound for an unknown
// number.
func (n *Notifier) readReplyState(ctx context.Context, from string) (replyState, error) {
	ch, phone := parseFrom(from)
	c, err := n.store.CustomerByPhone(ctx, phone)
	if err != nil {
		return replyState{}, err
	}
	st := replyState{Customer: c, Channel: ch}
	if st.Conversations, err = n.store.CustomerConversations(ctx, c.ID); err != nil {
		return st, err
	}
	if cc := st.Conversations; cc.Found || cc.EndedFound {
		id := cc.Active.Ticket
		if !cc.Found {
			id = cc.Ended.Ticket
		}
		if st.Ticket, err = n.store.GetTicket(ctx, id); err != nil {
			return st, err
		}
		if st.Party, err = n.loadParty(ctx, st.Ticket.Device, st.Ticket.Component); err != nil {
			return st, err
		}
		// The answers go where the customer wrote.
		st.Party.Channel = ch
	}
	if cc := st.Conversations; cc.Found && cc.Active.Stage == stageSurvey {
		if st.NPSAskedAt, err = n.store.LastSurveyAsked(ctx, c.ID, proactive.SurveyNPS); err != nil {
			return st, err
		}
	}
	return st, nil
}

// partyOfTicket loads who a ticket's messages go to.
func (n *Notifier) partyOfTicket(ctx context.Context, ticket int64) (party, error) {
	_, p, err := n.ticketParty(ctx, ticket)
	return p, err
}

// ticketParty reads a ticket and who its messages go to.
func (n *Notifier) ticketParty(ctx context.Context, ticket int64) (proactive.Ticket, party, error) {
	t, err := n.store.GetTicket(ctx, ticket)
	if err != nil {
		return t, party{}, err
	}
	p, err := n.loadParty(ctx, t.Device, t.Component)
	return t, p, err
}
