package web_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
)

// surveyed takes the fixture's offered ticket to a fixed, rated visit:
// slot 1 booked, the part replaced, satisfaction 4 and NPS 9.
func (e *env) surveyed() {
	e.t.Helper()
	if code := e.reply("+33611111111", "1"); code != http.StatusOK {
		e.t.Fatalf("reply answered %d", code)
	}
	must(e.n.VisitDone(e.ctx, e.offered, "", proactive.OutcomePartReplaced, "new compressor"))
	e.reply("+33611111111", "4")
	e.reply("+33611111111", "9")
}

// The measures page: all tickets, then per month, model or rule; staff
// only; a grouping it does not know is a 400.
func TestMeasuresPage(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	b := e.signedIn("dispatcher")
	resp, page := b.get("/measures")
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, "<h1>Measures</h1>", `<a href="/measures"`, "No survey answers or fixes yet.", "<h2 id=\"groups-h\">By Month</h2>")

	e.surveyed()
	_, page = b.get("/measures")
	wantIn(t, page, "4.00 <span class=\"meta\">of 1 answer</span>", "&#43;100 <span class=\"meta\">of 1 answer: 1 promoter, 0 passives, 0 detractors",
		"100% <span class=\"meta\">1 of 1 fix</span>",
		`<th scope="row" data-label="Month">2026-03</th>`, `<a href="/measures?by=month" aria-current="page">Month</a>`)
	_, page = b.get("/measures?by=model")
	wantIn(t, page, `<th scope="row" data-label="Model">fridge-a200</th>`, `<a href="/measures?by=model" aria-current="page">Model</a>`)
	_, page = b.get("/measures?by=rule")
	wantIn(t, page, `<th scope="row" data-label="Rule">compressor_wear</th>`)
	// The answers are on the ticket's timeline, as such.
	_, page = b.get(fmt.Sprintf("/tickets/%d", e.offered))
	wantIn(t, page, "(satisfaction answer 4 on 1–5)", "(NPS answer 9 on 0–10)")

	resp, page = b.get("/measures?by=week")
	wantStatus(t, resp, page, http.StatusBadRequest)
	resp, page = e.signedIn("leo").get("/measures")
	wantStatus(t, resp, page, http.StatusForbidden)
}
