package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/api"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/rules"
)

// openAPIDoc is the part of the OpenAPI description the tests read.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Servers []struct {
		URL string `json:"url"`
	} `json:"servers"`
	Paths map[string]map[string]struct {
		Roles     []devices.Role             `json:"x-roles"`
		Responses map[string]json.RawMessage `json:"responses"`
	} `json:"paths"`
}

// The OpenAPI description documents exactly the routes the router has, with
// the roles the route tests find, and the route tests cover every route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc openAPIDoc
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Servers) != 1 || doc.Servers[0].URL != api.Prefix {
		t.Errorf("openapi %q, servers %+v", doc.OpenAPI, doc.Servers)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			for _, status := range []string{"401", "403", "429"} {
				if _, ok := op.Responses[status]; !ok {
					t.Errorf("%s: response %s not documented", key, status)
				}
			}
		}
	}
	routed := map[string]bool{}
	h := api.New(api.Options{Store: &devices.Store{}})
	err := chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(routed) < 30 {
		t.Fatalf("walked only %d routes", len(routed))
	}
	for _, k := range sortedKeys(routed) {
		if !documented[k] {
			t.Errorf("route %s is not in openapi.json", k)
		}
	}
	for _, k := range sortedKeys(documented) {
		if !routed[k] {
			t.Errorf("openapi.json documents %s, which is not routed", k)
		}
	}

	tested := map[string][]devices.Role{}
	for _, rc := range routeCases() {
		tested[rc.method+" "+rc.pattern] = rc.roles
	}
	for _, k := range sortedKeys(routed) {
		roles, ok := tested[k]
		if !ok {
			t.Errorf("route %s has no case in TestRoutes", k)
			continue
		}
		method, path, _ := strings.Cut(k, " ")
		if doc := doc.Paths[path][strings.ToLower(method)].Roles; !slices.Equal(doc, roles) {
			t.Errorf("%s: openapi.json x-roles %v, TestRoutes finds %v", k, doc, roles)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Two dispatchers transition the same ticket at once: exactly one wins, the
// other gets 409 with the reason.
func TestConcurrentTransition(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		other := f.newToken(t, "second desk", devices.RoleDispatcher, "")
		for round := range 5 {
			tk := f.ticket(t, "tech-1")
			path := fmt.Sprintf("/tickets/%d/transition", tk.ID)
			var wg sync.WaitGroup
			var results [2]response
			start := make(chan struct{})
			for i, tok := range []string{f.token[devices.RoleDispatcher], other} {
				wg.Go(func() {
					<-start
					results[i] = f.do(t, tok, "POST", path, `{"status": "offered", "note": "desk `+strconv.Itoa(i)+`"}`)
				})
			}
			close(start)
			wg.Wait()
			var ok, conflict int
			for _, r := range results {
				switch r.status {
				case http.StatusOK:
					ok++
				case http.StatusConflict:
					conflict++
					code, msg, _ := r.err(t)
					if code != "conflict" || !strings.Contains(msg, fmt.Sprintf("ticket %d", tk.ID)) {
						t.Errorf("round %d: loser's error %q: %q", round, code, msg)
					}
				default:
					t.Errorf("round %d: status %d: %s", round, r.status, r.body)
				}
			}
			if ok != 1 || conflict != 1 {
				t.Fatalf("round %d: %d won, %d conflicts; want exactly one of each", round, ok, conflict)
			}
			got, err := f.store.GetTicket(t.Context(), tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			states := 0
			for _, e := range got.Timeline {
				if e.Kind == proactive.TicketEventState {
					states++
				}
			}
			if states != 1 {
				t.Errorf("round %d: %d state events on the timeline, want 1", round, states)
			}
		}
	})
}

func TestIllegalTransition(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		tk := f.ticket(t, "")
		r := f.as(t, devices.RoleDispatcher, "POST", fmt.Sprintf("/tickets/%d/transition", tk.ID), `{"status": "visited"}`)
		want(t, r, http.StatusConflict)
		code, msg, _ := r.err(t)
		wantMsg := fmt.Sprintf("ticket %d is open: it cannot become visited, only review, offered, scheduled, closed, cancelled", tk.ID)
		if code != "conflict" || msg != wantMsg {
			t.Errorf("error %q %q, want conflict %q", code, msg, wantMsg)
		}
		// Closing through transition is refused: close takes an outcome.
		r = f.as(t, devices.RoleDispatcher, "POST", fmt.Sprintf("/tickets/%d/transition", tk.ID), `{"status": "closed"}`)
		want(t, r, http.StatusUnprocessableEntity)
		// A closed ticket cannot move again.
		done := f.ticket(t, "tech-1", "scheduled", "visited")
		want(t, f.as(t, devices.RoleDispatcher, "POST", fmt.Sprintf("/tickets/%d/close", done.ID), `{"outcome": "no_fault_found"}`), 200)
		r = f.as(t, devices.RoleDispatcher, "POST", fmt.Sprintf("/tickets/%d/transition", done.ID), `{"status": "cancelled"}`)
		want(t, r, http.StatusConflict)
		if _, msg, _ := r.err(t); !strings.Contains(msg, "final state") {
			t.Errorf("message %q", msg)
		}
		want(t, f.as(t, devices.RoleDispatcher, "POST", "/tickets/999999/transition", `{"status": "offered"}`), 404)
	})
}

