package notify_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/internal/faketwilio"
)

// TestOptOutKeywords plays every carrier and Twilio opt-out keyword: each
// withdraws consent and gets one confirmation, after which nothing more is
// sent until START.
func TestOptOutKeywords(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(o *notify.Options) { o.Brand = "Frigo Care" })
		sent := 0
		for _, w := range []string{"STOP", "stopall", "Unsubscribe", "CANCEL", "end", "QUIT.", "revoke", "OPTOUT"} {
			t.Run(w, func(t *testing.T) {
				e.reply(alice, "START")
				e.poll()
				sent++
				e.clock.Add(time.Second)
				e.reply(alice, w)
				e.poll()
				sent++
				got := e.wantSent(alice, sent)
				contains(t, got[sent-1], "Frigo Care", "unsubscribed", "no more SMS", "START")
				if strings.Contains(got[sent-1], "Reply STOP") {
					t.Errorf("the opt-out confirmation asks to reply STOP: %q", got[sent-1])
				}
				if must(e.store.GetCustomer(e.ctx, "alice")).SMSConsent {
					t.Errorf("%q did not opt out", w)
				}
				e.clock.Add(time.Second)
			})
		}
	})
}

// TestAdvancedOptOut: with the provider answering the keywords, the
// platform records them (consent, timeline) and answers none of them.
func TestAdvancedOptOut(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(o *notify.Options) { o.AdvancedOptOut = true })
		e.fire("fridge-1", "compressor")
		e.wantSent(alice, 1)
		for _, kw := range []string{"HELP", "STOP", "START", "INFO", "UNSTOP"} {
			e.reply(alice, kw)
			e.poll()
			e.clock.Add(time.Second)
		}
		e.wantSent(alice, 1)
		if !must(e.store.GetCustomer(e.ctx, "alice")).SMSConsent {
			t.Error("START (UNSTOP) after STOP left the customer opted out")
		}
		hist := must(e.store.ConsentHistory(e.ctx, "alice"))
		if n := len(hist); n < 3 || hist[n-3].Granted || !hist[n-2].Granted || !hist[n-1].Granted {
			t.Errorf("consent history %+v, want STOP, START, UNSTOP last", hist)
		}
		var recorded []string
		for _, ev := range e.ticket("fridge-1", "compressor").Timeline {
			if ev.Actor == "customer" {
				recorded = append(recorded, string(ev.Body))
			}
		}
		if len(recorded) != 5 || !strings.Contains(recorded[0], "answered by the provider") {
			t.Errorf("timeline has %d inbound keywords, want 5, each answered by the provider: %v", len(recorded), recorded)
		}
	})
}

// TestOptedOutAtCarrier: Twilio's error 21610, on a send or in a status
// callback, is an opt-out: consent withdrawn, the ticket says so, nothing
// more is sent.
func TestOptedOutAtCarrier(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.tw.Then(faketwilio.Unsubscribed)
		e.fire("fridge-1", "compressor")
		e.wantSent(alice, 0)
		if len(e.tw.Posts()) != 1 {
			t.Fatalf("%d attempts, want 1: 21610 is not retried", len(e.tw.Posts()))
		}
		tk := e.ticket("fridge-1", "compressor")
		failed := false
		for _, ev := range tk.Timeline {
			failed = failed || strings.Contains(string(ev.Body), `"status":"failed"`)
		}
		if !failed || tk.FollowUp == nil || tk.FollowUp.Reason != proactive.FollowUpUndelivered {
			t.Errorf("ticket does not show the failed offer (%v) and its follow-up (%+v)", failed, tk.FollowUp)
		}
		wantOptedOutAtCarrier(t, e, "fan")
	})
}

func TestOptedOutStatusCallback(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.fire("fridge-1", "compressor")
		p := e.tw.Messages()[0]
		form := url.Values{"MessageSid": {p.SID}, "MessageStatus": {"failed"}, "ErrorCode": {"21610"}, "AccountSid": {"AC0123456789"}}
		u := must(url.Parse(p.StatusCallback))
		if code := e.post(u.RequestURI(), form, faketwilio.Sign(authToken, p.StatusCallback, form)); code != 204 {
			t.Fatalf("status callback answered %d", code)
		}
		wantOptedOutAtCarrier(t, e, "fan")
	})
}

func wantOptedOutAtCarrier(t *testing.T, e *env, next string) {
	t.Helper()
	c := must(e.store.GetCustomer(e.ctx, "alice"))
	hist := must(e.store.ConsentHistory(e.ctx, "alice"))
	if last := hist[len(hist)-1]; c.SMSConsent || last.Granted || last.Actor != "carrier" || !strings.Contains(last.Note, "21610") {
		t.Errorf("consent %v, last event %+v; want withdrawn by the carrier (21610)", c.SMSConsent, last)
	}
	e.clock.Add(8 * 24 * time.Hour)
	e.fire("fridge-1", next)
	if tk := e.ticket("fridge-1", next); tk.HeldReason != "opted_out" {
		t.Errorf("next ticket held for %q, want opted_out", tk.HeldReason)
	}
}

// TestDisclosure: the offer and the HELP answer carry the brand and the
// carriers' wording in each language; other messages the short opt-out.
func TestDisclosure(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(o *notify.Options) { o.Brand = "Frigo Care"; o.HelpContact = "0800 100 200" })
		e.fire("fridge-1", "compressor")
		e.fire("fridge-2", "compressor")
		e.reply(alice, "HELP")
		e.reply(alice, "banana")
		e.reply(bruno, "AIDE")
		e.poll()
		a, b := e.wantSent(alice, 3), e.wantSent(bruno, 2)
		for _, m := range []string{a[0], a[1]} {
			contains(t, m, "Frigo Care", "Msg & data rates may apply", "Reply STOP to opt out, HELP for help")
		}
		contains(t, a[1], "0800 100 200")
		contains(t, a[2], "Reply STOP to opt out.")
		for _, m := range b {
			contains(t, m, "Frigo Care", "STOP pour se désabonner, AIDE pour l'aide")
		}
		if !strings.HasPrefix(a[0], "Frigo Care:") || !strings.HasPrefix(b[0], "Frigo Care :") {
			t.Errorf("offers do not open with the brand: %q, %q", a[0], b[0])
		}
	})
}

// TestDeviceNameInSMS: the offer names the device as its customer knows
// it, in French with the component translated.
func TestDeviceNameInSMS(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		d := must(e.store.GetDevice(e.ctx, "fridge-2"))
		d.Name = "frigo cuisine"
		must(e.store.UpdateDevice(e.ctx, d))
		e.fire("fridge-2", "compressor")
		offer := e.wantSent(bruno, 1)[0]
		contains(t, offer, "frigo cuisine", "(compresseur)", "APPEL", "NON")
		if n, ucs2 := notify.Segments(offer); n > 2 || ucs2 {
			t.Errorf("French offer takes %d segments (UCS-2 %v):\n%s", n, ucs2, offer)
		}
		e.reply(bruno, "appel")
		e.poll()
		contains(t, e.wantSent(bruno, 2)[1], "notre équipe vous appelle")
		if tk := e.ticket("fridge-2", "compressor"); tk.FollowUp == nil {
			t.Error("APPEL raised no follow-up")
		}
	})
}
