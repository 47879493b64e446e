package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
)

// A ticket in review shows why nobody was texted, on the board and its
// page, with Approve and Dismiss; approving texts the customer once,
// dismissing closes it as a false alarm, and the rules page shows the
// rule's precision.
func TestReviewActions(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		// Past the contact cooldown of the fixture's offer to Alice.
		e.clock.Add(8 * 24 * time.Hour)
		b := e.signedIn("dispatcher")
		a := alert("fridge-1", "fan", proactive.SeverityWarning, e.clock.Now())
		a.Contact = proactive.ContactReview
		e.n.Alerts(e.ctx, []proactive.Alert{a})
		review := e.ticket("fridge-1", "fan")
		if review.Status != proactive.TicketReview {
			t.Fatalf("ticket %s, want review", review.Status)
		}
		resp, page := b.get("/")
		wantStatus(t, resp, page, http.StatusOK)
		wantIn(t, page, `id="col-review"`, fmt.Sprintf(`href="/tickets/%d"`, review.ID), "No SMS: Review")

		path := fmt.Sprintf("/tickets/%d", review.ID)
		resp, page = b.get(path)
		wantStatus(t, resp, page, http.StatusOK)
		wantIn(t, page, "the rule asks for a review before texting", `action="`+path+`/approve"`, `action="`+path+`/dismiss"`,
			`name="csrf"`, "No SMS sent: Review")

		// Without the CSRF token: refused, nothing sent.
		resp, page = b.do(http.MethodPost, path+"/approve", url.Values{})
		if resp.StatusCode == http.StatusSeeOther {
			t.Fatalf("approve without CSRF went through")
		}
		resp, page = b.post(path+"/approve", url.Values{})
		wantStatus(t, resp, page, http.StatusSeeOther)
		if err := e.n.Poll(e.ctx); err != nil {
			t.Fatal(err)
		}
		if got := e.sms.to("+33611111111"); len(got) != 2 {
			t.Fatalf("Alice got %d SMS, want the fixture's offer and this one", len(got))
		}
		if tk := must(e.store.GetTicket(e.ctx, review.ID)); tk.Status != proactive.TicketOffered {
			t.Fatalf("after approval: %s, want offered", tk.Status)
		}
		_, page = b.get(path)
		wantNotIn(t, page, `id="held"`)
		// Approving again is a conflict shown on the page.
		resp, page = b.post(path+"/approve", url.Values{})
		wantStatus(t, resp, page, http.StatusConflict)

		// The open ticket without consent: dismissed with a note.
		resp, page = b.post(fmt.Sprintf("/tickets/%d/dismiss", e.open), url.Values{"note": {"sensor unplugged"}})
		wantStatus(t, resp, page, http.StatusSeeOther)
		tk := must(e.store.GetTicket(e.ctx, e.open))
		if tk.Status != proactive.TicketClosed || tk.Outcome != proactive.OutcomeFalseAlarm || tk.OutcomeNotes != "sensor unplugged" {
			t.Fatalf("after dismissal: %s %s %q", tk.Status, tk.Outcome, tk.OutcomeNotes)
		}
		resp, page = b.get("/rules")
		wantStatus(t, resp, page, http.StatusOK)
		wantIn(t, page, "0% of 1 outcome")

		// A technician may not approve.
		paula := e.signedIn("paula")
		resp, page = paula.post(fmt.Sprintf("/tickets/%d/approve", e.critical), url.Values{})
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
			t.Errorf("technician's approval answered %d", resp.StatusCode)
		}
	})
}
