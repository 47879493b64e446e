package notify_test

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/email"
	"github.com/proactivehq/proactive/notify/twilio"
)

const (
	whatsappFrom  = "+15005550007"
	offerTemplate = "HX00000000000000000000000000000001"
)

// channelsEnv is env with every channel: SMS and WhatsApp on the fake
// Twilio (WhatsApp offers as a template), email on an in-process SMTP
// server.
type channelsEnv struct {
	*env
	smtp *testenv.SMTPServer
	reg  *prometheus.Registry
}

func newChannelsEnv(t *testing.T, dsn string) *channelsEnv {
	t.Helper()
	c := &channelsEnv{smtp: testenv.SMTP(t, "mailer", "pw"), reg: prometheus.NewRegistry()}
	c.env = newEnvSenders(t, dsn, func(e *env, sms notify.Sender) notify.Sender {
		wa, err := twilio.New(twilio.Options{AccountSID: "AC0123456789", AuthToken: authToken, From: "+15005550006",
			WhatsAppFrom: whatsappFrom, WhatsAppTemplates: map[string]string{notify.KindOffer: offerTemplate},
			APIURL: e.tw.URL, Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatalf("twilio sender: %v", err)
		}
		mail, err := email.New(email.Options{URL: "smtp://mailer:pw@" + c.smtp.Addr + "?starttls=required",
			From: "Frigo Care <service@frigo.example>", TLSConfig: c.smtp.ClientTLS})
		if err != nil {
			t.Fatalf("email sender: %v", err)
		}
		return notify.Channels{notify.ChannelSMS: sms, notify.ChannelWhatsApp: wa, notify.ChannelEmail: mail}
	}, func(o *notify.Options) {
		o.Brand, o.ReplyNumber, o.HelpContact, o.Registerer = "Frigo Care", "+15005550006", "call 0800 123 456", c.reg
	})
	return c
}

// prefer sets a customer's preferred channel and email and records their
// consent to that channel.
func (c *channelsEnv) prefer(id string, ch proactive.Channel, addr string) {
	c.t.Helper()
	cust := must(c.store.GetCustomer(c.ctx, id))
	cust.PreferredChannel, cust.Email = ch, addr
	must(c.store.UpdateCustomer(c.ctx, cust))
	must(c.store.RecordConsent(c.ctx, id, proactive.ConsentEvent{Channel: ch, Granted: true, Method: proactive.ConsentWebForm, Actor: "test"}))
}

// counter returns a counter's value by its labels.
func (c *channelsEnv) counter(name string, labels map[string]string) (float64, bool) {
	c.t.Helper()
	mfs, err := c.reg.Gather()
	if err != nil {
		c.t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// timelineChannels lists the channel of each outgoing message entry on a
// ticket's timeline.
func timelineChannels(t *testing.T, tk proactive.Ticket) []string {
	t.Helper()
	var out []string
	for _, ev := range tk.Timeline {
		var b map[string]any
		if ev.Kind != proactive.TicketEventMessage || json.Unmarshal(ev.Body, &b) != nil {
			continue
		}
		if ch, _ := b["channel"].(string); ch != "" {
			out = append(out, b["direction"].(string)+":"+ch)
		}
	}
	return out
}

// TestWhatsAppConversation: a customer who prefers WhatsApp gets the offer
// as its approved template from the WhatsApp sender, answers on WhatsApp,
// and the confirmation comes back there as plain text; the timeline shows
// the channel of every message.
func TestWhatsAppConversation(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		c := newChannelsEnv(t, dsn)
		c.prefer("alice", proactive.ChannelWhatsApp, "")
		c.fire("fridge-1", "compressor")
		posts := c.tw.Messages()
		if len(posts) != 1 {
			t.Fatalf("%d messages created, want the offer", len(posts))
		}
		offer := posts[0]
		if offer.To != "whatsapp:"+alice || offer.From != "whatsapp:"+whatsappFrom || offer.ContentSid != offerTemplate || offer.Body != "" {
			t.Fatalf("offer posted as %+v", offer)
		}
		var vars map[string]string
		if err := json.Unmarshal([]byte(offer.ContentVariables), &vars); err != nil {
			t.Fatalf("ContentVariables %q: %v", offer.ContentVariables, err)
		}
		contains(t, vars["1"], "Frigo Care", "1) ", "Reply 1-3, CALL or NO", "/c/")
		if strings.ContainsAny(vars["1"], "\n\t") {
			t.Errorf("template variable has line breaks: %q", vars["1"])
		}

		if code := c.reply("whatsapp:"+alice, "1"); code != http.StatusOK {
			t.Fatalf("inbound WhatsApp answered %d", code)
		}
		c.poll()
		if tk := c.ticket("fridge-1", "compressor"); tk.Status != proactive.TicketScheduled {
			t.Errorf("ticket %s after the WhatsApp reply, want scheduled", tk.Status)
		}
		posts = c.tw.Messages()
		if len(posts) != 2 {
			t.Fatalf("%d messages created, want the offer and the confirmation", len(posts))
		}
		confirm := posts[1]
		if confirm.To != "whatsapp:"+alice || confirm.From != "whatsapp:"+whatsappFrom || confirm.ContentSid != "" {
			t.Errorf("confirmation posted as %+v", confirm)
		}
		contains(t, confirm.Body, "Booked")
		got := strings.Join(timelineChannels(t, c.ticket("fridge-1", "compressor")), " ")
		if !strings.Contains(got, "out:whatsapp") || !strings.Contains(got, "in:whatsapp") || strings.Contains(got, "sms") {
			t.Errorf("timeline channels %q, want WhatsApp in and out only", got)
		}
		if v, _ := c.counter("proactive_notify_channel_messages_total", map[string]string{"channel": "whatsapp", "result": "sent"}); v != 2 {
			t.Errorf("whatsapp sent = %v, want 2", v)
		}
	})
}

// TestWhatsAppStopKeepsSMS: STOP on WhatsApp withdraws WhatsApp consent
// only, is confirmed on WhatsApp, and suppresses nothing on SMS; the next
// offer on WhatsApp is held, and one by SMS (the customer's new choice)
// goes out.
func TestWhatsAppStopKeepsSMS(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		c := newChannelsEnv(t, dsn)
		c.prefer("alice", proactive.ChannelWhatsApp, "")
		c.reply("whatsapp:"+alice, "STOP")
		c.poll()
		cust := must(c.store.GetCustomer(c.ctx, "alice"))
		if cust.WhatsAppConsent || !cust.SMSConsent {
			t.Fatalf("after STOP on WhatsApp: whatsapp %v sms %v; want WhatsApp out, SMS kept", cust.WhatsAppConsent, cust.SMSConsent)
		}
		hist := must(c.store.ConsentHistory(c.ctx, "alice"))
		if last := hist[len(hist)-1]; last.Channel != proactive.ChannelWhatsApp || last.Method != proactive.ConsentWhatsApp || last.Granted {
			t.Errorf("last consent event %+v", last)
		}
		posts := c.tw.Messages()
		if len(posts) != 1 || posts[0].To != "whatsapp:"+alice || !strings.Contains(posts[0].Body, "no more WhatsApp messages") {
			t.Fatalf("the STOP's confirmation: %+v", posts)
		}
		if v, _ := c.counter("proactive_notify_opt_outs_total", map[string]string{"channel": "whatsapp"}); v != 1 {
			t.Errorf("whatsapp opt-outs = %v, want 1", v)
		}

		c.fire("fridge-1", "compressor")
		if n := len(c.tw.Messages()); n != 1 {
			t.Errorf("an offer went out to a customer opted out of their channel: %d messages", n)
		}
		if r := c.ticket("fridge-1", "compressor").HeldReason; r != "opted_out" {
			t.Errorf("hold reason %q, want opted_out", r)
		}

		cust = must(c.store.GetCustomer(c.ctx, "alice"))
		cust.PreferredChannel = proactive.ChannelSMS
		must(c.store.UpdateCustomer(c.ctx, cust))
		c.fire("fridge-1", "fan")
		got := c.wantSent(alice, 1)
		contains(t, got[0], "fan")
	})
}

