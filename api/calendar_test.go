package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	ics "github.com/arran4/golang-ical"

	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// A technician's calendar feed is what a calendar app reads: an iCalendar
// document, fetched with the token in the URL and no header, with each
// booked visit at its time, where and whom to call.
func TestTechnicianCalendar(t *testing.T) {
	f := newFixture(t, testenv.SQLite(t))
	tk, visit, phone := f.bookedTicket(t, "tech-1")
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(f.url + path) // as a calendar app: no header
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/technicians/tech-1/calendar.ics?token=" + url.QueryEscape(f.token[devices.RoleTechnician]))
	if code != http.StatusOK {
		t.Fatalf("feed: %d %s", code, body)
	}
	cal, err := ics.ParseCalendar(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the feed does not parse as iCalendar: %v\n%s", err, body)
	}
	var found bool
	for _, ev := range cal.Events() {
		if ev.Id() != fmt.Sprintf("visit-%d@proactive", visit.ID) {
			continue
		}
		found = true
		start, err1 := ev.GetStartAt()
		end, err2 := ev.GetEndAt()
		if err1 != nil || err2 != nil || !start.Equal(visit.Start) || !end.Equal(visit.End) {
			t.Errorf("visit at %v–%v (%v %v), want %v–%v", start, end, err1, err2, visit.Start, visit.End)
		}
		summary := ev.GetProperty(ics.ComponentPropertySummary).Value
		desc := ev.GetProperty(ics.ComponentPropertyDescription).Value
		if !strings.Contains(summary, fmt.Sprintf("ticket %d", tk.ID)) || !strings.Contains(summary, string(tk.Device)) {
			t.Errorf("summary %q, want the device and ticket %d", summary, tk.ID)
		}
		if !strings.Contains(desc, phone) {
			t.Errorf("description %q, want the customer's phone %s", desc, phone)
		}
	}
	if !found {
		t.Errorf("no event of visit %d in\n%s", visit.ID, body)
	}
	if code, _ := get("/technicians/tech-1/calendar.ics?token=pat_wrong"); code != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d, want 401", code)
	}
	// The token in the query string is for feeds only.
	if code, _ := get("/technicians/tech-1?token=" + url.QueryEscape(f.token[devices.RoleTechnician])); code != http.StatusUnauthorized {
		t.Errorf("a token in the query of a JSON route: %d, want 401", code)
	}
}
