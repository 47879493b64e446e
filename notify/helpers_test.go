package notify_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/internal/faketwilio"
	"github.com/proactivehq/proactive/notify/twilio"
)

const authToken = "0123456789abcdef0123456789abcdef"

var paris = testenv.Paris()

// monday0830 is Monday 9 March 2026, 08:30 in Paris: outside quiet hours.
var monday0830 = testenv.Monday0830()

// clock is the settable time source shared by the store, the notifier and
// the fake Twilio.
type clock = testenv.Clock

// env is a notifier on a real store, a fake Twilio that twilio-go talks to,
// and the webhooks served over HTTP.
type env struct {
	t     *testing.T
	ctx   context.Context
	dsn   string
	clock *clock
	store *devices.Store
	tw    *faketwilio.Server
	n     *notify.Notifier
	web   *httptest.Server
	mu    sync.Mutex
	seq   int
	// twilioTimeout bounds a request to the fake Twilio, default 10s: a
	// short one times out on a loaded machine and makes an answer look
	// lost (a test once saw two answers where one was sent).
	twilioTimeout time.Duration
	// senders, when set, replaces the notifier's Sender, given the SMS
	// one on the fake Twilio (the channels' tests).
	senders func(e *env, sms notify.Sender) notify.Sender
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv opens the store at dsn with the registry fixture and a notifier
// whose options tune may change.
func newEnv(t *testing.T, dsn string, tune func(*notify.Options)) *env {
	t.Helper()
	return newEnvSenders(t, dsn, nil, tune)
}

// newEnvSenders is newEnv with the notifier's Sender made by senders.
func newEnvSenders(t *testing.T, dsn string, senders func(e *env, sms notify.Sender) notify.Sender, tune func(*notify.Options)) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), dsn: dsn, clock: testenv.NewClock(monday0830), senders: senders}
	st, err := devices.OpenOptions(e.ctx, dsn, devices.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e.store = st
	e.tw = faketwilio.New(e.clock.Now)
	t.Cleanup(e.tw.Close)
	var h http.Handler = http.NotFoundHandler()
	var hmu sync.RWMutex
	e.web = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hmu.RLock()
		defer hmu.RUnlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.web.Close)
	e.n = e.notifier(tune)
	hmu.Lock()
	h = twilio.Webhooks(twilio.WebhookOptions{AuthToken: authToken, PublicURL: e.web.URL, Rejected: e.n.WebhookRejected}, e.n)
	hmu.Unlock()
	e.fixture()
	return e
}

// instance is a second notifier on e's database as another process would
// run it: its own store (its own connections) on the same DSN, the same
// fake Twilio and clock.
func (e *env) instance(tune func(*notify.Options)) *notify.Notifier {
	e.t.Helper()
	st, err := devices.OpenOptions(e.ctx, e.dsn, devices.Options{Now: e.clock.Now})
	if err != nil {
		e.t.Fatalf("open second store: %v", err)
	}
	e.t.Cleanup(func() { st.Close() })
	return e.notifierOn(st, tune)
}

// notifier makes a Notifier on e's store and fake Twilio.
func (e *env) notifier(tune func(*notify.Options)) *notify.Notifier {
	return e.notifierOn(e.store, tune)
}

func (e *env) notifierOn(st *devices.Store, tune func(*notify.Options)) *notify.Notifier {
	sender, err := twilio.New(twilio.Options{AccountSID: "AC0123456789", AuthToken: authToken, From: "+15005550006",
		APIURL: e.tw.URL, Timeout: cmp.Or(e.twilioTimeout, 10*time.Second)})
	if err != nil {
		e.t.Fatalf("twilio sender: %v", err)
	}
	opt := notify.Options{Store: st, Sender: sender, PublicURL: e.web.URL,
		Now: e.clock.Now, Logger: discard(), SendTimeout: 10 * time.Second}
	if e.senders != nil {
		opt.Sender = e.senders(e, sender)
	}
	if tune != nil {
		tune(&opt)
	}
	return notify.New(opt)
}

// weekdays are the crew's office hours, Monday to Friday 08:00–17:00.
var weekdays = testenv.Weekdays()

