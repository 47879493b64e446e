package twilio_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/internal/faketwilio"
	"github.com/proactivehq/proactive/notify/twilio"
)

const (
	accountSID = "AC0123456789"
	authToken  = "0123456789abcdef0123456789abcdef"
)

func mustSender(t *testing.T, opt twilio.Options) *twilio.Sender {
	t.Helper()
	if opt.AccountSID == "" {
		opt.AccountSID, opt.AuthToken = accountSID, authToken
	}
	s, err := twilio.New(opt)
	if err != nil {
		t.Fatalf("twilio.New: %v", err)
	}
	return s
}

func msg() notify.Message {
	return notify.Message{ID: 7, To: "+33611111111", Body: "Your fridge needs a visit.\nReply STOP to opt out.", Kind: notify.KindOffer,
		StatusCallback: "https://proactive.example/webhooks/twilio/status?m=7"}
}

func TestNewChecksOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  twilio.Options
		want []string
	}{
		{"nothing", twilio.Options{}, []string{"account SID and auth token", "From number or a messaging service"}},
		{"no token", twilio.Options{AccountSID: accountSID, From: "+15005550006"}, []string{"auth token"}},
		{"bad api url", twilio.Options{AccountSID: accountSID, AuthToken: authToken, From: "+1", APIURL: "ftp://x"}, []string{"api_url"}},
		{"no scheme", twilio.Options{AccountSID: accountSID, AuthToken: authToken, From: "+1", APIURL: "localhost:1234"}, []string{"api_url"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := twilio.New(c.opt)
			if err == nil {
				t.Fatal("New accepted the options")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), authToken) {
				t.Error("the error shows the auth token")
			}
		})
	}
}

// TestSendForm checks what reaches Twilio: To, Body, From or
// MessagingServiceSid (the service wins when both are set), and
// StatusCallback only when the message has one.
func TestSendForm(t *testing.T) {
	for _, c := range []struct {
		name            string
		from, service   string
		callback        string
		wantFrom, wantS string
	}{
		{"from number", "+15005550006", "", msg().StatusCallback, "+15005550006", ""},
		{"messaging service", "", "MG0123456789", msg().StatusCallback, "", "MG0123456789"},
		{"service wins over from", "+15005550006", "MG0123456789", msg().StatusCallback, "", "MG0123456789"},
		{"no status callback", "+15005550006", "", "", "+15005550006", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			tw := faketwilio.New(nil)
			defer tw.Close()
			s := mustSender(t, twilio.Options{From: c.from, MessagingServiceSID: c.service, APIURL: tw.URL})
			m := msg()
			m.StatusCallback = c.callback
			rec, err := s.Send(t.Context(), m)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			posts := tw.Posts()
			if len(posts) != 1 {
				t.Fatalf("%d posts, want 1", len(posts))
			}
			p := posts[0]
			if p.To != m.To || p.Body != m.Body || p.From != c.wantFrom || p.MessagingServiceSid != c.wantS || p.StatusCallback != c.callback {
				t.Errorf("posted %+v", p)
			}
			if rec.SID != p.SID || rec.Status != "queued" {
				t.Errorf("receipt %+v, want SID %s queued", rec, p.SID)
			}
		})
	}
}

