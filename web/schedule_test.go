package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

func TestSchedule(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		slots := must(e.n.Slots(e.ctx, e.offered))
		must(e.n.Book(e.ctx, e.offered, slots[0], "test"))
		// Leo is away on Wednesday, and covers Paris too.
		leo := must(e.store.GetTechnician(e.ctx, "tech-lyon"))
		wed := time.Date(2026, 3, 11, 0, 0, 0, 0, paris)
		leo.TimeOff = []proactive.TimeOff{{Start: wed, End: wed.Add(24 * time.Hour), Reason: "training"}}
		leo.ServiceArea = []string{"69", "75"}
		must(e.store.UpdateTechnician(e.ctx, leo))
		visit := slots[0].Start.In(paris)

		b := e.signedIn("dispatcher")
		resp, page := b.get("/schedule")
		wantStatus(t, resp, page, http.StatusOK)
		wantIn(t, page, "<h1>Schedule</h1>", `aria-current="page">Schedule</a>`, "Paula", "Leo",
			"Mon 9 Mar", "Sun 15 Mar", fmt.Sprintf(`<a href="/tickets/%d">#%d</a> Compressor · fridge-1`, e.offered, e.offered),
			fmt.Sprintf("%s–%s CET</time>", visit.Format("15:04"), slots[0].End.In(paris).Format("15:04")),
			// Monday: Paula is free from now to the visit and after it.
			fmt.Sprintf(`Free <time datetime="2026-03-09T07:30:00Z">08:30–%s CET</time>`, visit.Format("15:04")),
			"Not working", // the weekend, and Leo's Wednesday
			fmt.Sprintf(`<summary>Move<span class="visually-hidden"> the visit of ticket #%d</span> to another technician</summary>`, e.offered),
			`<option value="tech-lyon">Leo (tech-lyon)</option>`)
		if n := strings.Count(page, `class="wday`); n != 14 {
			t.Errorf("%d day cells, want 7 for each of 2 technicians", n)
		}

		t.Run("move the visit", func(t *testing.T) {
			resp, page := b.post(fmt.Sprintf("/tickets/%d/reassign", e.offered),
				url.Values{"technician": {"tech-lyon"}, "next": {"/schedule?from=2026-03-09"}})
			wantStatus(t, resp, page, http.StatusSeeOther)
			if loc := resp.Header.Get("Location"); loc != "/schedule?from=2026-03-09" {
				t.Errorf("back to %q, want the schedule", loc)
			}
			if tk := must(e.store.GetTicket(e.ctx, e.offered)); tk.Technician != "tech-lyon" {
				t.Errorf("ticket assigned to %q, want tech-lyon", tk.Technician)
			}
			if apps := must(e.n.Appointments(e.ctx, notify.AppointmentFilter{Ticket: e.offered})); len(apps) != 1 ||
				apps[0].Technician != "tech-lyon" || !apps[0].Start.Equal(slots[0].Start) {
				t.Errorf("visits of the ticket %+v, want one with Leo at %s", apps, slots[0].Start)
			}
			_, page = b.get("/schedule?from=2026-03-09")
			wantIn(t, page, fmt.Sprintf("The visit of ticket #%d moved to Leo (tech-lyon).", e.offered),
				`<option value="tech-paris">Paula (tech-paris)</option>`)
			leoRow := page[strings.Index(page, `id="tw-tech-lyon"`):]
			wantIn(t, leoRow, fmt.Sprintf(`<a href="/tickets/%d">#%d</a>`, e.offered, e.offered))
		})
		t.Run("to a busy technician", func(t *testing.T) {
			// Paula takes another visit at that time: the first cannot go back.
			must(e.n.Book(e.ctx, e.critical, slots[0], "test"))
			resp, page := b.post(fmt.Sprintf("/tickets/%d/reassign", e.offered),
				url.Values{"technician": {"tech-paris"}, "next": {"/schedule?from=2026-03-09"}})
			wantStatus(t, resp, page, http.StatusConflict)
			wantIn(t, page, "<h1>Schedule</h1>", "technician tech-paris is not free", "another visit then")
			if apps := must(e.n.Appointments(e.ctx, notify.AppointmentFilter{Ticket: e.offered})); apps[0].Technician != "tech-lyon" {
				t.Errorf("a refused move changed the visit: %+v", apps)
			}
		})
		t.Run("without the CSRF token", func(t *testing.T) {
			resp, page := b.post(fmt.Sprintf("/tickets/%d/reassign", e.offered),
				url.Values{"technician": {"tech-paris"}, "csrf": {"forged"}})
			wantStatus(t, resp, page, http.StatusForbidden)
		})
		t.Run("another week", func(t *testing.T) {
			_, page := b.get("/schedule?from=2026-03-16")
			wantIn(t, page, "Mon 16 Mar", "Back to today", `href="/schedule?from=2026-03-09" rel="prev"`)
			wantNotIn(t, page, "Mon 9 Mar", fmt.Sprintf("#%d</a>", e.offered))
		})
		t.Run("bad date", func(t *testing.T) {
			resp, page := b.get("/schedule?from=next-week")
			wantStatus(t, resp, page, http.StatusUnprocessableEntity)
		})
		t.Run("technicians have their day instead", func(t *testing.T) {
			resp, page := e.signedIn("paula").get("/schedule")
			wantStatus(t, resp, page, http.StatusForbidden)
		})
	})
}
