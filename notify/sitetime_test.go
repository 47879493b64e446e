package notify_test

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/api"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/web"
)

// One time rule: a site's visit, booked by SMS on a server whose zone is
// UTC, reads the same everywhere: the customer's offer and confirmation in
// the site's local time; the dispatcher's board and ticket page, the
// technician's day and the API's labels in the same local time with the
// zone's abbreviation (CET in winter, CEST in summer), or its UTC offset
// where the zone has none (Asia/Dubai, which Go prints "+04").
func TestOneTimeRuleAcrossViews(t *testing.T) {
	for _, tc := range []struct {
		name, zone, country, postal, phone string
		date                               [3]int // a Monday, the day the alert fires
		label                              string
	}{
		{"berlin winter", "Europe/Berlin", "DE", "10115", "+4915123456789", [3]int{2026, 1, 12}, "CET"},
		{"berlin summer", "Europe/Berlin", "DE", "10115", "+4915123456789", [3]int{2026, 7, 13}, "CEST"},
		{"no abbreviation", "Asia/Dubai", "AE", "00000", "+971501234567", [3]int{2026, 1, 12}, "UTC+04:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.EachDialect(t, func(t *testing.T, dsn string) {
				e := newEnv(t, dsn, nil)
				loc := must(time.LoadLocation(tc.zone))
				e.clock.Set(time.Date(tc.date[0], time.Month(tc.date[1]), tc.date[2], 9, 30, 0, 0, loc))
				testenv.Seed(t, e.store, testenv.Crew{
					Customers: []testenv.CrewCustomer{{Customer: proactive.Customer{ID: "greta", Name: "Greta Weber", Phone: tc.phone, Language: "en"},
						Consent: true, Device: proactive.Device{ID: "site-fridge", Model: "fridge-a200", TimeZone: tc.zone,
							Site: proactive.Address{Line1: "Invalidenstr. 1", City: "Site", PostalCode: tc.postal, Country: tc.country}}}},
					Technicians: []proactive.Technician{{ID: "tech-site", Name: "Tomas", Phone: tc.phone[:len(tc.phone)-1] + "0",
						TimeZone: tc.zone, Skills: []string{"compressor"}, ServiceArea: []string{tc.postal[:2]}, Hours: testenv.Weekdays()}},
				})
				e.n.Alerts(e.ctx, []proactive.Alert{alert("site-fridge", "compressor", proactive.SeverityWarning, e.clock.Now())})
				e.poll()
				if code := e.reply(tc.phone, "1"); code != 200 {
					t.Fatalf("reply: %d", code)
				}
				e.poll()
				tk := e.ticket("site-fridge", "compressor")
				apps := must(e.n.Appointments(e.ctx, notify.AppointmentFilter{Ticket: tk.ID}))
				if tk.Status != proactive.TicketScheduled || len(apps) != 1 {
					t.Fatalf("ticket %s with %d visits, want scheduled with 1", tk.Status, len(apps))
				}
				start, end := apps[0].Start.In(loc), apps[0].End.In(loc)
				if start.Hour() < 8 || end.Hour() > 17 {
					t.Fatalf("visit %s–%s is outside the technician's local hours: zones mixed up", start, end)
				}
				day, hours := start.Format("Mon 2 Jan"), start.Format("15:04")+"–"+end.Format("15:04")
				labelled := day + " " + hours + " " + tc.label

				// The customer: the site's local time, as they read it.
				sms := e.wantSent(tc.phone, 2) // offer, confirmation
				customer := day + " " + start.Format("15:04") + "-" + end.Format("15:04")
				contains(t, sms[0], customer)
				contains(t, sms[1], customer)

				// The dispatcher and the technician, on a UTC server.
				tokens := devices.NewTokens(e.store, devices.TokenOptions{})
				_, dispatcher := must2(tokens.Create(e.ctx, "dispatcher", devices.RoleDispatcher, ""))
				_, tech := must2(tokens.Create(e.ctx, "tomas", devices.RoleTechnician, "tech-site"))
				pages := httptest.NewTLSServer(web.New(web.Options{Store: e.store, Tokens: tokens, Outreach: e.n, Logger: discard(),
					Now: e.clock.Now, Location: time.UTC}))
				t.Cleanup(pages.Close)
				desk := signIn(t, pages, dispatcher)
				pageHas(t, desk, pages.URL+"/", "Visit "+labelled)
				pageHas(t, desk, fmt.Sprintf("%s/tickets/%d", pages.URL, tk.ID), labelled)
				pageHas(t, signIn(t, pages, tech), pages.URL+"/day?date="+start.Format(time.DateOnly), hours+" "+tc.label)

				// The API's rendered fields.
				// api.New serves what production mounts at api.Prefix.
				apiSrv := httptest.NewServer(api.New(api.Options{Store: e.store, Tokens: tokens, Outreach: e.n, Now: e.clock.Now}))
				t.Cleanup(apiSrv.Close)
				req := must(http.NewRequestWithContext(e.ctx, http.MethodGet, fmt.Sprintf("%s/appointments?ticket_id=%d", apiSrv.URL, tk.ID), nil))
				req.Header.Set("Authorization", "Bearer "+dispatcher)
				resp := must(http.DefaultClient.Do(req))
				defer resp.Body.Close()
				var page struct {
					Items []struct {
						Start    time.Time `json:"start"`
						TimeZone string    `json:"time_zone"`
						Label    string    `json:"label"`
					} `json:"items"`
				}
				if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 || len(page.Items) != 1 {
					t.Fatalf("GET /appointments: %s, %v, %+v", resp.Status, err, page)
				}
				if got := page.Items[0]; got.Label != labelled || got.TimeZone != tc.zone || !got.Start.Equal(start) {
					t.Errorf("API appointment %+v, want label %q in %s at %s", got, labelled, tc.zone, start)
				}
			})
		})
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn returns a client of the pages signed in with token.
func signIn(t *testing.T, pages *httptest.Server, token string) *http.Client {
	t.Helper()
	c := *pages.Client()
	c.Jar = must(cookiejar.New(nil))
	m := csrfField.FindStringSubmatch(get(t, &c, pages.URL+"/signin"))
	if m == nil {
		t.Fatal("sign-in page without a CSRF field")
	}
	resp := must(c.PostForm(pages.URL+"/signin", url.Values{"token": {token}, "csrf": {m[1]}}))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %s", resp.Status)
	}
	return &c
}

func get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp := must(c.Get(u))
	defer resp.Body.Close()
	b := must(io.ReadAll(resp.Body))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	return string(b)
}

func pageHas(t *testing.T, c *http.Client, u, want string) {
	t.Helper()
	// html/template writes "+" as "&#43;".
	if page := html.UnescapeString(get(t, c, u)); !strings.Contains(page, want) {
		t.Errorf("%s lacks %q", u, want)
	}
}

func must2[T, U any](v T, u U, err error) (T, U) {
	if err != nil {
		panic(err)
	}
	return v, u
}
