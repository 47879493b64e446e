package web_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/twilio"
	"github.com/proactivehq/proactive/web"
)

var paris = testenv.Paris()

// monday0830 is Monday 9 March 2026, 08:30 in Paris: technicians work, no
// quiet hours.
var monday0830 = testenv.Monday0830()

// clock is the settable time source shared by the store, the notifier and
// the pages.
type clock = testenv.Clock

// outbox records the SMS the notifier hands its sender.
type outbox struct {
	mu   sync.Mutex
	msgs []notify.Message
	// status is the provider's answer, "queued" when empty.
	status string
}

func (o *outbox) send(_ context.Context, m notify.Message) (notify.Receipt, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, m)
	return notify.Receipt{SID: fmt.Sprintf("SM%06d", len(o.msgs)), Status: cmp.Or(o.status, "queued")}, nil
}

func (o *outbox) to(phone string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, m := range o.msgs {
		if m.To == phone {
			out = append(out, m.Body)
		}
	}
	return out
}

// env is the web pages on a real store and notifier, served over TLS so
// that the Secure cookies travel as they do in production.
type env struct {
	t      testing.TB
	ctx    context.Context
	clock  *clock
	store  *devices.Store
	tokens *devices.Tokens
	n      *notify.Notifier
	sms    *outbox
	srv    *httptest.Server
	h      http.Handler
	hooks  *httptest.Server // the notifier's Twilio webhooks
	// Plaintext tokens by role name: admin, dispatcher, paula (tech-paris),
	// leo (tech-lyon).
	tok map[string]string
	// Tickets of the fixture.
	offered, open, critical int64
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

const twilioToken = "0123456789abcdef0123456789abcdef"

// newEnv opens the store at dsn with the fixture, a notifier whose
// webhooks are served, and the pages, with options tune may change.
func newEnv(t testing.TB, dsn string, tune ...func(*web.Options)) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), clock: testenv.NewClock(monday0830), sms: &outbox{}, tok: map[string]string{}}
	st, err := devices.OpenOptions(e.ctx, dsn, devices.Options{Now: e.clock.Now, BcryptCost: 4})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e.store = st
	e.tokens = devices.NewTokens(st, devices.TokenOptions{})
	e.hooks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		twilio.Webhooks(twilio.WebhookOptions{AuthToken: twilioToken, PublicURL: e.hooks.URL}, e.n).ServeHTTP(w, r)
	}))
	t.Cleanup(e.hooks.Close)
	e.n = notify.New(notify.Options{Store: st, Sender: notify.SenderFunc(e.sms.send), Now: e.clock.Now, Logger: discard(),
		PublicURL: e.hooks.URL})
	e.fixture()
	opt := web.Options{Store: st, Tokens: e.tokens, Outreach: e.n, Customers: e.n, Logger: discard(), Now: e.clock.Now, Location: paris}
	for _, f := range tune {
		f(&opt)
	}
	h := web.New(opt)
	e.h = h
	e.srv = httptest.NewTLSServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// fixture registers the shared Paris crew (testenv.ParisCrew), where only
// Alice consents and both technicians (Paula serves Paris, Leo Lyon) also
// repair fans, a token per role, and three tickets: an offered one (the SMS
// went out), an open one whose customer has no consent, and a critical open
// one.
func (e *env) fixture() {
	e.t.Helper()
	ctx := e.ctx
	crew := testenv.ParisCrew()
	crew.Customers[1].Consent = false // bruno
	for i := range crew.Technicians {
		crew.Technicians[i].Skills = []string{"compressor", "fan"}
	}
	testenv.Seed(e.t, e.store, crew)
	for name, role := range map[string]devices.Role{"admin": devices.RoleAdmin, "dispatcher": devices.RoleDispatcher} {
		_, plain := must2(e.tokens.Create(ctx, name, role, ""))
		e.tok[name] = plain
	}
	_, e.tok["paula"] = must2(e.tokens.Create(ctx, "paula", devices.RoleTechnician, "tech-paris"))
	_, e.tok["leo"] = must2(e.tokens.Create(ctx, "leo", devices.RoleTechnician, "tech-lyon"))

	e.n.Alerts(ctx, []proactive.Alert{alert("fridge-1", "compressor", proactive.SeverityWarning, e.clock.Now())})
	if err := e.n.Poll(ctx); err != nil {
		e.t.Fatalf("poll: %v", err)
	}
	e.offered = e.ticket("fridge-1", "compressor").ID
	open, _ := must2(e.store.OpenTicket(ctx, alert("fridge-2", "fan", proactive.SeverityWarning, e.clock.Now())))
	critical, _ := must2(e.store.OpenTicket(ctx, alert("fridge-2", "compressor", proactive.SeverityCritical, e.clock.Now())))
	e.open, e.critical = open.ID, critical.ID
}