// fixture registers the shared Paris crew (testenv.ParisCrew: Alice with
// fridge-1, Bruno, French, with fridge-2, both consenting; Paula who serves
// Paris and Leo who serves Lyon, both repairing compressors) and a third
// technician, Fabien, who repairs fans anywhere.
func (e *env) fixture() {
	e.t.Helper()
	crew := testenv.ParisCrew()
	crew.Technicians = append(crew.Technicians, proactive.Technician{ID: "tech-fans", Name: "Fabien", Phone: "+33655555555",
		TimeZone: "Europe/Paris", Skills: []string{"fan"}, ServiceArea: []string{"*"}, Hours: testenv.Weekdays()})
	testenv.Seed(e.t, e.store, crew)
}

// must returns v, or panics (failing the test with a stack) on err: for
// calls whose failure means the test cannot go on.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func alert(dev, component string, sev proactive.Severity, at time.Time) proactive.Alert {
	return proactive.Alert{Rule: component + "_wear", Device: proactive.DeviceID(dev), Model: "fridge-a200", Component: component,
		Severity: sev, State: proactive.AlertFiring, Summary: component + " wearing out", ActiveAt: at, FiredAt: at,
		TimeToFailure: 5 * 24 * time.Hour}
}

// fire sends a firing alert to the notifier and runs a poll.
func (e *env) fire(dev, component string) {
	e.t.Helper()
	e.n.Alerts(e.ctx, []proactive.Alert{alert(dev, component, proactive.SeverityWarning, e.clock.Now())})
	e.poll()
}

func (e *env) poll() {
	e.t.Helper()
	if err := e.n.Poll(e.ctx); err != nil {
		e.t.Fatalf("poll: %v", err)
	}
}

// reply posts a signed inbound SMS and returns the HTTP status.
func (e *env) reply(from, body string) int {
	e.t.Helper()
	e.mu.Lock()
	e.seq++
	sid := fmt.Sprintf("SMin%06d", e.seq)
	e.mu.Unlock()
	form := url.Values{"MessageSid": {sid}, "From": {from}, "To": {"+15005550006"}, "Body": {body}, "AccountSid": {"AC0123456789"}}
	return e.post(notify.SMSPath, form, faketwilio.Sign(authToken, e.web.URL+notify.SMSPath, form))
}

// status posts a signed status callback to the URL a message asked for.
func (e *env) status(callback, sid, status string) int {
	e.t.Helper()
	u, err := url.Parse(callback)
	if err != nil {
		e.t.Fatal(err)
	}
	form := url.Values{"MessageSid": {sid}, "MessageStatus": {status}, "AccountSid": {"AC0123456789"}}
	if status == "failed" || status == "undelivered" {
		form.Set("ErrorCode", "30003")
	}
	return e.post(u.RequestURI(), form, faketwilio.Sign(authToken, callback, form))
}

func (e *env) post(pathQuery string, form url.Values, sig string) int {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.web.URL+pathQuery, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		req.Header.Set("X-Twilio-Signature", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// ticket returns the latest ticket of a device's component.
func (e *env) ticket(dev, component string) proactive.Ticket {
	e.t.Helper()
	page := must(e.store.ListTickets(e.ctx, devices.TicketFilter{Device: proactive.DeviceID(dev)}))
	for _, t := range page.Items {
		if t.Component == component {
			return must(e.store.GetTicket(e.ctx, t.ID))
		}
	}
	e.t.Fatalf("no ticket for %s/%s", dev, component)
	return proactive.Ticket{}
}

// sentTo returns the bodies Twilio created for a number, oldest first.
func (e *env) sentTo(phone string) []string {
	var out []string
	for _, p := range e.tw.Messages() {
		if p.To == phone {
			out = append(out, p.Body)
		}
	}
	return out
}

func (e *env) wantSent(phone string, n int) []string {
	e.t.Helper()
	got := e.sentTo(phone)
	if len(got) != n {
		e.t.Fatalf("%s got %d messages, want %d:\n%s", phone, len(got), n, strings.Join(got, "\n---\n"))
	}
	return got
}

func contains(t *testing.T, body string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(body, p) {
			t.Errorf("message %q lacks %q", body, p)
		}
	}
}
