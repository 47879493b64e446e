package api_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

// Booking and visit reports check who may say what: a technician reports
// only their own visit, staff must name the visit's technician.
func TestBookAndVisitRules(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		open, _ := f.outreachTicket(t)
		book := fmt.Sprintf("/tickets/%d/book", open.ID)
		for _, tc := range []struct {
			name, body string
			fields     []string
		}{
			{"empty", `{}`, []string{"technician_id", "start"}},
			{"ends before it starts", `{"technician_id": "tech-1", "start": "2026-03-12T09:00:00Z", "end": "2026-03-12T08:00:00Z"}`, []string{"end"}},
		} {
			t.Run("book "+tc.name, func(t *testing.T) {
				r := f.as(t, dispatcher, "POST", book, tc.body)
				want(t, r, 422)
				hasFields("invalid", tc.fields...)(t, f, r)
			})
		}
		want(t, f.as(t, dispatcher, "POST", "/tickets/999999/book", `{"technician_id": "tech-1", "start": "2026-03-12T09:00:00Z"}`), 404)
		// A slot in the past is taken, whatever the calendar says.
		want(t, f.as(t, dispatcher, "POST", book, `{"technician_id": "tech-1", "start": "2026-03-01T09:00:00Z"}`), 409)

		mine, _, _ := f.bookedTicket(t, "tech-1")
		theirs, _, _ := f.bookedTicket(t, "tech-2")
		visit := func(id int64) string { return fmt.Sprintf("/tickets/%d/visit", id) }
		for _, tc := range []struct {
			name       string
			role       devices.Role
			path, body string
			status     int
			field      string
		}{
			{"technician names another", technician, visit(mine.ID), `{"outcome": "part_replaced", "technician_id": "tech-2"}`, 403, ""},
			{"technician, another's ticket", technician, visit(theirs.ID), `{"outcome": "part_replaced"}`, 404, ""},
			{"staff name no one", dispatcher, visit(theirs.ID), `{"outcome": "part_replaced"}`, 422, "technician_id"},
			{"staff name the wrong one", dispatcher, visit(theirs.ID), `{"outcome": "part_replaced", "technician_id": "tech-1"}`, 422, "technician_id"},
			{"notes too long", technician, visit(mine.ID), fmt.Sprintf(`{"outcome": "part_replaced", "notes": %q}`, strings.Repeat("x", 2001)), 422, "notes"},
			{"no booked visit", dispatcher, visit(open.ID), `{"outcome": "no_fault_found", "technician_id": "tech-1"}`, 404, ""},
			{"staff name the right one", dispatcher, visit(theirs.ID), `{"outcome": "no_fault_found", "technician_id": "tech-2"}`, 200, ""},
			{"reported twice", dispatcher, visit(theirs.ID), `{"outcome": "no_fault_found", "technician_id": "tech-2"}`, 404, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := f.as(t, tc.role, "POST", tc.path, tc.body)
				want(t, r, tc.status)
				if tc.field != "" {
					hasFields("invalid", tc.field)(t, f, r)
				}
			})
		}
		got, err := f.store.GetTicket(t.Context(), theirs.ID)
		if err != nil || got.Status != proactive.TicketVisited {
			t.Errorf("ticket %d is %s, %v; want visited", theirs.ID, got.Status, err)
		}
		// The timeline names who reported the visit: the dispatcher's token.
		reporter := ""
		for _, ev := range got.Timeline {
			if ev.Kind == proactive.TicketEventState && strings.Contains(string(ev.Body), `"visited"`) {
				reporter = ev.Actor
			}
		}
		if reporter != string(devices.RoleDispatcher) {
			t.Errorf("visit reported by %q on the timeline, want the dispatcher's token %q", reporter, devices.RoleDispatcher)
		}
		if got, err := f.store.GetTicket(t.Context(), mine.ID); err != nil || got.Status != proactive.TicketScheduled {
			t.Errorf("refused reports changed ticket %d: %s, %v", mine.ID, got.Status, err)
		}
	})
}

// The SMS thread of a ticket whose customer was never texted is empty, and
// such a customer cannot be texted through the API.
func TestMessagesWithoutConsent(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		tk := f.ticket(t, "")
		path := fmt.Sprintf("/tickets/%d/messages", tk.ID)
		r := f.as(t, dispatcher, "GET", path, "")
		want(t, r, 200)
		jsonHas(`{"conversation":null,"items":[]}`)(t, f, r)
		r = f.as(t, dispatcher, "POST", path, `{"text": "hello"}`)
		want(t, r, 409)
		hasFields("conflict")(t, f, r)
		want(t, f.as(t, dispatcher, "POST", "/tickets/999999/messages", `{"text": "hello"}`), 404)
		want(t, f.as(t, dispatcher, "GET", "/tickets/999999/messages", ""), 404)
	})
}

// Staff filter appointments by technician, ticket and start time.
func TestAppointmentFilters(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		var all []notify.Appointment
		// Each on a day of its own, for the date filters below.
		var after time.Time
		for _, tech := range []string{"tech-1", "tech-2", "tech-1"} {
			tk, _ := f.outreachTicket(t)
			a := f.bookAfter(t, tk.ID, tech, after)
			after = a.Start.Truncate(24 * time.Hour).Add(24 * time.Hour)
			all = append(all, a)
		}
		ids := func(path string) []int64 {
			t.Helper()
			r := f.as(t, dispatcher, "GET", path, "")
			want(t, r, 200)
			var got struct{ Items []notify.Appointment }
			r.decode(t, &got)
			out := []int64{}
			for _, a := range got.Items {
				out = append(out, a.ID)
			}
			return out
		}
		day := func(a notify.Appointment) string { return a.Start.Format(time.DateOnly) }
		for _, tc := range []struct {
			path string
			want []int64
		}{
			{"/appointments", []int64{all[0].ID, all[1].ID, all[2].ID}},
			{"/appointments?technician_id=tech-1", []int64{all[0].ID, all[2].ID}},
			{fmt.Sprintf("/appointments?ticket_id=%d", all[1].Ticket), []int64{all[1].ID}},
			{"/appointments?from=" + day(all[1]) + "&to=" + day(all[2]), []int64{all[1].ID}},
			{"/appointments?from=" + all[2].Start.Format(time.RFC3339), []int64{all[2].ID}},
			{"/appointments?to=-1h", []int64{}},
		} {
			if got := ids(tc.path); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %v, want %v", tc.path, got, tc.want)
			}
		}
		// Paging: two at a time, then the rest through the cursor.
		var first struct {
			Items []notify.Appointment
			Next  string
		}
		r := f.as(t, dispatcher, "GET", "/appointments?limit=2", "")
		want(t, r, 200)
		r.decode(t, &first)
		if len(first.Items) != 2 || first.Items[0].ID != all[0].ID || first.Next == "" {
			t.Fatalf("first page %+v, want the first two and a cursor", first)
		}
		if got := ids("/appointments?limit=2&cursor=" + url.QueryEscape(first.Next)); !slices.Equal(got, []int64{all[2].ID}) {
			t.Errorf("second page %v, want %v", got, []int64{all[2].ID})
		}
		want(t, f.as(t, dispatcher, "GET", "/appointments?cursor=nonsense", ""), 422)

		r = f.as(t, dispatcher, "GET", "/appointments?from=2026-03-12&to=2026-03-11", "")
		want(t, r, 400)
		hasFields("bad_request", "from")(t, f, r)
	})
}
