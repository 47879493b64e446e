package notify

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// The channels a message goes on: the customer's preferred one, or the one
// a reply came in on.
const (
	ChannelSMS      = proactive.ChannelSMS
	ChannelWhatsApp = proactive.ChannelWhatsApp
	ChannelEmail    = proactive.ChannelEmail
)

// WhatsAppPrefix starts a WhatsApp address on the Twilio Messages API, in
// To and From alike: whatsapp:+14155550123.
const WhatsAppPrefix = "whatsapp:"

// UnsubscribePath is where an email's unsubscribe link points, under the
// public URL, followed by the customer's token: GET shows a page with a
// button, POST (the button, or a mail client's one-click unsubscribe, RFC
// 8058) withdraws the customer's email consent.
const UnsubscribePath = "/email/unsubscribe/"

// ErrCannotFind is what a Finder answers for a message its provider cannot
// be asked about (an email): the outbox then does not send it again.
var ErrCannotFind = errors.New("the provider cannot tell whether it took the message")

// Channels is a Sender that hands each message to the Sender of its
// channel (sms when the message names none). A message on a channel
// without one fails permanently. It is a Finder: messages on a channel
// whose Sender is no Finder get ErrCannotFind.
type Channels map[proactive.Channel]Sender

// Send hands m to its channel's Sender.
func (c Channels) Send(ctx context.Context, m Message) (Receipt, error) {
	s, ok := c[m.Channel.OrSMS()]
	if !ok {
		return Receipt{}, fmt.Errorf("no %s provider is configured", m.Channel.OrSMS())
	}
	return s.Send(ctx, m)
}

// Find asks m's channel's Sender, when it is a Finder.
func (c Channels) Find(ctx context.Context, m Message, since time.Time) (Receipt, bool, error) {
	if f, ok := c[m.Channel.OrSMS()].(Finder); ok {
		return f.Find(ctx, m, since)
	}
	return Receipt{}, false, ErrCannotFind
}

// channel is the channel p's messages go on: the one the conversation is
// held on (a reply's), else the customer's preferred one.
func (p party) channel() proactive.Channel {
	if p.Channel != "" {
		return p.Channel
	}
	return p.Customer.PreferredChannel.OrSMS()
}

// reachable reports whether p's messages may go out on their channel.
func (p party) reachable() bool { return p.Customer.ID != "" && p.Customer.Consents(p.channel()) }

// parseFrom splits an inbound message's sender into its channel and phone
// number: whatsapp:+E164 is WhatsApp, anything else SMS.
func parseFrom(from string) (proactive.Channel, string) {
	if rest, ok := strings.CutPrefix(from, WhatsAppPrefix); ok {
		return ChannelWhatsApp, rest
	}
	return ChannelSMS, from
}

// keywordMethod is how a keyword sent on ch is recorded in the consent
// trail.
func keywordMethod(ch proactive.Channel) proactive.ConsentMethod {
	if ch == ChannelWhatsApp {
		return proactive.ConsentWhatsApp
	}
	return proactive.ConsentSMS
}

// emailSubjects are the subjects of emails by language and kind; a kind not
// listed gets "" (the default).
var emailSubjects = map[string]map[string]string{
	"en": {
		"":                 "A message about your {{.Product}}",
		KindOffer:          "Your {{.Product}} may need a repair: choose a visit",
		KindOfferReminder:  "Reminder: choose a visit for your {{.Product}}",
		KindReoffer:        "New visit times for your {{.Product}}",
		KindConfirm:        "Visit booked for your {{.Product}}",
		KindVisitReminder:  "Tomorrow: a technician visits your {{.Product}}",
		KindSurvey:         "How was the visit to your {{.Product}}?",
		KindDeclined:       "No visit planned for your {{.Product}}",
		KindDeclinedUrgent: "No visit planned for your {{.Product}}",
	},
	"fr": {
		"":                 "Un message au sujet de votre {{.Product}}",
		KindOffer:          "Votre {{.Product}} risque une panne : choisissez une visite",
		KindOfferReminder:  "Rappel : choisissez une visite pour votre {{.Product}}",
		KindReoffer:        "Nouveaux créneaux pour votre {{.Product}}",
		KindConfirm:        "Visite réservée pour votre {{.Product}}",
		KindVisitReminder:  "Demain : un technicien passe pour votre {{.Product}}",
		KindSurvey:         "Comment s'est passée la visite pour votre {{.Product}} ?",
		KindDeclined:       "Aucune visite prévue pour votre {{.Product}}",
		KindDeclinedUrgent: "Aucune visite prévue pour votre {{.Product}}",
	},
}

// emailAnswer says, under an email's text, how to answer it: emails are
// not read, so by text message (the reply keywords work there as in an
// SMS) or by phone.
var emailAnswer = map[string][2]string{
	// [0] with a number to text, [1] without.
	"en": {"This email cannot be answered: text your reply to %s from %s, or %s.", "This email cannot be answered: %[3]s."},
	"fr": {"Cet e-mail ne reçoit pas de réponse : envoyez la vôtre par SMS au %s depuis le %s, ou %s.", "Cet e-mail ne reçoit pas de réponse : %[3]s."},
}

// emailUnsubscribe is the last line of an email.
var emailUnsubscribe = map[string]string{
	"en": "To stop these emails: %s",
	"fr": "Pour ne plus recevoir ces e-mails : %s",
}

