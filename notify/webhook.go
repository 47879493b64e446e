package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	twclient "github.com/twilio/twilio-go/client"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// The webhook paths, under the public URL.
const (
	SMSPath    = "/webhooks/twilio/sms"
	StatusPath = "/webhooks/twilio/status"
)

// maxWebhookBody bounds a webhook's form; Twilio's are a few KiB.
const maxWebhookBody = 64 << 10

const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// Webhooks returns the handler of SMSPath (inbound messages) and StatusPath
// (delivery statuses). Both check X-Twilio-Signature against PublicURL and
// the request's path and query, over the raw body, before parsing
// anything, and answer 403 when it does not validate. Replies to inbound
// messages go through the outbox; the TwiML answer is empty.
func (n *Notifier) Webhooks() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+SMSPath, n.signed(n.serveSMS))
	mux.HandleFunc("POST "+StatusPath, n.signed(n.serveStatus))
	return mux
}

// signed reads the body and checks its signature before calling next with
// the parsed form.
func (n *Notifier) signed(next func(w http.ResponseWriter, r *http.Request, form url.Values)) http.HandlerFunc {
	validator := twclient.NewRequestValidator(n.opt.TwilioAuthToken)
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
		if err != nil {
			http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
			return
		}
		sig := r.Header.Get("X-Twilio-Signature")
		if n.opt.TwilioAuthToken == "" || n.opt.PublicURL == "" || sig == "" ||
			!validator.ValidateBody(n.opt.PublicURL+r.URL.RequestURI(), body, sig) {
			n.metrics.webhookRejected.Inc()
			http.Error(w, "invalid signature", http.StatusForbidden)
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			http.Error(w, "malformed form", http.StatusBadRequest)
			return
		}
		next(w, r, form)
	}
}

func writeTwiML(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = io.WriteString(w, emptyTwiML)
}