// TestSendClassifiesErrors: what the outbox may retry (the message was
// certainly not taken), what it must settle first (it may have been), and
// what it must give up on.
func TestSendClassifiesErrors(t *testing.T) {
	refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}`))
	}))
	defer refused.Close()
	htmlError := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(`<html>bad gateway</html>`))
	}))
	defer htmlError.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	const (
		temporary = "temporary"
		ambiguous = "ambiguous"
		permanent = "permanent"
	)
	for _, c := range []struct {
		name     string
		behavior faketwilio.Behavior
		url      string // instead of the fake
		want     string
		created  bool // the fake created the message
	}{
		{name: "429", behavior: faketwilio.TooMany, want: temporary},
		{name: "500", behavior: faketwilio.ServerError, want: temporary},
		{name: "502 without Twilio's JSON", url: htmlError.URL, want: temporary},
		{name: "400 invalid number", url: refused.URL, want: permanent},
		{name: "connection refused", url: closedURL, want: temporary},
		{name: "timeout after the request, message created", behavior: faketwilio.Hang, want: ambiguous, created: true},
		{name: "timeout after the request, nothing created", behavior: faketwilio.HangDropped, want: ambiguous},
	} {
		t.Run(c.name, func(t *testing.T) {
			tw := faketwilio.New(nil)
			defer tw.Close()
			tw.Then(c.behavior)
			u := tw.URL
			if c.url != "" {
				u = c.url
			}
			s := mustSender(t, twilio.Options{From: "+15005550006", APIURL: u, Timeout: 200 * time.Millisecond})
			_, err := s.Send(t.Context(), msg())
			if err == nil {
				t.Fatal("Send succeeded")
			}
			got := permanent
			switch {
			case errors.Is(err, notify.ErrTemporary) && errors.Is(err, notify.ErrAmbiguous):
				t.Fatalf("error is both temporary and ambiguous: %v", err)
			case errors.Is(err, notify.ErrTemporary):
				got = temporary
			case errors.Is(err, notify.ErrAmbiguous):
				got = ambiguous
			}
			if got != c.want {
				t.Errorf("error %v is %s, want %s", err, got, c.want)
			}
			if c.url == "" {
				if created := len(tw.Messages()) == 1; created != c.created {
					t.Errorf("fake created a message: %v, want %v", created, c.created)
				}
			}
			if strings.Contains(err.Error(), authToken) {
				t.Error("the error shows the auth token")
			}
		})
	}
}

// TestSendRespectsContext: the attempt's context bounds it even with a
// long client timeout, and a cancellation after the request was written is
// an unknown outcome.
func TestSendRespectsContext(t *testing.T) {
	tw := faketwilio.New(nil)
	defer tw.Close()
	tw.Then(faketwilio.Hang)
	s := mustSender(t, twilio.Options{From: "+15005550006", APIURL: tw.URL, Timeout: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Send(ctx, msg())
	if !errors.Is(err, notify.ErrAmbiguous) {
		t.Errorf("Send after the deadline: %v, want ErrAmbiguous", err)
	}
	// The fake hangs for good and the client's timeout is an hour: that Send
	// returned at all shows the context bounded it.
	t.Logf("Send returned %v after a 200ms deadline", time.Since(start))
}

// TestFind: after an ambiguous attempt, Find tells whether the message
// exists at Twilio: same number and body, created since the attempt.
func TestFind(t *testing.T) {
	now := time.Date(2026, 3, 9, 8, 30, 0, 0, time.UTC)
	tw := faketwilio.New(func() time.Time { return now })
	defer tw.Close()
	tw.Then(faketwilio.Hang)
	s := mustSender(t, twilio.Options{MessagingServiceSID: "MG0123456789", APIURL: tw.URL, Timeout: 200 * time.Millisecond})
	m := msg()
	if _, err := s.Send(t.Context(), m); !errors.Is(err, notify.ErrAmbiguous) {
		t.Fatalf("Send: %v, want ErrAmbiguous", err)
	}
	created := tw.Messages()
	if len(created) != 1 {
		t.Fatalf("fake created %d messages", len(created))
	}

	rec, found, err := s.Find(t.Context(), m, now.Add(-time.Minute))
	if err != nil || !found || rec.SID != created[0].SID {
		t.Errorf("Find = %+v, %v, %v; want found %s", rec, found, err, created[0].SID)
	}
	other := m
	other.Body = "another text"
	if _, found, err := s.Find(t.Context(), other, now.Add(-time.Minute)); err != nil || found {
		t.Errorf("Find of another body: found %v, %v", found, err)
	}
	other = m
	other.To = "+33622222222"
	if _, found, err := s.Find(t.Context(), other, now.Add(-time.Minute)); err != nil || found {
		t.Errorf("Find to another number: found %v, %v", found, err)
	}
	if _, found, err := s.Find(t.Context(), m, now.Add(time.Minute)); err != nil || found {
		t.Errorf("Find of messages created after it: found %v, %v", found, err)
	}
}

// TestSendWhatsApp: a WhatsApp message goes to whatsapp:+E164 from the
// WhatsApp sender; a business-initiated kind with a template goes as its
// Content SID with the text as variable 1 (on one line), an answer inside
// the conversation as plain Body.
func TestSendWhatsApp(t *testing.T) {
	const offerTemplate = "HX0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		name, kind, from, service string
		wantFrom, wantService     string
		wantContent, wantVars     string
		wantBody                  string
	}{
		{"offer as template", notify.KindOffer, "+15005550007", "", "whatsapp:+15005550007", "", offerTemplate,
			`{"1":"Your fridge needs a visit. | 1) Tue 10:00-12:00 | Reply STOP to opt out."}`, ""},
		{"answer as text", notify.KindConfirm, "+15005550007", "", "whatsapp:+15005550007", "", "", "",
			"Your fridge needs a visit.\n1)  Tue   10:00-12:00\nReply STOP to opt out."},
		{"through the messaging service", notify.KindConfirm, "", "MG0123456789", "", "MG0123456789", "", "",
			"Your fridge needs a visit.\n1)  Tue   10:00-12:00\nReply STOP to opt out."},
	} {
		t.Run(c.name, func(t *testing.T) {
			tw := faketwilio.New(nil)
			defer tw.Close()
			s := mustSender(t, twilio.Options{From: "+15005550006", MessagingServiceSID: c.service, WhatsAppFrom: c.from,
				WhatsAppTemplates: map[string]string{notify.KindOffer: offerTemplate}, APIURL: tw.URL})
			m := msg()
			m.Channel, m.Kind, m.Body = notify.ChannelWhatsApp, c.kind, "Your fridge needs a visit.\n1)  Tue   10:00-12:00\nReply STOP to opt out."
			if _, err := s.Send(t.Context(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			posts := tw.Posts()
			if len(posts) != 1 {
				t.Fatalf("%d posts, want 1", len(posts))
			}
			p := posts[0]
			if p.To != "whatsapp:"+m.To || p.From != c.wantFrom || p.MessagingServiceSid != c.wantService {
				t.Errorf("posted To %q From %q service %q, want whatsapp:%s, %q, %q", p.To, p.From, p.MessagingServiceSid, m.To, c.wantFrom, c.wantService)
			}
			if p.ContentSid != c.wantContent || p.ContentVariables != c.wantVars || p.Body != c.wantBody {
				t.Errorf("posted ContentSid %q ContentVariables %q Body %q, want %q %q %q", p.ContentSid, p.ContentVariables, p.Body,
					c.wantContent, c.wantVars, c.wantBody)
			}
		})
	}
	t.Run("bad content sid", func(t *testing.T) {
		_, err := twilio.New(twilio.Options{AccountSID: accountSID, AuthToken: authToken, From: "+1",
			WhatsAppTemplates: map[string]string{notify.KindOffer: "offer-template"}})
		if err == nil || !strings.Contains(err.Error(), "offer") || !strings.Contains(err.Error(), "Content SID") {
			t.Errorf("New: %v, want an error naming the offer's template", err)
		}
	})
	t.Run("unknown kind", func(t *testing.T) {
		_, err := twilio.New(twilio.Options{AccountSID: accountSID, AuthToken: authToken, From: "+1",
			WhatsAppTemplates: map[string]string{"ofer": offerTemplate}})
		if err == nil || !strings.Contains(err.Error(), `"ofer": not a message kind`) {
			t.Errorf("New: %v, want an error naming the unknown kind", err)
		}
	})
	t.Run("email refused", func(t *testing.T) {
		s := mustSender(t, twilio.Options{From: "+15005550006"})
		m := msg()
		m.Channel = notify.ChannelEmail
		if _, err := s.Send(t.Context(), m); err == nil {
			t.Error("Send took an email")
		}
	})
}
