package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proactivehq/proactive"
)

// Message is one outgoing message as a Sender gets it.
type Message struct {
	// ID is the outbox row: stable across attempts, the message's
	// idempotency key on our side.
	ID int64
	// Channel is the message's channel (sms when empty); To its address
	// there: a phone number in E.164 form for sms and whatsapp (without the
	// whatsapp: prefix), an email address for email.
	Channel proactive.Channel
	To      string
	Body    string
	Kind    string
	// Subject, Language and Unsubscribe are set on emails: the subject,
	// the customer's language (a BCP 47 tag) and the customer's
	// unsubscribe link (empty without a public URL).
	Subject     string
	Language    string
	Unsubscribe string
	// Stage is the conversation's stage when the message goes out (offer,
	// scheduled, survey, done), empty outside a conversation: what the
	// customer may answer next.
	Stage string
	// StatusCallback is the URL the provider should report delivery
	// statuses to, empty when the notifier has no public URL. It carries
	// the message's ID, so a status can be matched even when the provider's
	// answer to the send was lost.
	StatusCallback string
}

// Receipt is the provider's acceptance of a message.
type Receipt struct {
	// SID is the provider's id of the message.
	SID string
	// Status is the provider's first status, such as queued.
	Status string
}

// Sender hands messages to an SMS provider.
//
// Send makes one attempt and does not retry: the outbox owns retries. Its
// error says whether another attempt can help: wrap ErrTemporary when the
// provider certainly did not take the message (429, 5xx, a connection that
// never carried the request) and ErrAmbiguous when it may have (a timeout
// or a broken connection after the request was written). Any other error
// is permanent. Send must return within the time the notifier allows
// (Options.SendTimeout); it may be called concurrently for different
// customers.
type Sender interface {
	Send(ctx context.Context, m Message) (Receipt, error)
}

// Finder is implemented by a Sender whose provider can list the messages it
// took. After an ambiguous attempt the notifier asks it whether m exists
// (to m.To, with m.Body, created at or after since) before sending again,
// so a customer is not texted twice.
type Finder interface {
	Find(ctx context.Context, m Message, since time.Time) (Receipt, bool, error)
}

// SenderFunc adapts a function to a Sender.
type SenderFunc func(ctx context.Context, m Message) (Receipt, error)

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, m Message) (Receipt, error) { return f(ctx, m) }

// ErrTemporary marks a failed attempt that did not reach the customer and
// may succeed later.
var ErrTemporary = errors.New("temporary delivery failure")

// ErrAmbiguous marks an attempt whose outcome is unknown: the provider may
// have taken the message.
var ErrAmbiguous = errors.New("delivery outcome unknown")

// ErrOptedOut marks a message the provider refused because the recipient
// opted out at the carrier or with the provider (Twilio's error 21610): the
// notifier records the opt-out and sends nothing more.
var ErrOptedOut = errors.New("recipient opted out")

// ConsoleSender prints each message instead of sending it, for a platform
// without SMS provider settings. It is safe for concurrent use.
type ConsoleSender struct {
	mu  sync.Mutex
	w   io.Writer
	seq atomic.Int64
}

// NewConsoleSender prints to w, os.Stdout when nil.
func NewConsoleSender(w io.Writer) *ConsoleSender {
	if w == nil {
		w = os.Stdout
	}
	return &ConsoleSender{w: w}
}

// Send prints m with what the customer may reply, and accepts it.
func (c *ConsoleSender) Send(_ context.Context, m Message) (Receipt, error) {
	sid := fmt.Sprintf("CONSOLE%06d", c.seq.Add(1))
	hint := ReplyHint(m)
	c.mu.Lock()
	defer c.mu.Unlock()
	// The last line shows how to play the customer's phone from a shell.
	var err error
	switch m.Channel.OrSMS() {
	case ChannelEmail:
		_, err = fmt.Fprintf(c.w, "── email to %s (%s, message %d, %s) ──\n  Subject: %s\n%s\n──\n", m.To, m.Kind, m.ID, sid, m.Subject, indent(m.Body))
	default:
		name, flag := "SMS", ""
		if m.Channel == ChannelWhatsApp {
			name, flag = "WhatsApp", "--whatsapp "
		}
		_, err = fmt.Fprintf(c.w, "── %s to %s (%s, message %d, %s) ──\n%s\n── the customer may reply %s: proactive sms reply %s--from %s TEXT ──\n",
			name, m.To, m.Kind, m.ID, sid, indent(m.Body), hint, flag, m.To)
	}
	if err != nil {
		return Receipt{}, fmt.Errorf("print message: %w", err)
	}
	return Receipt{SID: sid, Status: "sent"}, nil
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

// ReplyHint says what the customer may answer to m, from the
// conversation's stage as m goes out rather than from m's kind alone: a
// HELP answer during an offer still invites a slot number.
func ReplyHint(m Message) string {
	if m.Kind == KindOptOut {
		return "START to get messages again"
	}
	switch m.Stage {
	case stageOffer:
		return "a slot number to book, CALL to be called, NO to decline (or HELP, STOP)"
	case stageScheduled:
		// Not CANCEL: carriers take it as STOP.
		return "another slot number of the offer to move the visit, CALL to change or cancel it (or HELP, STOP)"
	case stageSurvey:
		return "1 to 5 to rate the visit (or HELP, STOP)"
	case stageNPS:
		return "0 to 10: how likely they are to recommend us (or HELP, STOP)"
	case stageCES:
		return "1 to 5: how easy the fix was (or HELP, STOP)"
	}
	return "CALL to be called back, HELP or STOP"
}