func (n *Notifier) serveSMS(w http.ResponseWriter, r *http.Request, form url.Values) {
	err := n.Inbound(r.Context(), form.Get("MessageSid"), form.Get("From"), form.Get("Body"))
	if err != nil && proactive.ErrorCode(err) == proactive.EInternal {
		// Twilio retries on 5xx; Inbound forgot the SID of a message it
		// failed to handle, so the retry is handled, not skipped.
		n.log.Error("handle inbound SMS", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeTwiML(w)
}

func (n *Notifier) serveStatus(w http.ResponseWriter, r *http.Request, form url.Values) {
	var id int64
	if m := r.URL.Query().Get("m"); m != "" {
		id, _ = strconv.ParseInt(m, 10, 64)
	}
	err := n.Status(r.Context(), id, form.Get("MessageSid"), form.Get("MessageStatus"), form.Get("ErrorCode"))
	if err != nil {
		n.log.Error("handle status callback", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

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
		var ticket sql.NullInt64
		var kind string
		err := tx.QueryRowContext(ctx, `UPDATE outbox SET provider_status = $2, provider_rank = $3, error_code = $4
			WHERE sid = $1 AND provider_rank < $3 RETURNING ticket_id, kind`, sid, status, rank, errorCode).Scan(&ticket, &kind)
		if errors.Is(err, sql.ErrNoRows) && id > 0 {
			// The callback beat our record of the send, or the send's
			// answer was lost: the provider has the message, so adopt it.
			err = tx.QueryRowContext(ctx, `UPDATE outbox SET sid = $2, provider_status = $3, provider_rank = $4, error_code = $5,
				status = 'sent', sent_at = COALESCE(sent_at, claimed_at), last_error = ''
				WHERE id = $1 AND sid IS NULL AND provider_rank < $4 AND status IN ('sending', 'unknown', 'sent') RETURNING ticket_id, kind`,
				id, sid, status, rank, errorCode).Scan(&ticket, &kind)
		}
		if errors.Is(err, sql.ErrNoRows) {
			return nil // unknown SID, or a status no newer than the one kept
		} else if err != nil {
			return err
		}
		n.metrics.statuses.WithLabelValues(status).Inc()
		if (status == "failed" || status == "undelivered") && ticket.Valid {
			_, err = tx.Record(ctx, ticket.Int64, devices.EventMessage, "notify", map[string]any{
				"direction": "out", "kind": kind, "sid": sid, "status": status, "error_code": errorCode})
		}
		return err
	})
	return wrap("record delivery status", err)
}

// The keywords a reply may be, after trimming and upper-casing.
var stopWords = map[string]bool{"STOP": true, "STOPALL": true, "UNSUBSCRIBE": true, "CANCEL": true, "END": true, "QUIT": true}

// keyword normalises a reply: upper case, without surrounding spaces and
// punctuation.
func keyword(body string) string {
	return strings.ToUpper(strings.TrimFunc(body, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsPunct(r) }))
}

// replyKind is what an inbound text asks for.
type replyKind int

const (
	replyOther  replyKind = iota // anything else: clarified once
	replyStop                    // STOP and the carrier keywords: opt out
	replyStart                   // START, UNSTOP: opt in
	replyHelp                    // HELP, INFO
	replyNumber                  // a number: a slot, or a survey score
	replyCall                    // CALL: call me back
	replyNo                      // NO: decline the offer
)

// parsedReply is an inbound text as the conversation reads it.
type parsedReply struct {
	Kind    replyKind
	Keyword string // the normalised text (keyword)
	Number  int    // for replyNumber
}

// parseReply reads an inbound SMS body, which is outside input: any bytes,
// any length.
func parseReply(body string) parsedReply {
	kw := keyword(body)
	p := parsedReply{Keyword: kw}
	switch {
	case stopWords[kw]:
		p.Kind = replyStop
	case kw == "START" || kw == "UNSTOP":
		p.Kind = replyStart
	case kw == "HELP" || kw == "INFO":
		p.Kind = replyHelp
	case kw == "CALL":
		p.Kind = replyCall
	case kw == "NO":
		p.Kind = replyNo
	default:
		if num, err := strconv.Atoi(kw); err == nil {
			p.Kind, p.Number = replyNumber, num
		}
	}
	return p
}

// Inbound handles an SMS from a customer: the provider's message SID (a
// repeated SID is ignored), the sender's number and the text. Opt-out and
// opt-in keywords apply to the customer; the rest to the conversation of
// their latest open ticket. ENotFound for an unknown number.
func (n *Notifier) Inbound(ctx context.Context, sid, from, body string) error {
	c, err := n.store.CustomerByPhone(ctx, from)
	if err != nil {
		return err
	}
	conv, found, err := n.activeConversation(ctx, c.ID)
	if err != nil {
		return err
	}
	now := n.clock()
	fresh := false
	if sid != "" {
		var ticket sql.NullInt64
		if found {
			ticket = sql.NullInt64{Int64: conv.Ticket, Valid: true}
		}
		err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
			res, err := tx.ExecContext(ctx, `INSERT INTO inbound_messages (sid, from_phone, body, received_at, ticket_id) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (sid) DO NOTHING`, sid, c.Phone, clip(body, 1600), now, ticket)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			fresh = k == 1
			return err
		})
		if err != nil || !fresh {
			return wrap("record inbound message", err)
		}
	}
	err = n.handleInbound(ctx, c, conv, found, body)
	if err != nil && fresh && proactive.ErrorCode(err) == proactive.EInternal {
		// Forget the SID, so that the provider's retry (it retries on 5xx)
		// is handled afresh instead of being taken for a repeat and lost.
		dctx := context.WithoutCancel(ctx)
		if derr := n.store.WithTx(dctx, func(tx *devices.Tx) error {
			_, err := tx.ExecContext(dctx, `DELETE FROM inbound_messages WHERE sid = $1`, sid)
			return err
		}); derr != nil {
			err = errors.Join(err, fmt.Errorf("forget inbound message %s for its retry: %w", sid, derr))
		}
	}
	return err
}

