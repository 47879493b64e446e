package notify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/internal/faketwilio"
)

// TestConversationTable plays every keyword at every stage of the
// conversation through the real webhook, and checks the answer, the
// ticket's status and its follow-up.
func TestConversationTable(t *testing.T) {
	type stage struct {
		name  string
		setup func(e *env) // leaves alice's fridge-1/compressor ticket at the stage
	}
	offered := func(e *env) { e.fire("fridge-1", "compressor") }
	stages := []stage{
		{"offered", offered},
		{"booked", func(e *env) { offered(e); e.reply(alice, "2"); e.poll() }},
		{"declined", func(e *env) { offered(e); e.reply(alice, "NO"); e.poll() }},
		{"expired", func(e *env) { offered(e); e.clock.Add(73 * time.Hour); e.poll() }},
		{"opted out", func(e *env) { offered(e); e.reply(alice, "STOP"); e.poll() }},
	}
	type want struct {
		answer   string // a part of the answer; "" for none
		status   proactive.TicketStatus
		followUp string
	}
	// What each keyword does at each stage, in the order of stages.
	table := []struct {
		keyword string
		want    [5]want
	}{
		{"1", [5]want{
			{"Booked", proactive.TicketScheduled, ""},
			{"Booked", proactive.TicketScheduled, ""}, // moved from slot 2 to 1
			{"our team will call you", proactive.TicketDeclined, proactive.FollowUpAfterDecline},
			{"our team will call you", proactive.TicketExpired, proactive.FollowUpAfterExpiry},
			{"", proactive.TicketOffered, proactive.FollowUpOptedOut}}},
		{"CALL", [5]want{
			{"our team will call you", proactive.TicketOffered, proactive.FollowUpCall},
			{"our team will call you", proactive.TicketScheduled, proactive.FollowUpCall},
			{"our team will call you", proactive.TicketDeclined, proactive.FollowUpAfterDecline},
			{"our team will call you", proactive.TicketExpired, proactive.FollowUpAfterExpiry},
			{"", proactive.TicketOffered, proactive.FollowUpOptedOut}}},
		{"NO", [5]want{
			{"no visit is planned", proactive.TicketDeclined, ""},
			{"did not understand", proactive.TicketScheduled, ""},
			{"", proactive.TicketDeclined, ""},
			{"", proactive.TicketExpired, ""},
			{"", proactive.TicketOffered, proactive.FollowUpOptedOut}}},
		{"banana", [5]want{
			{"did not understand", proactive.TicketOffered, ""},
			{"did not understand", proactive.TicketScheduled, ""},
			{"our team will call you", proactive.TicketDeclined, proactive.FollowUpAfterDecline},
			{"our team will call you", proactive.TicketExpired, proactive.FollowUpAfterExpiry},
			{"", proactive.TicketOffered, proactive.FollowUpOptedOut}}},
		{"HELP", [5]want{
			{"Msg & data rates may apply", proactive.TicketOffered, ""},
			{"Msg & data rates may apply", proactive.TicketScheduled, ""},
			{"Msg & data rates may apply", proactive.TicketDeclined, ""},
			{"Msg & data rates may apply", proactive.TicketExpired, ""},
			{"Msg & data rates may apply", proactive.TicketOffered, ""}}},
		{"STOP", [5]want{
			{"unsubscribed", proactive.TicketOffered, ""},
			{"unsubscribed", proactive.TicketScheduled, ""},
			{"unsubscribed", proactive.TicketDeclined, ""},
			{"unsubscribed", proactive.TicketExpired, ""},
			{"unsubscribed", proactive.TicketOffered, ""}}},
		{"START", [5]want{
			{"again", proactive.TicketOffered, ""},
			{"again", proactive.TicketScheduled, ""},
			{"again", proactive.TicketDeclined, ""},
			{"again", proactive.TicketExpired, ""},
			{"again", proactive.TicketOffered, ""}}},
	}
	for _, d := range testenv.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			for i, st := range stages {
				for _, row := range table {
					w := row.want[i]
					t.Run(st.name+"/"+row.keyword, func(t *testing.T) {
						t.Parallel()
						e := newEnv(t, d.DSN(t), nil)
						st.setup(e)
						before := len(e.sentTo(alice))
						e.clock.Add(time.Minute)
						e.reply(alice, row.keyword)
						e.poll()
						got := e.sentTo(alice)
						switch {
						case w.answer == "" && len(got) != before:
							t.Errorf("answered %q, want no answer", got[len(got)-1])
						case w.answer != "" && len(got) != before+1:
							t.Errorf("%d answers %q, want 1 with %q", len(got)-before, got[min(before, len(got)):], w.answer)
						case w.answer != "":
							contains(t, got[len(got)-1], w.answer)
						}
						tk := e.ticket("fridge-1", "compressor")
						if tk.Status != w.status {
							t.Errorf("ticket %s, want %s", tk.Status, w.status)
						}
						if reason := followUpReason(tk); reason != w.followUp {
							t.Errorf("follow-up %q, want %q", reason, w.followUp)
						}
						// Every reply is on the ticket's thread, and so is its answer.
						if last := lastInbound(tk); !strings.Contains(last, row.keyword) {
							t.Errorf("last inbound message on the ticket is %s, want %q", last, row.keyword)
						}
						if msgs := must(e.n.Messages(e.ctx, tk.ID, "")); w.answer != "" &&
							(len(msgs) == 0 || !strings.Contains(msgs[len(msgs)-1].Body, w.answer)) {
							t.Errorf("the ticket's thread does not end with the answer %q", w.answer)
						}
					})
				}
			}
		})
	}
}

