package notify_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

// TestWholeLoop follows one alert to a closed ticket with a satisfaction
// score: offer with three slots, signed reply "2", booking for the right
// technician, confirmation, reminder the day before, visit done, survey,
// reply "5".
func TestWholeLoop(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.fire("fridge-1", "compressor")

		posts := e.tw.Posts()
		if len(posts) != 1 {
			t.Fatalf("fake Twilio got %d posts, want the offer", len(posts))
		}
		offer := posts[0]
		if offer.To != "+33611111111" || offer.From != "+15005550006" || offer.MessagingServiceSid != "" {
			t.Errorf("offer posted To=%s From=%s MessagingServiceSid=%s", offer.To, offer.From, offer.MessagingServiceSid)
		}
		if !strings.HasPrefix(offer.StatusCallback, e.web.URL+notify.StatusPath+"?m=") {
			t.Errorf("StatusCallback = %q, want our status webhook", offer.StatusCallback)
		}
		contains(t, offer.Body, "fridge-a200", "compressor", "about 5 days",
			"1) Mon 9 Mar 10:30-12:30", "2) Tue 10 Mar 08:00-10:00", "3) Wed 11 Mar 08:00-10:00", "Reply STOP to opt out, HELP for help.")
		if n := utf8.RuneCountInString(offer.Body); n > notify.MaxBody {
			t.Errorf("offer is %d characters", n)
		}
		tk := e.ticket("fridge-1", "compressor")
		if tk.Status != proactive.TicketOffered {
			t.Fatalf("ticket is %s, want offered", tk.Status)
		}

		if code := e.reply("+33611111111", " 2 "); code != 200 {
			t.Fatalf("reply answered %d", code)
		}
		e.poll()
		tk = e.ticket("fridge-1", "compressor")
		if tk.Status != proactive.TicketScheduled || tk.Technician != "tech-paris" {
			t.Fatalf("after reply 2: ticket %s assigned to %q, want scheduled to tech-paris", tk.Status, tk.Technician)
		}
		appts := must(e.n.Appointments(e.ctx, notify.AppointmentFilter{Technician: "tech-paris"}))
		if len(appts) != 1 || !appts[0].Start.Equal(time.Date(2026, 3, 10, 8, 0, 0, 0, paris)) || appts[0].Ticket != tk.ID {
			t.Fatalf("appointments = %+v, want Tuesday 08:00 for ticket %d", appts, tk.ID)
		}
		got := e.wantSent("+33611111111", 2)
		contains(t, got[1], "Booked", "Tue 10 Mar 08:00-10:00")

		// Nothing more before the reminder time, the day before at 18:00.
		e.clock.Set(time.Date(2026, 3, 9, 17, 59, 0, 0, paris))
		e.poll()
		e.wantSent("+33611111111", 2)
		e.clock.Set(time.Date(2026, 3, 9, 18, 0, 0, 0, paris))
		e.poll()
		got = e.wantSent("+33611111111", 3)
		contains(t, got[2], "Reminder", "tomorrow", "08:00-10:00")

		e.clock.Set(time.Date(2026, 3, 10, 10, 5, 0, 0, paris))
		if _, err := e.n.VisitDone(e.ctx, tk.ID, "tech-lyon", proactive.OutcomePartReplaced, "new compressor"); proactive.ErrorCode(err) != proactive.EForbidden {
			t.Errorf("another technician marking the visit done: %v, want forbidden", err)
		}
		must(e.n.VisitDone(e.ctx, tk.ID, "tech-paris", proactive.OutcomePartReplaced, "new compressor"))
		e.poll()
		got = e.wantSent("+33611111111", 4)
		contains(t, got[3], "How was the visit", "1 (poor) to 5 (excellent)")
		if tk = e.ticket("fridge-1", "compressor"); tk.Status != proactive.TicketVisited {
			t.Fatalf("after the visit: ticket %s, want visited", tk.Status)
		}

		// The satisfaction answer closes the ticket; the customer, never
		// asked before, gets the NPS question next.
		e.reply("+33611111111", "5")
		e.poll()
		tk = e.ticket("fridge-1", "compressor")
		if tk.Status != proactive.TicketClosed || tk.Outcome != proactive.OutcomePartReplaced {
			t.Errorf("ticket %s with outcome %q, want closed part_replaced", tk.Status, tk.Outcome)
		}
		got = e.wantSent("+33611111111", 5)
		contains(t, got[4], "recommend", "0 (not at all) to 10")
		e.reply("+33611111111", "9")
		e.poll()
		conv := must(e.n.Conversation(e.ctx, tk.ID))
		if conv.CSAT != 5 || conv.NPS == nil || *conv.NPS != 9 || conv.Stage != "done" {
			t.Errorf("conversation = %+v, want CSAT 5, NPS 9, done", conv)
		}
		got = e.wantSent("+33611111111", 6)
		contains(t, got[5], "Thank you")

		m := must(e.n.Measures(e.ctx))
		if m.CSAT != 5 || m.CSATAnswers != 1 || m.OfferAcceptance != 1 || m.FirstVisitFixRate != 1 || m.RulePrecision["compressor_wear"] != 1 {
			t.Errorf("measures = %+v", m)
		}
		if m.TimeToVisit != time.Date(2026, 3, 10, 10, 5, 0, 0, paris).Sub(monday0830) {
			t.Errorf("time to visit = %v", m.TimeToVisit)
		}
	})
}
