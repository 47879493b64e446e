package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/api"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/rules"
)

// testNow is the API's clock in tests.
var testNow = time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)

// fakeRules is the rule engine's state as a test sets it.
type fakeRules struct {
	rules  func() []rules.RuleStatus
	alerts func() []rules.AlertStatus
}

func (f fakeRules) Rules() []rules.RuleStatus   { return f.rules() }
func (f fakeRules) Alerts() []rules.AlertStatus { return f.alerts() }

var theRules = fakeRules{
	rules: func() []rules.RuleStatus {
		return []rules.RuleStatus{{Name: "compressor_wear", Component: "compressor", Health: "ok", Pending: 1, Firing: 2}}
	},
	alerts: func() []rules.AlertStatus {
		return []rules.AlertStatus{{Rule: "compressor_wear", Device: "d-base", Component: "compressor", State: proactive.AlertFiring}}
	},
}

// echoTelemetry answers Latest with one reading for d-base and Range with
// two points per metric at from and at to-1s, so that a test sees what the
// API asked for.
type echoTelemetry struct{}

func (echoTelemetry) Latest(_ context.Context, dev proactive.DeviceID) ([]influx.MetricValue, error) {
	if dev != "d-base" {
		return nil, nil
	}
	return []influx.MetricValue{{Metric: "current", Value: 5.2, Time: testNow.Add(-time.Minute)}}, nil
}

func (echoTelemetry) Range(_ context.Context, _ proactive.DeviceID, metrics []string, from, to time.Time, n int) ([]influx.MetricSeries, time.Duration, error) {
	var out []influx.MetricSeries
	for _, m := range metrics {
		out = append(out, influx.MetricSeries{Metric: m, Points: []influx.SeriesPoint{{Time: from, Value: float64(n)}, {Time: to.Add(-time.Second), Value: 1}}})
	}
	return out, influx.RangeEvery(to.Sub(from), n), nil
}

// fixture is an API on a real store and a real notifier (whose clock is
// testNow and whose SMS go to a console sender that prints nowhere), with a
// token per role.
type fixture struct {
	store    *devices.Store
	tokens   *devices.Tokens
	notifier *notify.Notifier
	url      string
	token    map[devices.Role]string // plaintexts; the technician's is tech-1's
	seq      atomic.Int64
}

func newFixture(tb testing.TB, dsn string, opts ...func(*api.Options)) *fixture {
	tb.Helper()
	ctx := tb.Context()
	store, err := devices.OpenOptions(ctx, dsn, devices.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		tb.Fatalf("open %s: %v", dsn, err)
	}
	tb.Cleanup(func() { store.Close() })
	f := &fixture{store: store, tokens: devices.NewTokens(store, devices.TokenOptions{}), token: map[devices.Role]string{},
		// The route cases fire one rule on many devices at once, which would
		// be an incident and text nobody: they are about the routes.
		notifier: notify.New(notify.Options{Store: store, Sender: notify.NewConsoleSender(io.Discard), Now: func() time.Time { return testNow },
			IncidentMinDevices: 1 << 20})}
	o := api.Options{
		Store:  store,
		Tokens: f.tokens,
		Rules:  theRules,
		Reload: func(context.Context) (int, error) { return 3, nil },
		DeadLetters: func(n int) []ingest.DeadLetter {
			return []ingest.DeadLetter{{Topic: "devices/x/telemetry", Reason: "bad_json"}}[:min(n, 1)]
		},
		Telemetry: echoTelemetry{},
		Outreach:  f.notifier,
		Now:       func() time.Time { return testNow },
		// The route table makes hundreds of unauthenticated requests
		// from one address; TestAuthFailuresLimited tests the limit.
		AuthFailures: 1 << 20,
	}
	for _, fn := range opts {
		fn(&o)
	}
	r := chi.NewRouter()
	r.Mount(api.Prefix, api.New(o))
	srv := httptest.NewServer(r)
	tb.Cleanup(srv.Close)
	f.url = srv.URL + api.Prefix

	if _, err := store.CreateCustomer(ctx, proactive.Customer{ID: "c-base", Name: "Ann", Phone: "+33612345678"}); err != nil {
		tb.Fatal(err)
	}
	f.device(tb, "d-base", "c-base")
	for _, id := range []string{"tech-1", "tech-2"} {
		if _, err := store.CreateTechnician(ctx, proactive.Technician{ID: id, Name: "Tech " + id, Phone: "+33612345670",
			TimeZone: "Europe/Paris", Skills: []string{"compressor"}, ServiceArea: []string{"75"}, Hours: everyDay}); err != nil {
			tb.Fatal(err)
		}
	}
	for _, role := range []devices.Role{devices.RoleAdmin, devices.RoleDispatcher, devices.RoleTechnician} {
		tech := ""
		if role == devices.RoleTechnician {
			tech = "tech-1"
		}
		f.token[role] = f.newToken(tb, string(role), role, tech)
	}
	return f
}

