package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/rules"
	"github.com/proactivehq/proactive/web"
)

// seedTickets adds n tickets to e's store over 100 devices and 5 rules, in
// every status: a tenth each open, offered, scheduled and visited, the rest
// closed, cancelled or declined, as a fleet's history looks.
func (e *env) seedTickets(tb testing.TB, n int) {
	tb.Helper()
	ctx := tb.Context()
	const devs = 100
	for i := range devs {
		must(e.store.CreateDevice(ctx, proactive.Device{ID: proactive.DeviceID(fmt.Sprintf("pump-%03d", i)), Model: "pump-x",
			CustomerID: "alice", TimeZone: "Europe/Paris",
			Site: proactive.Address{City: "Paris", PostalCode: "75011", Country: "FR"}}))
	}
	sevs := []proactive.Severity{proactive.SeverityInfo, proactive.SeverityWarning, proactive.SeverityCritical}
	const batch = 500
	for start := 0; start < n; start += batch {
		err := e.store.WithTx(ctx, func(tx *devices.Tx) error {
			for i := start; i < min(start+batch, n); i++ {
				a := proactive.Alert{Rule: fmt.Sprintf("rule_%d", i%5), Device: proactive.DeviceID(fmt.Sprintf("pump-%03d", i%devs)),
					Component: fmt.Sprintf("c%d", i/devs), Severity: sevs[i%3], State: proactive.AlertFiring,
					Summary: fmt.Sprintf("Seal pressure %d%% under its norm", i%40), TimeToFailure: 72 * time.Hour,
					Metrics: map[string]float64{"pressure": float64(i % 40)}}
				t, _, err := tx.OpenTicket(ctx, a)
				if err != nil {
					return err
				}
				var path []proactive.TicketStatus
				switch i % 10 {
				case 0:
				case 1:
					path = []proactive.TicketStatus{proactive.TicketOffered}
				case 2:
					path = []proactive.TicketStatus{proactive.TicketScheduled}
				case 3:
					path = []proactive.TicketStatus{proactive.TicketScheduled, proactive.TicketVisited}
				case 4:
					path = []proactive.TicketStatus{proactive.TicketCancelled}
				case 5:
					path = []proactive.TicketStatus{proactive.TicketOffered, proactive.TicketDeclined}
				default:
					path = []proactive.TicketStatus{proactive.TicketScheduled, proactive.TicketVisited}
				}
				for _, to := range path {
					if _, err := tx.Transition(ctx, t.ID, to, "seed", ""); err != nil {
						return err
					}
				}
				if i%10 >= 6 {
					if _, err := tx.CloseTicket(ctx, t.ID, proactive.OutcomeFaultConfirmed, "", "seed"); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatalf("seed tickets: %v", err)
		}
	}
}

// pages are the pages whose server time the goal bounds, at 10,000
// tickets: every board view, an offered ticket (its free slots are
// computed), a closed one with its history, and a day with a visit.
func (e *env) pages(tb testing.TB) map[string]string {
	tb.Helper()
	closed := must(e.store.ListTickets(tb.Context(), devices.TicketFilter{Status: []proactive.TicketStatus{proactive.TicketClosed}, ListOptions: devices.ListOptions{Limit: 1}}))
	slots := must(e.n.Slots(tb.Context(), e.open))
	must(e.n.Book(tb.Context(), e.open, slots[0], "test"))
	return map[string]string{
		"schedule":         "/schedule?from=" + slots[0].Start.In(paris).Format("2006-01-02"),
		"fleet":            "/fleet",
		"fleet-page-2":     "/fleet?after=pump-049",
		"rules":            "/rules",
		"board-region-age": "/?region=75&age=7d",
		"ticket-closed":    fmt.Sprintf("/tickets/%d", closed.Items[0].ID),
		"board":            "/",
		"board-severity":   "/?severity=critical",
		"board-rule":       "/?rule=rule_3",
		"board-search":     "/?q=" + url.QueryEscape("pump-04"),
		"board-closed":     "/?status=closed",
		"board-all-old":    "/?status=all&before=5000",
		"ticket":           fmt.Sprintf("/tickets/%d", e.offered),
		"day":              "/day?technician=tech-paris&date=" + slots[0].Start.In(paris).Format("2006-01-02"),
	}
}

// timedOptions gives the timed pages telemetry and a rule engine that
// answer at once, so that the figures are the pages' own: a chart of 240
// points per metric, every device seen a minute ago, and 5 rules.
func timedOptions(o *web.Options) {
	o.Telemetry = telemetryFunc{
		rng: func(_ proactive.DeviceID, metrics []string, from, to time.Time) ([]influx.MetricSeries, error) {
			var out []influx.MetricSeries
			for _, m := range metrics {
				s := influx.MetricSeries{Metric: m}
				for i := range 240 {
					s.Points = append(s.Points, influx.SeriesPoint{Time: from.Add(to.Sub(from) * time.Duration(i) / 240), Value: float64(i % 17)})
				}
				out = append(out, s)
			}
			return out, nil
		},
		latest: allSeen{},
	}
	o.Rules = ruleEngineFunc{rules: func() []rules.RuleStatus {
		var out []rules.RuleStatus
		for i := range 5 {
			out = append(out, rules.RuleStatus{Name: fmt.Sprintf("rule_%d", i), Component: "seal", Severity: proactive.SeverityWarning,
				File: "rules/pumps.yaml", Line: 1 + 10*i, Health: "ok", Evaluations: 100_000, Pending: i, Firing: 2 * i})
		}
		return out
	}}
}

// sessionCookie signs in through the handler and returns the cookie.
func (e *env) sessionCookie(tb testing.TB, who string) *http.Cookie {
	tb.Helper()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/signin", nil))
	signin := rec.Result().Cookies()[0]
	m := csrfRE.FindStringSubmatch(rec.Body.String())
	form := url.Values{"token": {e.tok[who]}, "csrf": {m[1]}}
	req := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(signin)
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == "proactive_session" && c.Value != "" {
			return c
		}
	}
	tb.Fatalf("sign in as %s: %d", who, rec.Code)
	return nil
}

// serve times one request to the handler, failing on a status other than 200.
func (e *env) serve(tb testing.TB, c *http.Cookie, path string) time.Duration {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.AddCookie(c)
	rec := httptest.NewRecorder()
	start := time.Now()
	e.h.ServeHTTP(rec, req)
	d := time.Since(start)
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET %s: %d\n%s", path, rec.Code, excerpt(rec.Body.String()))
	}
	return d
}

// BenchmarkPages measures each page's server time (handler, templates and
// database, no network) with 10,000 tickets in SQLite.
func BenchmarkPages(b *testing.B) {
	e := newEnv(b, testenv.SQLite(b), timedOptions)
	e.seedTickets(b, 10_000)
	c := e.sessionCookie(b, "dispatcher")
	pages := e.pages(b)
	names := make([]string, 0, len(pages))
	for n := range pages {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				e.serve(b, c, pages[name])
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
}

// TestPagesUnder300ms checks the goal: every page under 300 ms of server
// time with 10,000 tickets (the median of 5 requests, so that one GC pause
// on a shared machine does not decide).
func TestPagesUnder300ms(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 10,000 tickets")
	}
	e := newEnv(t, testenv.SQLite(t), timedOptions)
	start := time.Now()
	e.seedTickets(t, 10_000)
	t.Logf("seeded 10,000 tickets in %v", time.Since(start).Round(time.Millisecond))
	c := e.sessionCookie(t, "dispatcher")
	for name, path := range e.pages(t) {
		var times []time.Duration
		for range 5 {
			times = append(times, e.serve(t, c, path))
		}
		slices.Sort(times)
		t.Logf("%-16s median %6.1f ms, max %6.1f ms", name, ms(times[2]), ms(times[4]))
		if times[2] > 300*time.Millisecond {
			t.Errorf("%s (%s): median %v, over 300 ms", name, path, times[2])
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
