package devices_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// TestCustomerChannel: the preferred channel and the email address are
// stored, checked (email needs an address) and normalised.
func TestCustomerChannel(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		ctx := t.Context()
		c, err := s.CreateCustomer(ctx, proactive.Customer{ID: "c1", Name: "Ann", Phone: "+33612345678",
			PreferredChannel: " WhatsApp ", Email: "ann.martin@Example.ORG"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetCustomer(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if got.PreferredChannel != proactive.ChannelWhatsApp || got.Email != "ann.martin@example.org" || got.Email != c.Email {
			t.Errorf("stored %+v", got)
		}
		got.PreferredChannel = proactive.ChannelEmail
		upd, err := s.UpdateCustomer(ctx, got)
		if err != nil || upd.PreferredChannel != proactive.ChannelEmail || upd.Email != "ann.martin@example.org" {
			t.Errorf("UpdateCustomer = %+v, %v", upd, err)
		}
		for _, bad := range []struct {
			c     proactive.Customer
			field string
			msg   string
		}{
			{proactive.Customer{ID: "c2", Name: "B", Phone: "+33612345679", PreferredChannel: "pigeon"}, "preferred_channel",
				`"pigeon" is not one of sms, whatsapp, email`},
			{proactive.Customer{ID: "c2", Name: "B", Phone: "+33612345679", PreferredChannel: "email"}, "email",
				"required when preferred_channel is email"},
			{proactive.Customer{ID: "c2", Name: "B", Phone: "+33612345679", Email: "Bob <bob@example.org>"}, "email",
				"is not an email address"},
		} {
			_, err := s.CreateCustomer(ctx, bad.c)
			wantCode(t, err, proactive.EInvalid)
			var fe *devices.FieldErrors
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), bad.field) || !strings.Contains(err.Error(), bad.msg) {
				t.Errorf("CreateCustomer(%+v) = %v, want %s: %s", bad.c, err, bad.field, bad.msg)
			}
		}
	})
}

// TestConsentPerChannel: each channel has its own consent and trail; an
// opt-out of WhatsApp leaves SMS as it was; suppression can keep to one
// channel; the outbox reads each message's channel and its consent.
func TestConsentPerChannel(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clk := newClock()
		s := mustOpen(t, dsn, withClock(clk))
		ctx := t.Context()
		mustCustomer(t, s, "c1", "+33612345678")
		for _, ev := range []proactive.ConsentEvent{
			{Granted: true, Method: proactive.ConsentWebForm, Actor: "signup"},
			{Channel: proactive.ChannelWhatsApp, Granted: true, Method: proactive.ConsentWebForm, Actor: "signup"},
			{Channel: proactive.ChannelWhatsApp, Granted: false, Method: proactive.ConsentWhatsApp, Actor: "customer", Note: "WhatsApp keyword STOP"},
		} {
			clk.Add(time.Second)
			if _, err := s.RecordConsent(ctx, "c1", ev); err != nil {
				t.Fatal(err)
			}
		}
		c, _ := s.GetCustomer(ctx, "c1")
		if !c.SMSConsent || c.WhatsAppConsent || c.WhatsAppConsentAt.IsZero() || c.EmailConsent || !c.EmailConsentAt.IsZero() {
			t.Errorf("consents: sms %v whatsapp %v at %v, email %v at %v", c.SMSConsent, c.WhatsAppConsent, c.WhatsAppConsentAt,
				c.EmailConsent, c.EmailConsentAt)
		}
		if !c.Consents(proactive.ChannelSMS) || c.Consents(proactive.ChannelWhatsApp) || c.Consents(proactive.ChannelEmail) {
			t.Error("Consents disagrees with the flags")
		}
		hist, err := s.ConsentHistory(ctx, "c1")
		if err != nil || len(hist) != 3 || hist[0].Channel != proactive.ChannelSMS || hist[2].Channel != proactive.ChannelWhatsApp {
			t.Errorf("history %+v, %v", hist, err)
		}
		_, err = s.RecordConsent(ctx, "c1", proactive.ConsentEvent{Channel: "fax", Granted: true, Method: proactive.ConsentAPI, Actor: "x"})
		wantCode(t, err, proactive.EInvalid)

		// Two pending messages, one per channel; suppressing WhatsApp's
		// leaves the SMS.
		err = s.WithTx(ctx, func(tx *devices.Tx) error {
			for _, m := range []devices.NewMessage{
				{Customer: "c1", Phone: "+33612345678", Kind: "dispatch", Body: "by sms", At: clk.Now()},
				{Customer: "c1", Channel: proactive.ChannelWhatsApp, Phone: "+33612345678", Kind: "dispatch", Body: "by whatsapp", At: clk.Now()},
			} {
				if _, err := tx.Enqueue(ctx, m); err != nil {
					return err
				}
			}
			_, err := tx.Apply(ctx, devices.Change{At: clk.Now(), Customer: "c1", Suppress: "opted out of whatsapp",
				SuppressOn: proactive.ChannelWhatsApp})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		due, err := s.OutboxDue(ctx, clk.Now(), 10)
		if err != nil || len(due) != 1 || due[0].Channel != proactive.ChannelSMS || due[0].Body != "by sms" {
			t.Errorf("due after suppressing WhatsApp: %+v, %v", due, err)
		}
		for ch, want := range map[proactive.Channel]bool{proactive.ChannelSMS: true, proactive.ChannelWhatsApp: false, proactive.ChannelEmail: false} {
			if got, _, err := s.CustomerPolicy(ctx, "c1", ch); err != nil || got != want {
				t.Errorf("CustomerPolicy(%s) = %v, %v; want %v", ch, got, err, want)
			}
		}
	})
}