// emailParts are the subject and the text of an email of kind to c, whose
// message text is body; unsubscribe is the link of c's unsubscribe page.
func (n *Notifier) emailParts(c proactive.Customer, product, kind, body, unsubscribe string) (subject, text string) {
	lang := baseLanguage(c.Language)
	if _, ok := emailSubjects[lang]; !ok {
		lang = "en"
	}
	s := emailSubjects[lang][kind]
	if s == "" {
		s = emailSubjects[lang][""]
	}
	if product == "" {
		product = "device"
		if lang == "fr" {
			product = "appareil"
		}
	}
	subject = n.opt.Brand + ": " + strings.ReplaceAll(s, "{{.Product}}", oneLine(product))
	contact := n.opt.HelpContact
	var answer string
	if n.opt.ReplyNumber != "" {
		answer = fmt.Sprintf(emailAnswer[lang][0], n.opt.ReplyNumber, c.Phone, contact)
	} else {
		answer = fmt.Sprintf(emailAnswer[lang][1], "", "", contact)
	}
	text = body + "\n\n" + answer
	if unsubscribe != "" {
		text += "\n\n" + fmt.Sprintf(emailUnsubscribe[lang], unsubscribe)
	}
	return subject, text
}

// prepareEmail fills in what an email needs besides its text, read at send
// time: its subject, its footer in the customer's language and the
// customer's unsubscribe link (made on their first email).
func (n *Notifier) prepareEmail(ctx context.Context, r outRow, m *Message) error {
	c, err := n.store.GetCustomer(ctx, r.Customer)
	if err != nil {
		return err
	}
	var product string
	if r.Ticket > 0 {
		if p, err := n.partyOfTicket(ctx, r.Ticket); err == nil {
			product = p.data().Product
		}
	}
	if n.opt.PublicURL != "" {
		tok, err := n.store.UnsubscribeToken(ctx, r.Customer)
		if err != nil {
			return err
		}
		m.Unsubscribe = n.opt.PublicURL + UnsubscribePath + tok
	}
	m.Subject, m.Body = n.emailParts(c, product, r.Kind, r.Body, m.Unsubscribe)
	m.Language = c.Language
	return nil
}

// Unsubscribe withdraws the email consent of the customer whose
// unsubscribe link carries token, and suppresses their pending emails.
// ENotFound for an unknown token. Repeating it changes nothing.
func (n *Notifier) Unsubscribe(ctx context.Context, token string) (proactive.Customer, error) {
	c, err := n.store.CustomerByUnsubscribeToken(ctx, token)
	if err != nil {
		return c, err
	}
	if !c.EmailConsent && !c.EmailConsentAt.IsZero() {
		return c, nil // already out
	}
	now := n.clock()
	err = n.store.WithTx(ctx, func(tx *devices.Tx) error {
		_, err := tx.Apply(ctx, devices.Change{At: now, Customer: c.ID,
			Consent: &proactive.ConsentEvent{Channel: ChannelEmail, Granted: false, Method: proactive.ConsentEmailLink,
				Actor: "customer", Note: "the unsubscribe link of an email"},
			Suppress: "customer unsubscribed from emails", SuppressOn: ChannelEmail})
		return err
	})
	if err != nil {
		return c, wrap("unsubscribe", err)
	}
	n.metrics.optOuts.WithLabelValues(string(ChannelEmail)).Inc()
	c.EmailConsent = false
	return c, nil
}

// UnsubscribeHandler serves UnsubscribePath: GET shows a page with one
// button, so that a link checker fetching the link unsubscribes nobody;
// POST unsubscribes, which is also what a mail client's one-click
// List-Unsubscribe does. An unknown token gets 404 and a page that names
// nobody.
func (n *Notifier) UnsubscribeHandler() http.Handler {
	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, status int, text, form string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`+
			`<title>%[1]s emails</title><main><h1>%[1]s emails</h1><p>%[2]s</p>%[3]s</main></html>`,
			html.EscapeString(n.opt.Brand), html.EscapeString(text), form)
	}
	mux.HandleFunc("GET "+UnsubscribePath+"{token}", func(w http.ResponseWriter, r *http.Request) {
		if _, err := n.store.CustomerByUnsubscribeToken(r.Context(), r.PathValue("token")); err != nil {
			page(w, http.StatusNotFound, "This link is not valid.", "")
			return
		}
		page(w, http.StatusOK, "Stop receiving our service emails? Text messages are not affected.",
			`<form method="post"><button type="submit">Unsubscribe</button></form>`)
	})
	mux.HandleFunc("POST "+UnsubscribePath+"{token}", func(w http.ResponseWriter, r *http.Request) {
		_, err := n.Unsubscribe(r.Context(), r.PathValue("token"))
		switch {
		case proactive.ErrorCode(err) == proactive.ENotFound:
			page(w, http.StatusNotFound, "This link is not valid.", "")
		case err != nil:
			n.log.Error("unsubscribe", "err", err)
			page(w, http.StatusInternalServerError, "Something went wrong: please try again later.", "")
		default:
			page(w, http.StatusOK, "You are unsubscribed: you will get no more emails from us.", "")
		}
	})
	return mux
}

// keywordNote starts the consent trail's note of a keyword sent on ch.
func keywordNote(ch proactive.Channel) string {
	if ch == ChannelWhatsApp {
		return "WhatsApp keyword "
	}
	return "SMS keyword "
}

// tagChannel puts ch on the inbound entries c records, so that the
// timeline shows where each message came from.
func tagChannel(c *devices.Change, ch proactive.Channel) {
	for ; c != nil; c = c.Otherwise {
		for _, e := range c.Entries {
			if e.Body["direction"] == "in" {
				e.Body["channel"] = string(ch)
			}
		}
	}
}
