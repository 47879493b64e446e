package notify_test

import (
	"strings"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
)

// TestVisitDoneByRecordsActor: the user who records a visit is the actor of
// the ticket's visited (and, without a survey, closed) events; VisitDone
// without one keeps naming the technician.
func TestVisitDoneByRecordsActor(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		for _, c := range []struct{ dev, actor, want string }{
			{"fridge-1", "dispatch-anna", "dispatch-anna"},
			{"fridge-2", "", "tech-paris"},
		} {
			e.fire(c.dev, "compressor")
			tk := e.ticket(c.dev, "compressor")
			phone := map[string]string{"fridge-1": alice, "fridge-2": "+33622222222"}[c.dev]
			e.reply(phone, "1")
			a := must(e.n.VisitDoneBy(e.ctx, tk.ID, "tech-paris", proactive.OutcomeFaultConfirmed, "", c.actor))
			if a.Status != "done" {
				t.Errorf("%s: appointment %+v", c.dev, a)
			}
			tk = must(e.store.GetTicket(e.ctx, tk.ID))
			ev := tk.Timeline[len(tk.Timeline)-1]
			for _, x := range tk.Timeline {
				if x.Kind == proactive.TicketEventState && strings.Contains(string(x.Body), `"to":"visited"`) {
					ev = x
				}
			}
			if ev.Actor != c.want || !strings.Contains(string(ev.Body), `"to":"visited"`) {
				t.Errorf("%s: visited event %+v, want actor %q", c.dev, ev, c.want)
			}
		}
		tk := e.ticket("fridge-1", "compressor")
		if _, err := e.n.VisitDoneBy(e.ctx, tk.ID, "tech-paris", proactive.OutcomeFaultConfirmed, "", strings.Repeat("x", 101)); proactive.ErrorCode(err) != proactive.EInvalid {
			t.Errorf("a 101-character actor: %v, want invalid", err)
		}
	})
}

// TestInboundRecordsTicket: an inbound message is stored with the ticket
// of the conversation it answers, and without one when none is open.
func TestInboundRecordsTicket(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.reply(alice, "hello") // SMin000001: no conversation yet
		e.fire("fridge-1", "compressor")
		tk := e.ticket("fridge-1", "compressor")
		e.reply(alice, "maybe") // SMin000002
		e.reply(alice, "HELP")  // SMin000003: a keyword, still within the conversation
		for sid, want := range map[string]int64{"SMin000001": 0, "SMin000002": tk.ID, "SMin000003": tk.ID} {
			m, err := e.store.InboundMessage(e.ctx, sid)
			if err != nil {
				t.Fatalf("%s: %v", sid, err)
			}
			if m.Ticket != want {
				t.Errorf("%s: ticket %d, want %d", sid, m.Ticket, want)
			}
		}
	})
}
