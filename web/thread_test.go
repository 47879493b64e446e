package web_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
)

// The ticket's messages read as the conversation went: the offer, the
// customer's reply, then the confirmation it caused, even though the
// confirmation was queued at the time the reply was decided (here the
// clock stands still, so every message has the same time); and a
// provider status that repeats the outbox's is shown once.
func TestTicketThreadInConversationOrder(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	e.sms.mu.Lock()
	e.sms.status = "sent"
	e.sms.mu.Unlock()
	if code := e.reply("+33611111111", "1"); code != http.StatusOK {
		t.Fatalf("reply answered %d", code)
	}
	if err := e.n.Poll(e.ctx); err != nil {
		t.Fatal(err)
	}
	b := e.signedIn("dispatcher")
	resp, page := b.get(fmt.Sprintf("/tickets/%d", e.offered))
	wantStatus(t, resp, page, http.StatusOK)
	start := strings.Index(page, `<ol class="thread">`)
	if start < 0 {
		t.Fatalf("no thread on the page:\n%s", page)
	}
	thread := page[start:]
	thread = thread[:strings.Index(thread, "</ol>")]
	offer, reply, confirm := strings.Index(thread, "Us (Offer)"), strings.Index(thread, `<p class="body">1</p>`),
		strings.Index(thread, "Us (Confirm)")
	if offer < 0 || reply < 0 || confirm < 0 || !(offer < reply && reply < confirm) {
		t.Errorf("thread not in conversation order (offer %d, reply %d, confirm %d):\n%s", offer, reply, confirm, thread)
	}
	if strings.Contains(thread, "sent, sent") {
		t.Errorf("a delivery status repeats the message's status:\n%s", thread)
	}
}

// An offer held for the incident wait says so on the timeline, not that
// no SMS was sent.
func TestTimelineOfferHeldForIncidentWait(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	must(e.store.Record(e.ctx, e.open, proactive.TicketEventMessage, "notify", map[string]any{"outreach": "waiting",
		"group_wait": "30s", "note": "the offer waits in case many devices fire this rule at once (an incident)"}))
	resp, page := e.signedIn("dispatcher").get(fmt.Sprintf("/tickets/%d", e.open))
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, "Offer held for 30s: the offer waits in case many devices fire this rule at once (an incident)")
	wantNotIn(t, page, "No SMS sent: (the offer waits")
}

// The survey messages' kinds are acronyms on the ticket page: "Us (NPS)",
// "SMS NPS queued", not "Nps".
func TestTicketLabelsSurveyKinds(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	e.surveyed() // satisfaction 4, then NPS 9
	resp, page := e.signedIn("dispatcher").get(fmt.Sprintf("/tickets/%d", e.offered))
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, "Us (NPS)", "SMS NPS queued")
	wantNotIn(t, page, "Nps")
}

// A device without an address says so on its ticket, rather than showing
// an empty Site.
func TestTicketSiteWithoutAddress(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t))
	tk := must(e.store.GetTicket(e.ctx, e.offered))
	d := must(e.store.GetDevice(e.ctx, tk.Device))
	d.Site = proactive.Address{}
	must(e.store.UpdateDevice(e.ctx, d))
	resp, page := e.signedIn("dispatcher").get(fmt.Sprintf("/tickets/%d", e.offered))
	wantStatus(t, resp, page, http.StatusOK)
	wantIn(t, page, `<dd id="site">No address registered</dd>`)
}