// handleInbound acts on an inbound message once it is known to be new.
func (n *Notifier) handleInbound(ctx context.Context, c devices.Customer, conv conversation, found bool, body string) error {
	r := parseReply(body)
	switch r.Kind {
	case replyStop:
		n.metrics.inbound.WithLabelValues("stop").Inc()
		return n.optOut(ctx, c, body)
	case replyStart:
		n.metrics.inbound.WithLabelValues("start").Inc()
		return n.optIn(ctx, c, body)
	case replyHelp:
		n.metrics.inbound.WithLabelValues("help").Inc()
		return n.reply(ctx, c, 0, body, KindHelp, msgData{Contact: n.opt.HelpContact})
	}
	if !found {
		n.metrics.inbound.WithLabelValues("no_conversation").Inc()
		return nil
	}
	return n.converse(ctx, c, conv, body, r)
}

// activeConversation finds the customer's conversation awaiting a reply
// (an offer or a survey, the latest first), else their latest scheduled one.
func (n *Notifier) activeConversation(ctx context.Context, customer string) (conversation, bool, error) {
	var c conversation
	err := n.store.QueryRowContext(ctx, `SELECT ticket_id, customer_id, device_id, stage, offer_no, clarified FROM outreach
		WHERE customer_id = $1 AND stage IN ('offer', 'survey', 'scheduled')
		ORDER BY CASE WHEN stage = 'scheduled' THEN 1 ELSE 0 END, updated_at DESC, ticket_id DESC LIMIT 1`, customer).
		Scan(&c.Ticket, &c.Customer, &c.Device, &c.Stage, &c.Offer, &c.Clarified)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("find conversation: %w", err)
	}
	return c, true, nil
}