// A technician token sees and changes only the tickets assigned to its
// technician, and may only mark a visit visited.
func TestTechnicianScope(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		theirs := f.ticket(t, "tech-2", "scheduled")
		mine := f.ticket(t, "tech-1", "scheduled")
		unassigned := f.ticket(t, "")
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
		}{
			{"read another's", "GET", fmt.Sprintf("/tickets/%d", theirs.ID), "", 404},
			{"read unassigned", "GET", fmt.Sprintf("/tickets/%d", unassigned.ID), "", 404},
			{"comment another's", "POST", fmt.Sprintf("/tickets/%d/comment", theirs.ID), `{"text": "hi"}`, 404},
			{"visit another's", "POST", fmt.Sprintf("/tickets/%d/transition", theirs.ID), `{"status": "visited"}`, 404},
			{"close another's", "POST", fmt.Sprintf("/tickets/%d/close", theirs.ID), `{"outcome": "part_replaced"}`, 404},
			{"cancel own", "POST", fmt.Sprintf("/tickets/%d/transition", mine.ID), `{"status": "cancelled"}`, 403},
			{"list another's", "GET", "/tickets?technician_id=tech-2", "", 403},
			{"read another technician", "GET", "/technicians/tech-2", "", 403},
			{"assign", "POST", fmt.Sprintf("/tickets/%d/assign", mine.ID), `{"technician_id": "tech-2"}`, 403},
		} {
			t.Run(tc.name, func(t *testing.T) {
				want(t, f.as(t, devices.RoleTechnician, tc.method, tc.path, tc.body), tc.status)
			})
		}
		for _, id := range []int64{theirs.ID, mine.ID} {
			got, err := f.store.GetTicket(t.Context(), id)
			if err != nil || got.Status != "scheduled" || len(got.Timeline) != 3 {
				t.Errorf("ticket %d changed: %s, %d events, %v", id, got.Status, len(got.Timeline), err)
			}
		}
		// Unassigned from them, a ticket is out of their reach at once.
		want(t, f.as(t, devices.RoleDispatcher, "POST", fmt.Sprintf("/tickets/%d/assign", mine.ID), `{"technician_id": ""}`), 200)
		want(t, f.as(t, devices.RoleTechnician, "POST", fmt.Sprintf("/tickets/%d/transition", mine.ID), `{"status": "visited"}`), 404)
	})
}