// TestEmailOffer: a customer who prefers email gets the offer by email in
// their language, with how to answer (by SMS or phone), the unsubscribe
// link in the text and in List-Unsubscribe; nothing goes by SMS.
func TestEmailOffer(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		c := newChannelsEnv(t, dsn)
		c.prefer("bruno", proactive.ChannelEmail, "bruno@example.fr")
		c.fire("fridge-2", "compressor")
		emails := c.smtp.Emails()
		if len(emails) != 1 {
			t.Fatalf("%d emails, want the offer", len(emails))
		}
		m := emails[0]
		if m.From != "service@frigo.example" || len(m.To) != 1 || m.To[0] != "bruno@example.fr" {
			t.Errorf("envelope from %q to %v", m.From, m.To)
		}
		subject, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if subject != "Frigo Care: Votre fridge-a200 risque une panne : choisissez une visite" {
			t.Errorf("subject %q", subject)
		}
		if lang := m.Header.Get("Content-Language"); lang != "fr" {
			t.Errorf("Content-Language %q, want fr", lang)
		}
		unsub := strings.Trim(m.Header.Get("List-Unsubscribe"), "<>")
		if !strings.HasPrefix(unsub, c.web.URL+notify.UnsubscribePath) {
			t.Errorf("List-Unsubscribe %q", m.Header.Get("List-Unsubscribe"))
		}
		contains(t, m.Body, "compresseur", "1) ", "envoyez la vôtre par SMS au +15005550006 depuis le "+bruno, "call 0800 123 456",
			"Pour ne plus recevoir ces e-mails : "+unsub)
		if strings.Contains(m.Body, "STOP") {
			t.Errorf("the email carries the SMS footer: %q", m.Body)
		}
		if n := len(c.tw.Messages()); n != 0 {
			t.Errorf("%d SMS sent to a customer who prefers email", n)
		}
		got := strings.Join(timelineChannels(t, c.ticket("fridge-2", "compressor")), " ")
		if got != "out:email" {
			t.Errorf("timeline channels %q", got)
		}

		// The reply by SMS the email asks for books the visit; the answer
		// goes by SMS, where the customer wrote.
		c.reply(bruno, "2")
		c.poll()
		if tk := c.ticket("fridge-2", "compressor"); tk.Status != proactive.TicketScheduled {
			t.Errorf("ticket %s after the SMS reply, want scheduled", tk.Status)
		}
		contains(t, c.wantSent(bruno, 1)[0], "Réservé")
	})
}