func lastInbound(t proactive.Ticket) string {
	for i := len(t.Timeline) - 1; i >= 0; i-- {
		if e := t.Timeline[i]; e.Actor == "customer" && e.Kind == proactive.TicketEventMessage {
			return string(t.Timeline[i].Body)
		}
	}
	return ""
}

func followUpReason(t proactive.Ticket) string {
	if t.FollowUp == nil {
		return ""
	}
	return t.FollowUp.Reason
}

// TestFollowUpHandled: a follow-up is listed until someone handles it; the
// timeline says who and when; a second handling conflicts.
func TestFollowUpHandled(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.fire("fridge-1", "compressor")
		e.reply(alice, "CALL")
		e.poll()
		tk := e.ticket("fridge-1", "compressor")
		if tk.FollowUp == nil || !tk.FollowUp.Since.Equal(e.clock.Now().UTC().Truncate(time.Microsecond)) {
			t.Fatalf("follow-up %+v, want one since now", tk.FollowUp)
		}
		page := must(e.store.ListTickets(e.ctx, devices.TicketFilter{FollowUp: true}))
		if len(page.Items) != 1 || page.Items[0].ID != tk.ID {
			t.Fatalf("open follow-ups %v, want ticket %d", page.Items, tk.ID)
		}
		e.reply(alice, "CALL") // again: the same task
		e.poll()
		e.clock.Add(10 * time.Minute)
		tk = must(e.store.HandleFollowUp(e.ctx, tk.ID, "dora", "called, visit on Thursday"))
		if tk.FollowUp != nil || tk.Status != proactive.TicketOffered {
			t.Errorf("handled ticket: follow-up %+v, status %s; want none, offered", tk.FollowUp, tk.Status)
		}
		last := tk.Timeline[len(tk.Timeline)-1]
		if last.Kind != proactive.TicketEventFollowUp || last.Actor != "dora" || !strings.Contains(string(last.Body), `"handled":"call_requested"`) {
			t.Errorf("last entry %s by %s: %s", last.Kind, last.Actor, last.Body)
		}
		if page := must(e.store.ListTickets(e.ctx, devices.TicketFilter{FollowUp: true})); len(page.Items) != 0 {
			t.Errorf("handled follow-up still listed")
		}
		if _, err := e.store.HandleFollowUp(e.ctx, tk.ID, "dora", ""); proactive.ErrorCode(err) != proactive.EConflict {
			t.Errorf("second handling: %v, want a conflict", err)
		}
	})
}

