package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
)

// TestCustomerForm: the dispatcher changes the customer's channel and
// records consent told on the phone from the ticket page; a refusal is the
// flash and changes nothing; technicians may not.
func TestCustomerForm(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		b := e.signedIn("dispatcher")
		ticketPath := fmt.Sprintf("/tickets/%d", e.offered)
		resp, page := b.get(ticketPath)
		wantStatus(t, resp, page, http.StatusOK)
		wantIn(t, page, `action="`+ticketPath+`/customer/channel"`, `<label for="cu-channel">`,
			"Record WhatsApp consent given by phone", "Withdraw SMS consent")

		// post posts form to the ticket's path+action, wants the redirect
		// back to the ticket, and returns the ticket page with its flash.
		post := func(t *testing.T, action string, form url.Values) string {
			t.Helper()
			resp, page := b.post(ticketPath+action, form)
			wantStatus(t, resp, page, http.StatusSeeOther)
			if loc := resp.Header.Get("Location"); loc != ticketPath {
				t.Fatalf("redirects to %q, want %q", loc, ticketPath)
			}
			resp, page = b.get(ticketPath)
			wantStatus(t, resp, page, http.StatusOK)
			return page
		}
		unchanged := func(t *testing.T) {
			t.Helper()
			c := must(e.store.GetCustomer(e.ctx, "alice"))
			if c.PreferredChannel != proactive.ChannelSMS || c.Email != "" {
				t.Errorf("customer changed by a refused form: channel %q, email %q", c.PreferredChannel, c.Email)
			}
		}

		t.Run("email without address", func(t *testing.T) {
			page := post(t, "/customer/channel", url.Values{"channel": {"email"}, "email": {""}})
			wantIn(t, page, `class="flash"`, "email: required when preferred_channel is email")
			unchanged(t)
		})
		t.Run("bad email", func(t *testing.T) {
			page := post(t, "/customer/channel", url.Values{"channel": {"email"}, "email": {"alice at home"}})
			wantIn(t, page, "is not an email address")
			unchanged(t)
		})
		t.Run("email", func(t *testing.T) {
			page := post(t, "/customer/channel", url.Values{"channel": {"email"}, "email": {"alice@example.com"}})
			wantIn(t, page, "Alice Martin is now reached by email.", `<dd id="channel">email (no consent to it)`)
			c := must(e.store.GetCustomer(e.ctx, "alice"))
			if c.PreferredChannel != proactive.ChannelEmail || c.Email != "alice@example.com" {
				t.Errorf("customer: channel %q, email %q, want email, alice@example.com", c.PreferredChannel, c.Email)
			}
		})
		t.Run("whatsapp consent", func(t *testing.T) {
			page := post(t, "/customer/consent", url.Values{"channel": {"whatsapp"}, "granted": {"true"}})
			wantIn(t, page, "consent to WhatsApp recorded.", "WhatsApp yes", "Withdraw WhatsApp consent")
			page = post(t, "/customer/consent", url.Values{"channel": {"whatsapp"}, "granted": {"false"}})
			wantIn(t, page, "consent to WhatsApp withdrawn.", "WhatsApp no", "SMS yes")
			trail := must(e.store.ConsentHistory(e.ctx, "alice"))
			last := trail[len(trail)-1]
			if last.Channel != proactive.ChannelWhatsApp || last.Granted || last.Method != proactive.ConsentPhoneCall ||
				last.Actor != "dispatcher" {
				t.Errorf("last consent event %+v, want whatsapp withdrawn by phone_call, actor dispatcher", last)
			}
			if c := must(e.store.GetCustomer(e.ctx, "alice")); c.WhatsAppConsent || !c.SMSConsent {
				t.Errorf("consent: whatsapp %v, sms %v; want false, true", c.WhatsAppConsent, c.SMSConsent)
			}
		})
		t.Run("bad consent form", func(t *testing.T) {
			n := len(must(e.store.ConsentHistory(e.ctx, "alice")))
			page := post(t, "/customer/consent", url.Values{"channel": {"pigeon"}, "granted": {"true"}})
			wantIn(t, page, "is not one of sms, whatsapp, email")
			if m := len(must(e.store.ConsentHistory(e.ctx, "alice"))); m != n {
				t.Errorf("a refused form recorded consent: %d events, want %d", m, n)
			}
		})
		t.Run("technician", func(t *testing.T) {
			must(e.store.Assign(e.ctx, e.offered, "tech-paris", "test"))
			paula := e.signedIn("paula")
			resp, page := paula.get(ticketPath)
			wantStatus(t, resp, page, http.StatusOK)
			wantNotIn(t, page, "/customer/channel", "/customer/consent")
			before := must(e.store.GetCustomer(e.ctx, "alice"))
			for _, f := range []struct {
				action string
				form   url.Values
			}{
				{"/customer/channel", url.Values{"channel": {"sms"}}},
				{"/customer/consent", url.Values{"channel": {"sms"}, "granted": {"false"}}},
			} {
				resp, page := paula.post(ticketPath+f.action, f.form)
				wantStatus(t, resp, page, http.StatusForbidden)
			}
			after := must(e.store.GetCustomer(e.ctx, "alice"))
			if after.PreferredChannel != before.PreferredChannel || after.SMSConsent != before.SMSConsent {
				t.Errorf("a technician's post changed the customer: %+v → %+v", before, after)
			}
		})
	})
}