// optOut records the withdrawal of consent and suppresses what waits in
// the outbox. No reply: the number is opted out, and the carrier or Twilio
// confirms the opt-out itself.
func (n *Notifier) optOut(ctx context.Context, c devices.Customer, body string) error {
	if _, err := n.store.RecordConsent(ctx, c.ID, devices.ConsentEvent{Granted: false, Method: devices.ConsentSMS,
		Actor: "customer", Note: "SMS keyword " + keyword(body)}); err != nil {
		return err
	}
	return n.store.WithTx(ctx, func(tx *devices.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'suppressed', last_error = 'customer opted out'
			WHERE customer_id = $1 AND status = 'pending' AND kind <> $2`, c.ID, KindHelp); err != nil {
			return err
		}
		return n.recordInbound(ctx, tx, c.ID, body, "opt_out")
	})
}

func (n *Notifier) optIn(ctx context.Context, c devices.Customer, body string) error {
	if _, err := n.store.RecordConsent(ctx, c.ID, devices.ConsentEvent{Granted: true, Method: devices.ConsentSMS,
		Actor: "customer", Note: "SMS keyword START"}); err != nil {
		return err
	}
	c.SMSConsent = true
	return n.reply(ctx, c, 0, body, KindStart, msgData{})
}

// recordInbound puts an inbound message on the timelines of the customer's
// open conversations.
func (n *Notifier) recordInbound(ctx context.Context, tx *devices.Tx, customer, body, handled string) error {
	rows, err := tx.QueryContext(ctx, `SELECT ticket_id FROM outreach WHERE customer_id = $1 AND stage <> 'done'`, customer)
	if err != nil {
		return err
	}
	var tickets []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		tickets = append(tickets, id)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, id := range tickets {
		if _, err := tx.Record(ctx, id, devices.EventMessage, "customer", map[string]any{
			"direction": "in", "body": clip(body, 1600), "handled": handled}); err != nil {
			return err
		}
	}
	return nil
}

// reply records an inbound message (on ticket, or on every open
// conversation when ticket is 0) and queues the answer of kind.
func (n *Notifier) reply(ctx context.Context, c devices.Customer, ticket int64, body, kind string, d msgData) error {
	text, err := render(c.Language, kind, d)
	if err != nil {
		return err
	}
	p := party{Customer: c}
	if ticket > 0 {
		if p, err = n.partyOfTicket(ctx, ticket); err != nil {
			return err
		}
	}
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		if ticket > 0 {
			if _, err := tx.Record(ctx, ticket, devices.EventMessage, "customer", map[string]any{
				"direction": "in", "body": clip(body, 1600), "handled": kind}); err != nil {
				return err
			}
		} else if err := n.recordInbound(ctx, tx, c.ID, body, kind); err != nil {
			return err
		}
		_, err := n.enqueue(ctx, tx, p, ticket, kind, text, false)
		return err
	})
	if err == nil {
		n.notifyWake()
	}
	return err
}

// partyOfTicket loads who a ticket's messages go to.
func (n *Notifier) partyOfTicket(ctx context.Context, ticket int64) (party, error) {
	t, err := n.store.GetTicket(ctx, ticket)
	if err != nil {
		return party{}, err
	}
	return n.loadParty(ctx, t.Device, t.Component)
}

// converse handles a reply within a conversation.
func (n *Notifier) converse(ctx context.Context, c devices.Customer, conv conversation, body string, r parsedReply) error {
	switch {
	case conv.Stage == stageOffer && r.Kind == replyNumber:
		n.metrics.inbound.WithLabelValues("slot").Inc()
		return n.chooseSlot(ctx, conv, r.Number, body)
	case conv.Stage == stageSurvey && r.Kind == replyNumber && r.Number >= 1 && r.Number <= 5:
		n.metrics.inbound.WithLabelValues("survey").Inc()
		return n.answerSurvey(ctx, conv, r.Number, body)
	case r.Kind == replyCall:
		n.metrics.inbound.WithLabelValues("call").Inc()
		return n.reply(ctx, c, conv.Ticket, body, KindCallback, msgData{})
	case r.Kind == replyNo && conv.Stage == stageOffer:
		n.metrics.inbound.WithLabelValues("no").Inc()
		return n.decline(ctx, c, conv, body)
	}
	n.metrics.inbound.WithLabelValues("other").Inc()
	return n.clarify(ctx, conv, body)
}

// clarify answers an unexpected reply once per offer; later ones are only
// recorded.
func (n *Notifier) clarify(ctx context.Context, conv conversation, body string) error {
	p, err := n.partyOfTicket(ctx, conv.Ticket)
	if err != nil {
		return err
	}
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outreach SET clarified = TRUE WHERE ticket_id = $1 AND clarified = FALSE`, conv.Ticket)
		if err != nil {
			return err
		}
		first, err := res.RowsAffected()
		if err != nil {
			return err
		}
		handled := "ignored"
		if first == 1 {
			handled = KindClarify
		}
		if _, err := tx.Record(ctx, conv.Ticket, devices.EventMessage, "customer", map[string]any{
			"direction": "in", "body": clip(body, 1600), "handled": handled}); err != nil {
			return err
		}
		if first == 0 {
			return nil
		}
		d := p.data()
		if conv.Stage == stageOffer {
			slots, err := offerSlots(ctx, tx, conv.Ticket, conv.Offer)
			if err != nil {
				return err
			}
			d.Slots = n.slotLines(p, slots)
		}
		text, err := render(p.Customer.Language, KindClarify, d)
		if err != nil {
			return err
		}
		_, err = n.enqueue(ctx, tx, p, conv.Ticket, KindClarify, text, false)
		return err
	})
	if err == nil {
		n.notifyWake()
	}
	return err
}