// TestEmailUnsubscribe: the link's page asks before it acts (GET changes
// nothing), POST (the button or a one-click client) withdraws email
// consent only, and the next email is not sent; an unknown link is 404
// with a page that names nobody.
func TestEmailUnsubscribe(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		c := newChannelsEnv(t, dsn)
		c.prefer("alice", proactive.ChannelEmail, "alice@example.org")
		c.fire("fridge-1", "compressor")
		emails := c.smtp.Emails()
		if len(emails) != 1 {
			t.Fatalf("%d emails, want the offer", len(emails))
		}
		link := strings.Trim(emails[0].Header.Get("List-Unsubscribe"), "<>")
		srv := httptest.NewServer(c.n.UnsubscribeHandler())
		defer srv.Close()
		path := strings.TrimPrefix(link, c.web.URL)

		get := func(p string) (int, string) {
			resp, err := http.Get(srv.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, body := get(path); code != http.StatusOK || !strings.Contains(body, `<form method="post">`) {
			t.Errorf("GET the link: %d %q", code, body)
		}
		if !must(c.store.GetCustomer(c.ctx, "alice")).EmailConsent {
			t.Fatal("GET unsubscribed the customer")
		}
		resp, err := http.Post(srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("POST the link: %d", resp.StatusCode)
		}
		cust := must(c.store.GetCustomer(c.ctx, "alice"))
		if cust.EmailConsent || !cust.SMSConsent {
			t.Errorf("after unsubscribing: email %v sms %v; want email out, SMS kept", cust.EmailConsent, cust.SMSConsent)
		}
		hist := must(c.store.ConsentHistory(c.ctx, "alice"))
		if last := hist[len(hist)-1]; last.Channel != proactive.ChannelEmail || last.Method != proactive.ConsentEmailLink {
			t.Errorf("last consent event %+v", last)
		}
		// A dispatcher's message now has nowhere to go.
		if _, err := c.n.SendMessage(c.ctx, c.ticket("fridge-1", "compressor").ID, "dispatcher", "hello"); proactive.ErrorCode(err) != proactive.EConflict {
			t.Errorf("SendMessage to an unsubscribed email customer: %v, want a conflict", err)
		}
		c.poll()
		if n := len(c.smtp.Emails()); n != 1 {
			t.Errorf("%d emails after unsubscribing, want still 1", n)
		}
		if code, body := get(notify.UnsubscribePath + "forged"); code != http.StatusNotFound || strings.Contains(body, "alice") {
			t.Errorf("unknown link: %d %q", code, body)
		}
		if v, _ := c.counter("proactive_notify_opt_outs_total", map[string]string{"channel": "email"}); v != 1 {
			t.Errorf("email opt-outs = %v, want 1", v)
		}
	})
}