func TestTicketListFiltersAndPaging(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		var all []proactive.Ticket // newest first
		for i := range 7 {
			path := [][]proactive.TicketStatus{nil, {"offered"}, {"offered", "scheduled"}}[i%3]
			all = slices.Insert(all, 0, f.ticket(t, []string{"tech-1", "tech-2"}[i%2], path...))
		}
		ids := func(ts []proactive.Ticket) []int64 {
			out := []int64{}
			for _, x := range ts {
				out = append(out, x.ID)
			}
			return out
		}
		var got []proactive.Ticket
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			r := f.as(t, devices.RoleDispatcher, "GET", "/tickets?limit=3&cursor="+cursor, "")
			want(t, r, 200)
			var page devices.Page[proactive.Ticket]
			r.decode(t, &page)
			got = append(got, page.Items...)
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
		if !slices.Equal(ids(got), ids(all)) {
			t.Errorf("paged ids %v, want %v", ids(got), ids(all))
		}

		r := f.as(t, devices.RoleDispatcher, "GET", "/tickets?status=offered&status=scheduled&technician_id=tech-1", "")
		want(t, r, 200)
		var page devices.Page[proactive.Ticket]
		r.decode(t, &page)
		var wantIDs []int64
		for _, x := range all {
			if x.Technician == "tech-1" && (x.Status == "offered" || x.Status == "scheduled") {
				wantIDs = append(wantIDs, x.ID)
			}
		}
		if len(wantIDs) == 0 || !slices.Equal(ids(page.Items), wantIDs) {
			t.Errorf("filtered %v, want %v", ids(page.Items), wantIDs)
		}
		r = f.as(t, devices.RoleDispatcher, "GET", "/tickets?status=open,offered&active=true&device_id="+string(all[0].Device), "")
		want(t, r, 200)
		r.decode(t, &page)
		if !slices.Equal(ids(page.Items), []int64{all[0].ID}) {
			t.Errorf("by device: %v, want [%d]", ids(page.Items), all[0].ID)
		}
		want(t, f.as(t, devices.RoleDispatcher, "GET", "/tickets?cursor=xyz", ""), 400)
		want(t, f.as(t, devices.RoleDispatcher, "GET", "/tickets?active=maybe", ""), 400)
	})
}

// Requests that are not what the API reads are 400, 401 or 413, as JSON.
func TestMalformedRequests(t *testing.T) {
	f := newFixture(t, testenv.SQLite(t), func(o *api.Options) { o.MaxBodyBytes = 1024 })
	disp := f.token[devices.RoleDispatcher]
	for _, tc := range []struct {
		name, token, method, path, body string
		status                          int
		code, field                     string
	}{
		{"not JSON", disp, "POST", "/devices", `{"id": `, 400, "bad_request", ""},
		{"empty body", disp, "POST", "/devices", ``, 400, "bad_request", ""},
		{"unknown field", disp, "POST", "/devices", `{"id": "x", "colour": "red"}`, 400, "bad_request", "colour"},
		{"wrong type", disp, "POST", "/devices", `{"id": 7}`, 400, "bad_request", "id"},
		{"trailing data", disp, "POST", "/devices", `{"id": "x"} {}`, 400, "bad_request", ""},
		{"too large", disp, "POST", "/devices", `{"id": "` + strings.Repeat("x", 2000) + `"}`, 413, "too_large", ""},
		{"basic auth", "", "GET", "/me", "", 401, "unauthorized", ""},
		{"garbage token", "pat_nope", "GET", "/me", "", 401, "unauthorized", ""},
		{"unknown route", disp, "GET", "/nothing", "", 404, "not_found", ""},
		{"wrong method", disp, "PATCH", "/devices/d-base", "", 405, "method_not_allowed", ""},
		{"unknown query parameter", disp, "GET", "/tickets?device=d-base", "", 400, "bad_request", "device"},
		{"query on a route without any", disp, "GET", "/me?verbose=1", "", 400, "bad_request", "verbose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, tc.token, tc.method, tc.path, tc.body)
			want(t, r, tc.status)
			code, _, fields := r.err(t)
			if code != tc.code || (tc.field != "" && fields[tc.field] == "") {
				t.Errorf("code %q fields %v, want %q with %q", code, fields, tc.code, tc.field)
			}
		})
	}
}

