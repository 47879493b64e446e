package twilio_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/twilio"
)

// receiver records what the webhooks hand over and answers err.
type receiver struct {
	got []string
	err error
}

func (r *receiver) Inbound(_ context.Context, sid, from, body string) error {
	r.got = append(r.got, "in "+sid+" "+from+" "+body)
	return r.err
}

func (r *receiver) Status(_ context.Context, id int64, sid, status, code string) error {
	r.got = append(r.got, "status "+sid+" "+status+" "+code)
	if id != 0 {
		r.got = append(r.got, "id")
	}
	return r.err
}

// TestWebhooks: a request is handed over only with a valid signature, and
// answered with TwiML, 204 or, on an internal error, 500.
func TestWebhooks(t *testing.T) {
	const public = "https://proactive.example"
	sms := url.Values{"MessageSid": {"SM1"}, "From": {"+33611111111"}, "Body": {"2"}}
	status := url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}}
	for _, tc := range []struct {
		name      string
		token     string
		path      string
		form      url.Values
		sig       string
		err       error
		code      int
		got       []string
		twiml     bool
		rejection bool
	}{
		{name: "sms", token: authToken, path: notify.SMSPath, form: sms, code: 200, twiml: true, got: []string{"in SM1 +33611111111 2"}},
		{name: "sms from an unknown number", token: authToken, path: notify.SMSPath, form: sms, err: proactive.Errorf(proactive.ENotFound, "no"),
			code: 200, twiml: true, got: []string{"in SM1 +33611111111 2"}},
		{name: "sms failing", token: authToken, path: notify.SMSPath, form: sms, err: errors.New("database down"), code: 500,
			got: []string{"in SM1 +33611111111 2"}},
		{name: "sms wrong key", token: authToken, path: notify.SMSPath, form: sms, sig: twilio.Signature("other", public+notify.SMSPath, sms),
			code: 403, rejection: true},
		{name: "sms wrong path", token: authToken, path: notify.SMSPath, form: sms, sig: twilio.Signature(authToken, public+notify.StatusPath, sms),
			code: 403, rejection: true},
		{name: "sms unsigned", token: authToken, path: notify.SMSPath, form: sms, sig: "-", code: 403, rejection: true},
		{name: "no auth token", path: notify.SMSPath, form: sms, code: 403, rejection: true},
		{name: "status", token: authToken, path: notify.StatusPath + "?m=7", form: status, code: 204, got: []string{"status SM1 delivered ", "id"}},
		{name: "status failing", token: authToken, path: notify.StatusPath, form: status, err: errors.New("database down"), code: 500,
			got: []string{"status SM1 delivered "}},
		{name: "status without its query", token: authToken, path: notify.StatusPath + "?m=7", form: status,
			sig: twilio.Signature(authToken, public+notify.StatusPath, status), code: 403, rejection: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &receiver{err: tc.err}
			rejected := 0
			h := twilio.Webhooks(twilio.WebhookOptions{AuthToken: tc.token, PublicURL: public + "/", Rejected: func() { rejected++ }}, r)
			sig := tc.sig
			switch sig {
			case "":
				sig = twilio.Signature(authToken, public+tc.path, tc.form)
			case "-":
				sig = ""
			}
			req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if sig != "" {
				req.Header.Set("X-Twilio-Signature", sig)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.code {
				t.Errorf("status %d, want %d", w.Code, tc.code)
			}
			if strings.Join(r.got, "|") != strings.Join(tc.got, "|") {
				t.Errorf("handed over %q, want %q", r.got, tc.got)
			}
			if tc.twiml && (!strings.Contains(w.Body.String(), "<Response></Response>") || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/xml")) {
				t.Errorf("answer %q (%s), want empty TwiML", w.Body, w.Header().Get("Content-Type"))
			}
			if (rejected == 1) != tc.rejection {
				t.Errorf("%d rejections counted", rejected)
			}
		})
	}
}
