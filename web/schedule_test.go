package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

func TestSchedule(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		slots := must(e.n.Slots(e.ctx, e.offered))
		must(e.n.Book(e.ctx, e.offered, slots[0], "test"))
		// Leo is away on Wednesday.
		leo := must(e.store.GetTechnician(e.ctx, "tech-lyon"))
		wed := time.Date(2026, 3, 11, 0, 0, 0, 0, paris)
		leo.TimeOff = []devices.TimeOff{{Start: wed, End: wed.Add(24 * time.Hour), Reason: "training"}}
		must(e.store.UpdateTechnician(e.ctx, leo))
		visit := slots[0].Start.In(paris)

		b := e.signedIn("dispatcher")
		resp, page := b.get("/schedule")
		wantStatus(t, resp, page, http.StatusOK)
		wantIn(t, page, "<h1>Schedule</h1>", `aria-current="page">Schedule</a>`, "Paula", "Leo",
			"Mon 9 Mar", "Sun 15 Mar", fmt.Sprintf(`<a href="/tickets/%d">#%d</a> Compressor · fridge-1`, e.offered, e.offered),
			fmt.Sprintf("%s</time>–%s", visit.Format("15:04"), slots[0].End.In(paris).Format("15:04")),
			// Monday: Paula is free from now to the visit and after it.
			fmt.Sprintf(`Free <time datetime="2026-03-09T07:30:00Z">08:30</time>–%s`, visit.Format("15:04")),
			"Not working", // the weekend, and Leo's Wednesday
			`<summary>Reassign<span class="visually-hidden"> ticket #`)
		if n := strings.Count(page, `class="wday`); n != 14 {
			t.Errorf("%d day cells, want 7 for each of 2 technicians", n)
		}

		t.Run("reassign", func(t *testing.T) {
			resp, page := b.post(fmt.Sprintf("/tickets/%d/assign", e.offered),
				url.Values{"technician": {"tech-lyon"}, "next": {"/schedule?from=2026-03-09"}})
			wantStatus(t, resp, page, http.StatusSeeOther)
			if loc := resp.Header.Get("Location"); loc != "/schedule?from=2026-03-09" {
				t.Errorf("back to %q, want the schedule", loc)
			}
			if tk := must(e.store.GetTicket(e.ctx, e.offered)); tk.Technician != "tech-lyon" {
				t.Errorf("ticket assigned to %q, want tech-lyon", tk.Technician)
			}
			_, page = b.get("/schedule?from=2026-03-09")
			wantIn(t, page, "Ticket assigned to tech-lyon.", "ticket assigned to tech-lyon")
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