// Each token has its own budget; over it, 429 with Retry-After.
func TestRateLimit(t *testing.T) {
	f := newFixture(t, testenv.SQLite(t), func(o *api.Options) { o.RateLimit, o.RateWindow = 3, time.Hour })
	for range 3 {
		want(t, f.as(t, devices.RoleDispatcher, "GET", "/me", ""), 200)
	}
	r := f.as(t, devices.RoleDispatcher, "GET", "/me", "")
	want(t, r, http.StatusTooManyRequests)
	if code, _, _ := r.err(t); code != "rate_limited" {
		t.Errorf("code %q", code)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s <= 0 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	want(t, f.as(t, devices.RoleAdmin, "GET", "/me", ""), 200)
}

func TestReloadProblems(t *testing.T) {
	f := newFixture(t, testenv.SQLite(t), func(o *api.Options) {
		o.Reload = func(context.Context) (int, error) {
			return 0, rules.Problems{{File: "rules/a.yaml", Line: 4, Rule: "hot", Msg: "when: unknown name tempx"},
				{File: "rules/a.yaml", Line: 4, Rule: "hot", Msg: "for: bad duration"}}.Err()
		}
	})
	r := f.as(t, devices.RoleAdmin, "POST", "/rules/reload", "")
	want(t, r, http.StatusUnprocessableEntity)
	code, msg, fields := r.err(t)
	if code != "invalid" || !strings.Contains(msg, "2 problem") || fields["rules/a.yaml:4 rule hot"] != "when: unknown name tempx" ||
		fields["rules/a.yaml:4 rule hot (2)"] != "for: bad duration" {
		t.Errorf("%q %q %v", code, msg, fields)
	}
}

// Without the optional services their routes answer 503.
func TestUnavailable(t *testing.T) {
	f := newFixture(t, testenv.SQLite(t), func(o *api.Options) {
		o.Rules, o.Reload, o.DeadLetters, o.Telemetry, o.Outreach = nil, nil, nil, nil, nil
	})
	tk := f.ticket(t, "tech-1", "scheduled")
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/rules", ""}, {"GET", "/alerts", ""}, {"POST", "/rules/reload", ""}, {"GET", "/dead-letters", ""},
		{"GET", "/devices/d-base/telemetry/latest", ""}, {"GET", "/devices/d-base/telemetry", ""},
		{"GET", fmt.Sprintf("/tickets/%d/slots", tk.ID), ""},
		{"POST", fmt.Sprintf("/tickets/%d/book", tk.ID), `{"technician_id": "tech-1", "start": "2026-03-11T08:00:00Z"}`},
		{"POST", fmt.Sprintf("/tickets/%d/visit", tk.ID), `{"outcome": "part_replaced", "technician_id": "tech-1"}`},
		{"GET", fmt.Sprintf("/tickets/%d/messages", tk.ID), ""},
		{"POST", fmt.Sprintf("/tickets/%d/messages", tk.ID), `{"text": "hello"}`},
		{"GET", "/appointments", ""}, {"GET", "/measures", ""},
	} {
		r := f.as(t, devices.RoleAdmin, c.method, c.path, c.body)
		want(t, r, http.StatusServiceUnavailable)
	}
}

// The platform's parts satisfy the API's interfaces.
var (
	_ api.RulesService = (*rules.Engine)(nil)
	_ api.Telemetry    = (*influx.Store)(nil)
	_ api.Outreach     = (*notify.Notifier)(nil)
)

// Failed authentications are limited per client address: past the limit
// even a good token from that address waits for the window to move on.
func TestAuthFailuresLimited(t *testing.T) {
	f := newFixture(t, testenv.SQLite(t), func(o *api.Options) { o.AuthFailures = 3 })
	good := f.token[devices.RoleDispatcher]
	want(t, f.do(t, good, "GET", "/me", ""), 200)
	for range 3 {
		want(t, f.do(t, "pat_0123456789abcdef_"+strings.Repeat("0", 64), "GET", "/me", ""), 401)
	}
	r := f.do(t, good, "GET", "/me", "")
	want(t, r, 429)
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if code, _, _ := r.err(t); code != "rate_limited" {
		t.Errorf("code %q, want rate_limited", code)
	}
}

// updated_since keeps the tickets changed since a time: a comment on the
// timeline counts, as a status change does.
func TestTicketListUpdatedSince(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		a, b, c := f.ticket(t, "tech-1"), f.ticket(t, "tech-1"), f.ticket(t, "tech-2")
		since := time.Now().UTC()
		testenv.Eventually(t, 0, func() error { // the store's clock must pass since
			if !time.Now().After(since) {
				return fmt.Errorf("clock still at %v", since)
			}
			return nil
		})
		if _, err := f.store.Comment(t.Context(), b.ID, "dispatcher", "called the customer"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.Transition(t.Context(), c.ID, proactive.TicketOffered, "dispatcher", ""); err != nil {
			t.Fatal(err)
		}
		r := f.as(t, devices.RoleDispatcher, "GET", "/tickets?updated_since="+since.Format(time.RFC3339Nano), "")
		want(t, r, 200)
		var page devices.Page[proactive.Ticket]
		r.decode(t, &page)
		var got []int64
		for _, x := range page.Items {
			got = append(got, x.ID)
		}
		if !slices.Equal(got, []int64{c.ID, b.ID}) {
			t.Errorf("updated since: %v, want [%d %d] (not %d)", got, c.ID, b.ID, a.ID)
		}
		want(t, f.as(t, devices.RoleDispatcher, "GET", "/tickets?updated_since=yesterday", ""), 400)
	})
}