// TestFollowUpCriticalDeclined: declining a critical ticket keeps it
// declined, tells the customer a person will call, and raises the task.
func TestFollowUpCriticalDeclined(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.n.Alerts(e.ctx, []proactive.Alert{alert("fridge-1", "refrigerant", proactive.SeverityCritical, e.clock.Now())})
		e.poll()
		e.reply(alice, "NO")
		e.poll()
		contains(t, e.wantSent(alice, 2)[1], "our team will call you")
		tk := e.ticket("fridge-1", "refrigerant")
		if tk.Status != proactive.TicketDeclined || followUpReason(tk) != proactive.FollowUpDeclinedCritical {
			t.Errorf("ticket %s with follow-up %q, want declined with %s", tk.Status, followUpReason(tk), proactive.FollowUpDeclinedCritical)
		}
	})
}

// TestFollowUpUndelivered: an offer that fails to send, or that the
// carrier reports undelivered, raises a follow-up at once.
func TestFollowUpUndelivered(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(o *notify.Options) { o.MaxAttempts = 1 })
		e.tw.Then(faketwilio.ServerError)
		e.fire("fridge-1", "compressor")
		if tk := e.ticket("fridge-1", "compressor"); followUpReason(tk) != proactive.FollowUpUndelivered || tk.Status != proactive.TicketOffered {
			t.Errorf("failed offer: ticket %s with follow-up %q, want offered with %s", tk.Status, followUpReason(tk), proactive.FollowUpUndelivered)
		}
		e.fire("fridge-2", "compressor")
		p := e.tw.Messages()[0]
		if code := e.status(p.StatusCallback, p.SID, "undelivered"); code != 204 {
			t.Fatalf("status callback answered %d", code)
		}
		if tk := e.ticket("fridge-2", "compressor"); followUpReason(tk) != proactive.FollowUpUndelivered {
			t.Errorf("undelivered offer: follow-up %q, want %s", followUpReason(tk), proactive.FollowUpUndelivered)
		}
	})
}

// TestRescheduleBySMS: after booking, another slot number of the offer
// moves the visit; the booked one again changes nothing; a same-day visit
// is confirmed without the promise of a reminder the day before.
func TestRescheduleBySMS(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.fire("fridge-1", "compressor")
		e.reply(alice, "1") // Mon 9 Mar 10:30, today
		e.poll()
		got := e.wantSent(alice, 2)
		contains(t, got[1], "Booked", "Mon 9 Mar 10:30")
		if strings.Contains(got[1], "day before") {
			t.Errorf("a same-day visit promises a reminder the day before: %q", got[1])
		}
		e.reply(alice, "3")
		e.poll()
		got = e.wantSent(alice, 3)
		contains(t, got[2], "Booked", "Wed 11 Mar", "day before")
		tk := e.ticket("fridge-1", "compressor")
		apps := must(e.n.Appointments(e.ctx, notify.AppointmentFilter{Ticket: tk.ID}))
		booked := 0
		for _, a := range apps {
			if a.Status == "booked" {
				booked++
				if a.Start.Day() != 11 {
					t.Errorf("booked visit on %s, want Wed 11 Mar", a.Start)
				}
			}
		}
		if booked != 1 || tk.Status != proactive.TicketScheduled {
			t.Errorf("%d booked visits, ticket %s; want 1, scheduled: %+v", booked, tk.Status, apps)
		}
		e.reply(alice, "3") // the booked slot again
		e.poll()
		e.wantSent(alice, 4)
		if n := len(must(e.n.Appointments(e.ctx, notify.AppointmentFilter{Ticket: tk.ID}))); n != len(apps) {
			t.Errorf("choosing the booked slot again made %d visits, want %d", n, len(apps))
		}
	})
}