// TestChannelOptOutAtSend: a message already queued on a channel the
// customer then leaves is suppressed when its turn comes, whatever the
// other channels' consent.
func TestChannelOptOutAtSend(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		c := newChannelsEnv(t, dsn)
		c.prefer("alice", proactive.ChannelWhatsApp, "")
		c.fire("fridge-1", "compressor")
		id := c.ticket("fridge-1", "compressor").ID
		must(c.n.SendMessage(c.ctx, id, "dispatcher", "See you soon")) // queued, not yet sent
		must(c.store.RecordConsent(c.ctx, "alice", proactive.ConsentEvent{Channel: proactive.ChannelWhatsApp, Granted: false,
			Method: proactive.ConsentPhoneCall, Actor: "dispatcher"}))
		c.poll()
		if n := len(c.tw.Messages()); n != 1 {
			t.Errorf("%d messages created, want only the offer", n)
		}
		if v, _ := c.counter("proactive_notify_channel_messages_total", map[string]string{"channel": "whatsapp", "result": "suppressed"}); v != 1 {
			t.Errorf("whatsapp suppressed = %v, want 1", v)
		}
	})
}

// TestChannelMetricsStartAtZero: every channel's series exist before the
// first message.
func TestChannelMetricsStartAtZero(t *testing.T) {
	c := newChannelsEnv(t, testenv.Dialects[0].DSN(t))
	for _, ch := range []string{"sms", "whatsapp", "email"} {
		for _, r := range []string{"sent", "retry", "unknown", "failed", "suppressed"} {
			if v, ok := c.counter("proactive_notify_channel_messages_total", map[string]string{"channel": ch, "result": r}); !ok || v != 0 {
				t.Errorf("channel_messages_total{channel=%s,result=%s} = %v (present %v), want 0", ch, r, v, ok)
			}
		}
		if v, ok := c.counter("proactive_notify_opt_outs_total", map[string]string{"channel": ch}); !ok || v != 0 {
			t.Errorf("opt_outs_total{channel=%s} = %v (present %v), want 0", ch, v, ok)
		}
	}
}