func alert(dev, component string, sev proactive.Severity, at time.Time) proactive.Alert {
	return proactive.Alert{Rule: component + "_wear", Device: proactive.DeviceID(dev), Model: "fridge-a200", Component: component,
		Severity: sev, State: proactive.AlertFiring, Summary: component + " wearing out on " + dev, ActiveAt: at, FiredAt: at,
		TimeToFailure: 5 * 24 * time.Hour, Metrics: map[string]float64{component + "_current": 6.5}}
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

// reply posts an inbound SMS from phone to the notifier's webhook, signed
// as Twilio signs it, and returns the HTTP status.
func (e *env) reply(from, body string) int {
	e.t.Helper()
	form := url.Values{"MessageSid": {fmt.Sprintf("SMin%d", time.Now().UnixNano())}, "From": {from},
		"To": {"+15005550006"}, "Body": {body}, "AccountSid": {"AC0123456789"}}
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.hooks.URL+notify.SMSPath, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilio.Signature(twilioToken, e.hooks.URL+notify.SMSPath, form))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func must2[T, U any](v T, u U, err error) (T, U) {
	if err != nil {
		panic(err)
	}
	return v, u
}

// browser is an HTTP client with its own cookies that does not follow
// redirects, so tests see each answer.
type browser struct {
	e    *env
	c    *http.Client
	csrf string // the last page's CSRF token
}

func (e *env) browser() *browser {
	e.t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := *e.srv.Client() // a copy: the server's client is shared
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{e: e, c: &c}
}

// signedIn returns a browser signed in with the token of who.
func (e *env) signedIn(who string) *browser {
	e.t.Helper()
	b := e.browser()
	b.get("/signin")
	resp, _ := b.post("/signin", url.Values{"token": {e.tok[who]}})
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sign in as %s: %s", who, resp.Status)
	}
	return b
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get fetches path and remembers its CSRF token.
func (b *browser) get(path string) (*http.Response, string) {
	b.e.t.Helper()
	return b.do(http.MethodGet, path, nil)
}

// post posts form with the last page's CSRF token unless form has one.
func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.e.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	return b.do(http.MethodPost, path, form)
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.e.ctx, method, b.e.srv.URL+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	page := string(raw)
	if m := csrfRE.FindStringSubmatch(page); m != nil {
		b.csrf = m[1]
	}
	return resp, page
}

// wantStatus fails the test unless resp has status want.
func wantStatus(t *testing.T, resp *http.Response, page string, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d\n%s", resp.Request.Method, resp.Request.URL.Path, resp.Status, want, excerpt(page))
	}
}

// wantIn fails the test unless page contains each of parts.
func wantIn(t *testing.T, page string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(page, p) {
			t.Errorf("page lacks %q\n%s", p, excerpt(page))
		}
	}
}

func wantNotIn(t *testing.T, page string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(page, p) {
			t.Errorf("page has %q", p)
		}
	}
}

// excerpt is the page's main element, for failure messages.
func excerpt(page string) string {
	if i := strings.Index(page, "<main"); i >= 0 {
		page = page[i:]
	}
	if len(page) > 3000 {
		page = page[:3000] + "…"
	}
	return page
}