func (f *fixture) newToken(tb testing.TB, name string, role devices.Role, tech string) string {
	tb.Helper()
	_, plain, err := f.tokens.Create(tb.Context(), name, role, tech)
	if err != nil {
		tb.Fatal(err)
	}
	return plain
}

// id returns a new unique id with prefix.
func (f *fixture) id(prefix string) string { return fmt.Sprintf("%s-%d", prefix, f.seq.Add(1)) }

func (f *fixture) device(tb testing.TB, id, customer string) {
	tb.Helper()
	if _, err := f.store.CreateDevice(tb.Context(), proactive.Device{ID: proactive.DeviceID(id), Model: "fridge-a200",
		CustomerID: customer, TimeZone: "Europe/Paris", Site: proactive.Address{PostalCode: "75011", Country: "FR"}}); err != nil {
		tb.Fatalf("create device %s: %v", id, err)
	}
}

// ticket opens a ticket on a new device, assigns it to tech (if any) and
// moves it through path.
func (f *fixture) ticket(tb testing.TB, tech string, path ...proactive.TicketStatus) proactive.Ticket {
	tb.Helper()
	ctx := tb.Context()
	dev := f.id("d")
	f.device(tb, dev, "")
	t, _, err := f.store.OpenTicket(ctx, proactive.Alert{Rule: "compressor_wear", Device: proactive.DeviceID(dev), Component: "compressor",
		Severity: proactive.SeverityWarning, State: proactive.AlertFiring, Summary: "worn"})
	if err != nil {
		tb.Fatal(err)
	}
	if tech != "" {
		if t, err = f.store.Assign(ctx, t.ID, tech, "test"); err != nil {
			tb.Fatal(err)
		}
	}
	for _, st := range path {
		if t, err = f.store.Transition(ctx, t.ID, st, "test", ""); err != nil {
			tb.Fatal(err)
		}
	}
	return t
}

// everyDay is 08:00–18:00 on every day of the week.
var everyDay = proactive.WeeklyHours{
	{{Start: 8 * 60, End: 18 * 60}}, {{Start: 8 * 60, End: 18 * 60}}, {{Start: 8 * 60, End: 18 * 60}}, {{Start: 8 * 60, End: 18 * 60}},
	{{Start: 8 * 60, End: 18 * 60}}, {{Start: 8 * 60, End: 18 * 60}}, {{Start: 8 * 60, End: 18 * 60}},
}

// outreachTicket registers a customer who agreed to SMS and their device in
// Paris, and fires a compressor alert at the notifier: the ticket opens, is
// offered, and the offer waits in the outbox. It returns the ticket and the
// customer's phone.
func (f *fixture) outreachTicket(tb testing.TB) (proactive.Ticket, string) {
	tb.Helper()
	ctx := tb.Context()
	cust, dev := f.id("oc"), f.id("od")
	phone := fmt.Sprintf("+3378%07d", f.seq.Add(1))
	if _, err := f.store.CreateCustomer(ctx, proactive.Customer{ID: cust, Name: "Olga", Phone: phone, Language: "en"}); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.store.RecordConsent(ctx, cust, proactive.ConsentEvent{Granted: true, Method: proactive.ConsentWebForm, Actor: "test"}); err != nil {
		tb.Fatal(err)
	}
	f.device(tb, dev, cust)
	f.notifier.Alerts(ctx, []proactive.Alert{{Rule: "compressor_wear", Device: proactive.DeviceID(dev), Model: "fridge-a200",
		Component: "compressor", Severity: proactive.SeverityWarning, State: proactive.AlertFiring, Summary: "worn",
		ActiveAt: testNow, FiredAt: testNow}})
	page, err := f.store.ListTickets(ctx, devices.TicketFilter{Device: proactive.DeviceID(dev)})
	if err != nil || len(page.Items) != 1 || page.Items[0].Status != proactive.TicketOffered {
		tb.Fatalf("the alert on %s did not open an offered ticket: %+v, %v", dev, page.Items, err)
	}
	return page.Items[0], phone
}