func (n *Notifier) decline(ctx context.Context, c devices.Customer, conv conversation, body string) error {
	p, err := n.partyOfTicket(ctx, conv.Ticket)
	if err != nil {
		return err
	}
	now := n.clock()
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		if _, err := tx.Record(ctx, conv.Ticket, devices.EventMessage, "customer", map[string]any{
			"direction": "in", "body": clip(body, 1600), "handled": KindDeclined}); err != nil {
			return err
		}
		if _, err := tx.Transition(ctx, conv.Ticket, proactive.TicketDeclined, "customer", "declined by SMS"); err != nil {
			return err
		}
		if err := setStage(ctx, tx, conv.Ticket, stageDone, now); err != nil {
			return err
		}
		if err := releaseHolds(ctx, tx, conv.Ticket, now); err != nil {
			return err
		}
		if err := cancelJobs(ctx, tx, conv.Ticket, now, jobOfferReminder, jobOfferExpire); err != nil {
			return err
		}
		text, err := render(c.Language, KindDeclined, p.data())
		if err != nil {
			return err
		}
		_, err = n.enqueue(ctx, tx, p, conv.Ticket, KindDeclined, text, false)
		return err
	})
	if err == nil {
		n.notifyWake()
	}
	return err
}

// chooseSlot books the slot a customer replied with, or offers new slots
// when another booking won it.
func (n *Notifier) chooseSlot(ctx context.Context, conv conversation, num int, body string) error {
	t, err := n.store.GetTicket(ctx, conv.Ticket)
	if err != nil {
		return err
	}
	p, err := n.loadParty(ctx, t.Device, t.Component)
	if err != nil {
		return err
	}
	techs, err := n.technicians(ctx, t.Component, p.Device.Site.PostalCode)
	if err != nil {
		return err
	}
	invalid := false
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		slots, err := offerSlots(ctx, tx, conv.Ticket, conv.Offer)
		if err != nil {
			return err
		}
		if num < 1 || num > len(slots) {
			invalid = true
			return nil
		}
		if _, err := tx.Record(ctx, conv.Ticket, devices.EventMessage, "customer", map[string]any{
			"direction": "in", "body": clip(body, 1600), "handled": "slot " + strconv.Itoa(num)}); err != nil {
			return err
		}
		_, err = n.book(ctx, tx, t, p, slots[num-1], "customer")
		if errors.Is(err, errSlotTaken) {
			n.metrics.slotTaken.Inc()
			return n.reoffer(ctx, tx, t, p, techs)
		}
		return err
	})
	if err != nil {
		return err
	}
	if invalid {
		return n.clarify(ctx, conv, body)
	}
	n.notifyWake()
	return nil
}

// answerSurvey stores the satisfaction score and closes the ticket with
// the visit's outcome.
func (n *Notifier) answerSurvey(ctx context.Context, conv conversation, score int, body string) error {
	p, err := n.partyOfTicket(ctx, conv.Ticket)
	if err != nil {
		return err
	}
	now := n.clock()
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE outreach SET csat = $2, csat_at = $3 WHERE ticket_id = $1`, conv.Ticket, score, now); err != nil {
			return err
		}
		if _, err := tx.Record(ctx, conv.Ticket, devices.EventMessage, "customer", map[string]any{
			"direction": "in", "body": clip(body, 1600), "handled": "survey", "csat": score}); err != nil {
			return err
		}
		if err := n.endSurvey(ctx, tx, conv.Ticket, now); err != nil {
			return err
		}
		text, err := render(p.Customer.Language, KindThanks, p.data())
		if err != nil {
			return err
		}
		_, err = n.enqueue(ctx, tx, p, conv.Ticket, KindThanks, text, false)
		return err
	})
	if err == nil {
		n.notifyWake()
	}
	return err
}

// endSurvey closes a visited ticket with its visit's outcome.
func (n *Notifier) endSurvey(ctx context.Context, tx *devices.Tx, ticket int64, now time.Time) error {
	var outcome, notes sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT outcome, notes FROM appointments WHERE ticket_id = $1 AND status = 'done'
		ORDER BY done_at DESC LIMIT 1`, ticket).Scan(&outcome, &notes)
	if err != nil {
		return fmt.Errorf("read visit outcome: %w", err)
	}
	if err := setStage(ctx, tx, ticket, stageDone, now); err != nil {
		return err
	}
	if err := cancelJobs(ctx, tx, ticket, now, jobSurveyTimeout); err != nil {
		return err
	}
	_, err = tx.CloseTicket(ctx, ticket, devices.Outcome(outcome.String), notes.String, "notify")
	return err
}