// TestUnsubscribeToken: one random token per customer, made once, which
// finds its customer back.
func TestUnsubscribeToken(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		ctx := t.Context()
		mustCustomer(t, s, "c1", "+33612345678")
		mustCustomer(t, s, "c2", "+33612345679")
		a, err := s.UnsubscribeToken(ctx, "c1")
		if err != nil || len(a) < 22 {
			t.Fatalf("UnsubscribeToken = %q, %v", a, err)
		}
		if again, _ := s.UnsubscribeToken(ctx, "c1"); again != a {
			t.Errorf("token changed: %q then %q", a, again)
		}
		if b, _ := s.UnsubscribeToken(ctx, "c2"); b == a {
			t.Error("two customers share a token")
		}
		if c, err := s.CustomerByUnsubscribeToken(ctx, a); err != nil || c.ID != "c1" {
			t.Errorf("CustomerByUnsubscribeToken = %v, %v", c.ID, err)
		}
		_, err = s.CustomerByUnsubscribeToken(ctx, a+"x")
		wantCode(t, err, proactive.ENotFound)
		_, err = s.UnsubscribeToken(ctx, "nobody")
		wantCode(t, err, proactive.ENotFound)
	})
}

// TestImportChannels: the import carries the email, the preferred channel
// and the consent of each channel, rejects bad values by column, and
// records only consent that changed.
func TestImportChannels(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		ctx := t.Context()
		file := "device_id,model,time_zone,customer_id,customer_name,customer_phone,customer_email,preferred_channel,sms_consent,whatsapp_consent,email_consent\n" +
			"d1,fridge-a200,Europe/Paris,c1,Ann,+33612345678,ann@example.org,email,false,true,true\n" +
			"d2,fridge-a200,Europe/Paris,c2,Bob,+33612345679,,whatsapp,,yes,\n" +
			"d3,fridge-a200,Europe/Paris,c3,Cy,+33612345670,,email,,,maybe\n" +
			"d4,fridge-a200,Europe/Paris,c4,Di,+33612345671,not-an-address,fax,,,\n"
		rep, err := devices.Import(ctx, s, strings.NewReader(file), nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Created != 2 || len(rep.Rejected) != 2 {
			t.Fatalf("report %+v", rep)
		}
		for i, want := range [][]string{
			{"email: required when preferred_channel is email", `email_consent: "maybe" is not true or false`},
			{"customer_email:", "preferred_channel:"},
		} {
			for _, w := range want {
				if !strings.Contains(rep.Rejected[i].Reason, w) {
					t.Errorf("rejected %d: %q lacks %q", i, rep.Rejected[i].Reason, w)
				}
			}
		}
		c1, _ := s.GetCustomer(ctx, "c1")
		if c1.Email != "ann@example.org" || c1.PreferredChannel != proactive.ChannelEmail || c1.SMSConsent || c1.ConsentAt.IsZero() ||
			!c1.WhatsAppConsent || !c1.EmailConsent {
			t.Errorf("c1 %+v", c1)
		}
		c2, _ := s.GetCustomer(ctx, "c2")
		if c2.PreferredChannel != proactive.ChannelWhatsApp || !c2.WhatsAppConsent || !c2.ConsentAt.IsZero() {
			t.Errorf("c2 %+v", c2)
		}
		hist, _ := s.ConsentHistory(ctx, "c1")
		if len(hist) != 3 {
			t.Errorf("c1's trail has %d events, want 3 (one per channel)", len(hist))
		}
		// The same file again changes nothing and records nothing.
		rep, err = devices.Import(ctx, s, strings.NewReader(file), nil)
		if err != nil || rep.Unchanged != 2 || rep.Updated != 0 {
			t.Errorf("second import %+v, %v", rep, err)
		}
		if hist, _ := s.ConsentHistory(ctx, "c1"); len(hist) != 3 {
			t.Errorf("c1's trail has %d events after the second import", len(hist))
		}
	})
}