// reviewTicket is a ticket of a consenting customer that a rule whose
// contact is review opened: in review, nobody texted. Its rule is its own,
// so that dismissing it moves no other route case's rule's trust.
func (f *fixture) reviewTicket(tb testing.TB) proactive.Ticket {
	tb.Helper()
	ctx := tb.Context()
	cust, dev := f.id("rc"), f.id("rd")
	if _, err := f.store.CreateCustomer(ctx, proactive.Customer{ID: cust, Name: "Rita", Phone: fmt.Sprintf("+3379%07d", f.seq.Add(1)), Language: "en"}); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.store.RecordConsent(ctx, cust, proactive.ConsentEvent{Granted: true, Method: proactive.ConsentWebForm, Actor: "test"}); err != nil {
		tb.Fatal(err)
	}
	f.device(tb, dev, cust)
	f.notifier.Alerts(ctx, []proactive.Alert{{Rule: "reviewed_rule", Device: proactive.DeviceID(dev), Model: "fridge-a200",
		Component: "compressor", Severity: proactive.SeverityWarning, State: proactive.AlertFiring, Summary: "worn",
		ActiveAt: testNow, FiredAt: testNow, Contact: proactive.ContactReview}})
	page, err := f.store.ListTickets(ctx, devices.TicketFilter{Device: proactive.DeviceID(dev)})
	if err != nil || len(page.Items) != 1 || page.Items[0].Status != proactive.TicketReview {
		tb.Fatalf("the alert on %s did not open a ticket in review: %+v, %v", dev, page.Items, err)
	}
	return page.Items[0]
}

// bookedTicket is an outreachTicket whose visit is booked with tech.
func (f *fixture) bookedTicket(tb testing.TB, tech string) (proactive.Ticket, notify.Appointment, string) {
	tb.Helper()
	t, phone := f.outreachTicket(tb)
	return t, f.book(tb, t.ID, tech), phone
}

// book books ticket's visit with tech at the time of day of one of its
// slots, on a day of its own past the offers' horizon: the route cases run
// in parallel, and two taking the same first free slot would collide.
func (f *fixture) book(tb testing.TB, ticket int64, tech string) notify.Appointment {
	tb.Helper()
	return f.bookAfter(tb, ticket, tech, testNow.AddDate(0, 0, 30+int(f.seq.Add(1))))
}

// bookAfter is book in the first free slot of tech starting after after:
// one of the ticket's slots, or the same time of day on a later day (the
// technicians work every day, and later days are free).
func (f *fixture) bookAfter(tb testing.TB, ticket int64, tech string, after time.Time) notify.Appointment {
	tb.Helper()
	s := f.slotAfter(tb, ticket, tech, after)
	a, err := f.notifier.Book(tb.Context(), ticket, s, "test")
	if err != nil {
		tb.Fatalf("book ticket %d with %s: %v", ticket, tech, err)
	}
	return a
}

// slotOfItsOwn is a slot of tech for ticket on a day of its own past the
// offers' horizon, which no parallel case offers or books.
func (f *fixture) slotOfItsOwn(tb testing.TB, ticket int64, tech string) notify.Slot {
	tb.Helper()
	return f.slotAfter(tb, ticket, tech, testNow.AddDate(0, 0, 30+int(f.seq.Add(1))))
}

// slotAfter is the first slot of tech for ticket starting after after: one
// of the ticket's slots moved to the same time of day on a later day.
func (f *fixture) slotAfter(tb testing.TB, ticket int64, tech string, after time.Time) notify.Slot {
	tb.Helper()
	slots, err := f.notifier.Slots(tb.Context(), ticket)
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range slots {
		if s.Technician != tech {
			continue
		}
		// Whole days on the technicians' wall clock (Europe/Paris), so
		// that a change to summer time keeps the slot in working hours.
		paris, err := time.LoadLocation("Europe/Paris")
		if err != nil {
			tb.Fatal(err)
		}
		s.Start, s.End = s.Start.In(paris), s.End.In(paris)
		for !s.Start.After(after) {
			s.Start, s.End = s.Start.AddDate(0, 0, 1), s.End.AddDate(0, 0, 1)
		}
		return s
	}
	tb.Fatalf("no free slot of %s for ticket %d among %+v", tech, ticket, slots)
	return notify.Slot{}
}

// response is what a request got back.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorBody decodes a JSON error.
func (r response) err(tb testing.TB) (code, msg string, fields map[string]string) {
	tb.Helper()
	var e struct {
		Error struct {
			Code    string            `json:"code"`
			Message string            `json:"message"`
			Fields  map[string]string `json:"fields"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		tb.Fatalf("status %d: body is not a JSON error: %s", r.status, r.body)
	}
	return e.Error.Code, e.Error.Message, e.Error.Fields
}

func (r response) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request with the plaintext token (none if empty).
func (f *fixture) do(tb testing.TB, token, method, path, body string) response {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(tb.Context(), method, f.url+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// as sends a request with the token of role.
func (f *fixture) as(tb testing.TB, role devices.Role, method, path, body string) response {
	tb.Helper()
	return f.do(tb, f.token[role], method, path, body)
}

// want fails unless the response has status.
func want(tb testing.TB, r response, status int) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
}
