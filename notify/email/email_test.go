package email_test

import (
	"errors"
	"mime"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/email"
)

func mustSender(t *testing.T, url string, srv *testenv.SMTPServer) *email.Sender {
	t.Helper()
	opt := email.Options{URL: url, From: "Proactive <service@example.com>"}
	if srv != nil {
		opt.TLSConfig = srv.ClientTLS
	}
	s, err := email.New(opt)
	if err != nil {
		t.Fatalf("email.New: %v", err)
	}
	return s
}

func offer() notify.Message {
	return notify.Message{ID: 42, Channel: notify.ChannelEmail, To: "anne@example.org", Kind: notify.KindOffer, Language: "fr",
		Subject:     "Proactive : votre réfrigérateur risque une panne",
		Body:        "Créneaux :\n1) mar. 10 mars 08:00-10:00\nCet e-mail ne reçoit pas de réponse.",
		Unsubscribe: "https://proactive.example/email/unsubscribe/tok123"}
}

// TestSend: the email reaches the server with its sender, recipient,
// subject (encoded), language, unsubscribe headers and UTF-8 text, through
// AUTH PLAIN with the URL's credentials.
func TestSend(t *testing.T) {
	srv := testenv.SMTP(t, "mailer", "s3cret/+")
	s := mustSender(t, "smtp://mailer:s3cret%2F%2B@"+srv.Addr+"?starttls=required", srv)
	m := offer()
	rec, err := s.Send(t.Context(), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	emails := srv.Emails()
	if len(emails) != 1 {
		t.Fatalf("%d emails received, want 1", len(emails))
	}
	e := emails[0]
	if e.User != "mailer" || e.From != "service@example.com" || len(e.To) != 1 || e.To[0] != m.To {
		t.Errorf("envelope: user %q from %q to %q", e.User, e.From, e.To)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(e.Header.Get("Subject"))
	for h, want := range map[string]string{
		"From": `"Proactive" <service@example.com>`, "To": "<anne@example.org>",
		"Content-Language": "fr", "Auto-Submitted": "auto-generated",
		"List-Unsubscribe":      "<https://proactive.example/email/unsubscribe/tok123>",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"Message-Id":            rec.SID,
	} {
		if got := e.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if subject != m.Subject {
		t.Errorf("subject %q, want %q", subject, m.Subject)
	}
	if ct := e.Header.Get("Content-Type"); !strings.Contains(ct, "text/plain") || !strings.Contains(strings.ToLower(ct), "utf-8") {
		t.Errorf("Content-Type %q", ct)
	}
	if strings.TrimSpace(e.Body) != m.Body {
		t.Errorf("body %q, want %q", e.Body, m.Body)
	}
	if !strings.HasPrefix(rec.SID, "<proactive.42.") || rec.Status != "sent" {
		t.Errorf("receipt %+v", rec)
	}
}

// TestSendClassifiesErrors: a server that cannot be reached or answers 4xx
// may be tried again; a 5xx is final; bad credentials make no email.
func TestSendClassifiesErrors(t *testing.T) {
	srv := testenv.SMTP(t, "", "")
	t.Run("unreachable", func(t *testing.T) {
		s := mustSender(t, "smtp://"+testenv.FreeAddr(t)+"?starttls=off", nil)
		if _, err := s.Send(t.Context(), offer()); !errors.Is(err, notify.ErrTemporary) {
			t.Errorf("Send: %v, want ErrTemporary", err)
		}
	})
	t.Run("4xx", func(t *testing.T) {
		srv.RejectNext(&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"})
		s := mustSender(t, "smtp://"+srv.Addr, srv)
		if _, err := s.Send(t.Context(), offer()); !errors.Is(err, notify.ErrTemporary) {
			t.Errorf("Send: %v, want ErrTemporary", err)
		}
	})
	t.Run("5xx", func(t *testing.T) {
		srv.RejectNext(&smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "rejected"})
		s := mustSender(t, "smtp://"+srv.Addr, srv)
		_, err := s.Send(t.Context(), offer())
		if err == nil || errors.Is(err, notify.ErrTemporary) || errors.Is(err, notify.ErrAmbiguous) {
			t.Errorf("Send: %v, want a permanent error", err)
		}
	})
	t.Run("bad password", func(t *testing.T) {
		authed := testenv.SMTP(t, "mailer", "right")
		s := mustSender(t, "smtp://mailer:wrong@"+authed.Addr, authed)
		_, err := s.Send(t.Context(), offer())
		if err == nil || strings.Contains(err.Error(), "wrong") {
			t.Errorf("Send: %v, want an error without the password", err)
		}
		if n := len(authed.Emails()); n != 0 {
			t.Errorf("%d emails received", n)
		}
	})
	t.Run("not an email", func(t *testing.T) {
		s := mustSender(t, "smtp://"+srv.Addr, srv)
		m := offer()
		m.Channel = notify.ChannelSMS
		if _, err := s.Send(t.Context(), m); err == nil {
			t.Error("Send took an SMS")
		}
	})
}

// TestNoCredentialsInClear: credentials never go over a connection that
// STARTTLS did not encrypt.
func TestNoCredentialsInClear(t *testing.T) {
	srv := testenv.SMTP(t, "mailer", "pw")
	s := mustSender(t, "smtp://mailer:pw@"+srv.Addr+"?starttls=off", srv)
	if _, err := s.Send(t.Context(), offer()); err == nil {
		t.Fatal("Send authenticated in clear text")
	}
	if n := len(srv.Emails()); n != 0 {
		t.Errorf("%d emails received", n)
	}
}

// TestNewChecksOptions: every problem at once, never the password.
func TestNewChecksOptions(t *testing.T) {
	for _, c := range []struct {
		name, url, from string
		want            []string
	}{
		{"bad scheme", "http://mail.example.com", "service@example.com", []string{"smtp://host"}},
		{"bad from", "smtp://mail.example.com", "not an address", []string{"from"}},
		{"bad port", "smtp://u:topsecret@mail.example.com:99999", "service@example.com", []string{"port"}},
		{"bad starttls", "smtp://mail.example.com?starttls=maybe", "service@example.com", []string{"starttls"}},
		{"unparsable", "smtp://u:top secret@mail example.com:%zz", "", []string{"not a URL", "from"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := email.New(email.Options{URL: c.url, From: c.from})
			if err == nil {
				t.Fatal("New accepted the options")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "topsecret") || strings.Contains(err.Error(), "top secret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}
