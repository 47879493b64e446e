package api_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// GET /measures over HTTP: the survey answers and the fix of a ticket, at
// the top level and per rule, on both dialects.
func TestMeasuresByRule(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn)
		ctx := t.Context()
		tk, _, phone := f.bookedTicket(t, "tech-1")
		if _, err := f.notifier.VisitDone(ctx, tk.ID, "", proactive.OutcomePartReplaced, "new compressor"); err != nil {
			t.Fatal(err)
		}
		for i, body := range []string{"3", "6"} { // CSAT 3, then NPS 6: a detractor
			if err := f.notifier.Inbound(ctx, fmt.Sprintf("SMmeasures%d", i), phone, body); err != nil {
				t.Fatalf("reply %q: %v", body, err)
			}
		}
		type group struct {
			Key        string  `json:"key"`
			CSAT       float64 `json:"csat"`
			NPS        float64 `json:"nps"`
			NPSAnswers int     `json:"nps_answers"`
			Detractors int     `json:"detractors"`
			Fixes      int     `json:"fixes"`
			FirstVisit float64 `json:"first_visit_fix_rate"`
		}
		var got struct {
			group
			By     string  `json:"by"`
			Groups []group `json:"groups"`
		}
		r := f.as(t, devices.RoleDispatcher, "GET", "/measures?by=rule", "")
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		r.decode(t, &got)
		want := group{Key: "compressor_wear", CSAT: 3, NPS: -100, NPSAnswers: 1, Detractors: 1, Fixes: 1, FirstVisit: 1}
		if got.By != "rule" || len(got.Groups) != 1 || got.Groups[0] != want {
			t.Errorf("by %q, groups %+v; want one: %+v", got.By, got.Groups, want)
		}
		want.Key = ""
		if got.group != want {
			t.Errorf("top level %+v, want %+v", got.group, want)
		}
	})
}
