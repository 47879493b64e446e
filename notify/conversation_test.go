package notify_test

import (
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/internal/faketwilio"
)

const alice = "+33611111111"

func TestStopAndStart(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.fire("fridge-1", "compressor")
		e.wantSent(alice, 1)
		e.reply(alice, "stop")
		e.poll()
		contains(t, e.wantSent(alice, 2)[1], "unsubscribed", "no more SMS") // the confirmation, then nothing
		c := must(e.store.GetCustomer(e.ctx, "alice"))
		if c.SMSConsent {
			t.Fatal("STOP left consent granted")
		}
		hist := must(e.store.ConsentHistory(e.ctx, "alice"))
		if last := hist[len(hist)-1]; last.Granted || last.Method != proactive.ConsentSMS {
			t.Errorf("last consent event = %+v, want a withdrawal by SMS", last)
		}

		// Another alert, past the cooldown: a ticket held for review, no message.
		e.clock.Add(8 * 24 * time.Hour)
		e.fire("fridge-1", "fan")
		e.wantSent(alice, 2)
		if tk := e.ticket("fridge-1", "fan"); tk.Status != proactive.TicketReview || tk.HeldReason != "opted_out" {
			t.Errorf("ticket of an opted-out customer is %s held for %q, want review for opted_out", tk.Status, tk.HeldReason)
		}

		e.reply(alice, "START")
		e.poll()
		got := e.wantSent(alice, 3)
		contains(t, got[2], "again")
		e.clock.Add(time.Hour)
		e.fire("fridge-1", "door_seal")
		e.wantSent(alice, 4)
	})
}

func TestCarrierStopWords(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		for _, w := range []string{"STOPALL", "unsubscribe", "Cancel", "END", "quit."} {
			must(e.store.RecordConsent(e.ctx, "alice", proactive.ConsentEvent{Granted: true, Method: proactive.ConsentAPI, Actor: "test"}))
			e.clock.Add(time.Second)
			e.reply(alice, w)
			if must(e.store.GetCustomer(e.ctx, "alice")).SMSConsent {
				t.Errorf("%q did not opt out", w)
			}
			e.clock.Add(time.Second)
		}
	})
}

func TestReplies(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(o *notify.Options) { o.HelpContact = "call 0800 100 200" })
		e.fire("fridge-1", "compressor")
		e.wantSent(alice, 1)

		e.reply(alice, "help")
		e.poll()
		contains(t, e.wantSent(alice, 2)[1], "0800 100 200")

		e.reply(alice, "banana")
		e.poll()
		contains(t, e.wantSent(alice, 3)[2], "did not understand", "(1, 2, 3)")
		e.reply(alice, "what?")
		e.poll()
		contains(t, e.wantSent(alice, 4)[3], "still did not understand", "CALL") // a second, last clarifying reply
		e.reply(alice, "7")                                                      // not a slot of the offer: recorded, no new reply
		e.poll()
		e.wantSent(alice, 4)

		e.reply(alice, "CALL")
		e.poll()
		contains(t, e.wantSent(alice, 5)[4], "call you")
		tk := e.ticket("fridge-1", "compressor")
		if tk.Status != proactive.TicketOffered {
			t.Errorf("CALL moved the ticket to %s", tk.Status)
		}

		e.reply(alice, "No")
		e.poll()
		contains(t, e.wantSent(alice, 6)[5], "no visit is planned")
		if tk = e.ticket("fridge-1", "compressor"); tk.Status != proactive.TicketDeclined {
			t.Errorf("NO left the ticket %s, want declined", tk.Status)
		}
		var inbound int
		for _, ev := range tk.Timeline {
			if ev.Kind == proactive.TicketEventMessage && ev.Actor == "customer" {
				inbound++
			}
		}
		if inbound != 6 {
			t.Errorf("timeline has %d inbound messages, want 6 (help, banana, what?, 7, CALL, No)", inbound)
		}
	})
}

func TestQuietHoursDefer(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.clock.Set(time.Date(2026, 3, 9, 22, 15, 0, 0, paris))
		e.fire("fridge-1", "compressor")
		e.wantSent(alice, 0)
		// The ticket says why its offer waits, and until when.
		tk := e.ticket("fridge-1", "compressor")
		if tk.Status != proactive.TicketOffered || tk.HeldReason != "quiet_hours" ||
			!strings.Contains(string(tk.Timeline[len(tk.Timeline)-1].Body), `"until":"2026-03-10T07:00:00Z"`) {
			t.Errorf("ticket %s held for %q, last entry %s; want offered, held for quiet_hours until 08:00 Paris",
				tk.Status, tk.HeldReason, tk.Timeline[len(tk.Timeline)-1].Body)
		}
		e.clock.Set(time.Date(2026, 3, 10, 7, 59, 0, 0, paris))
		e.poll()
		e.wantSent(alice, 0)
		e.clock.Set(time.Date(2026, 3, 10, 8, 0, 0, 0, paris))
		e.poll()
		e.wantSent(alice, 1)
		if tk := e.ticket("fridge-1", "compressor"); tk.HeldReason != "" {
			t.Errorf("sent offer's ticket still held for %q", tk.HeldReason)
		}
	})
}

func TestCriticalInQuietHours(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(o *notify.Options) { o.CriticalInQuietHours = true })
		e.clock.Set(time.Date(2026, 3, 9, 23, 0, 0, 0, paris))
		e.n.Alerts(e.ctx, []proactive.Alert{alert("fridge-1", "compressor", proactive.SeverityWarning, e.clock.Now())})
		e.n.Alerts(e.ctx, []proactive.Alert{alert("fridge-2", "compressor", proactive.SeverityCritical, e.clock.Now())})
		e.poll()
		e.wantSent(alice, 0)
		e.wantSent("+33622222222", 1)
	})
}

func TestDailyCap(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(o *notify.Options) { o.DailyCap = 2 })
		e.fire("fridge-1", "compressor")
		tk := e.ticket("fridge-1", "compressor")
		must(e.n.SendMessage(e.ctx, tk.ID, "dispatcher", "Our technician can also call you."))
		must(e.n.SendMessage(e.ctx, tk.ID, "dispatcher", "Please check the door is closed."))
		e.poll()
		e.wantSent(alice, 2)
		e.reply(alice, "help") // an answer to the customer is not capped
		e.poll()
		e.wantSent(alice, 3)
		e.clock.Add(23 * time.Hour)
		e.poll()
		e.wantSent(alice, 3)
		e.clock.Add(time.Hour)
		e.poll()
		contains(t, e.wantSent(alice, 4)[3], "door is closed")
	})
}

func TestContactCooldown(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.fire("fridge-1", "compressor")
		e.reply(alice, "NO")
		e.poll()
		e.wantSent(alice, 2)
		e.clock.Add(6 * 24 * time.Hour)
		e.fire("fridge-1", "fan")
		e.wantSent(alice, 2)
		tk := e.ticket("fridge-1", "fan")
		if !strings.Contains(string(tk.Timeline[len(tk.Timeline)-1].Body), "contact_cooldown") {
			t.Errorf("timeline does not say why no SMS went out: %s", tk.Timeline[len(tk.Timeline)-1].Body)
		}
		// Another device of another customer is not held back.
		e.fire("fridge-2", "fan")
		e.wantSent("+33622222222", 1)
		e.clock.Add(24*time.Hour + time.Minute)
		e.fire("fridge-1", "door_seal")
		e.wantSent(alice, 3)
	})
}

func TestRetryAfter429(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.tw.Then(faketwilio.TooMany, faketwilio.ServerError)
		e.fire("fridge-1", "compressor")
		e.wantSent(alice, 0)
		e.clock.Add(2 * time.Second)
		e.poll()
		e.wantSent(alice, 0)
		e.clock.Add(4 * time.Second)
		e.poll()
		e.wantSent(alice, 1)
		if n := len(e.tw.Posts()); n != 3 {
			t.Errorf("%d posts, want 3 (429, 500, 201)", n)
		}
		msgs := must(e.n.Messages(e.ctx, e.ticket("fridge-1", "compressor").ID, ""))
		if len(msgs) != 1 || msgs[0].Status != "sent" || msgs[0].Attempts != 3 || msgs[0].SID != e.tw.Messages()[0].SID {
			t.Errorf("outbox = %+v", msgs)
		}
	})
}

func TestHangingTwilioNoDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer faketwilio.Behavior
		posts  int
	}{
		{"created", faketwilio.Hang, 1},        // Twilio has it: found, not sent again
		{"dropped", faketwilio.HangDropped, 2}, // Twilio lost it: sent again, once
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.EachDialect(t, func(t *testing.T, dsn string) {
				e := newEnv(t, dsn, nil)
				e.twilioTimeout = 300 * time.Millisecond // the hang is Twilio's, not the machine's
				e.n = e.notifier(nil)
				e.tw.Then(tc.answer)
				e.fire("fridge-1", "compressor") // times out after 300ms
				msgs := must(e.n.Messages(e.ctx, e.ticket("fridge-1", "compressor").ID, ""))
				if msgs[0].Status != "unknown" {
					t.Fatalf("after a timeout the message is %s, want unknown", msgs[0].Status)
				}
				e.poll()
				if n := len(e.tw.Posts()); n != 1 {
					t.Fatalf("resent before reconciling: %d posts", n)
				}
				e.clock.Add(time.Minute)
				e.poll()
				e.wantSent(alice, 1)
				if n := len(e.tw.Posts()); n != tc.posts {
					t.Errorf("%d posts, want %d", n, tc.posts)
				}
				msgs = must(e.n.Messages(e.ctx, e.ticket("fridge-1", "compressor").ID, ""))
				if msgs[0].Status != "sent" || msgs[0].SID != e.tw.Messages()[0].SID {
					t.Errorf("message = %+v, want sent with the SID Twilio has", msgs[0])
				}
			})
		})
	}
}

// TestLastSlot has two customers reply at once for the one slot both were
// offered: one books it, the other is offered anew.
func TestLastSlot(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(o *notify.Options) {
			o.SlotHorizon = 36 * time.Hour // Monday and Tuesday
			o.SlotHold = time.Minute
		})
		// The Paris technician works one slot on Tuesday only.
		tech := must(e.store.GetTechnician(e.ctx, "tech-paris"))
		tech.Hours = proactive.WeeklyHours{time.Tuesday: {{Start: 9 * 60, End: 11 * 60}}}
		must(e.store.UpdateTechnician(e.ctx, tech))

		e.fire("fridge-1", "compressor")
		e.clock.Add(2 * time.Minute) // Alice's hold has lapsed
		e.fire("fridge-2", "compressor")
		a, b := e.wantSent(alice, 1)[0], e.wantSent("+33622222222", 1)[0]
		contains(t, a, "1) Tue 10 Mar 09:00-11:00")
		contains(t, b, "1) mar 10 mars 9h-11h")

		var wg sync.WaitGroup
		for _, from := range []string{alice, "+33622222222"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code := e.reply(from, "1"); code != 200 {
					t.Errorf("reply from %s answered %d", from, code)
				}
			}()
		}
		wg.Wait()
		e.poll()
		appts := must(e.n.Appointments(e.ctx, notify.AppointmentFilter{}))
		if len(appts) != 1 {
			t.Fatalf("%d appointments, want 1", len(appts))
		}
		winner, loser := alice, "+33622222222"
		if appts[0].Ticket == e.ticket("fridge-2", "compressor").ID {
			winner, loser = loser, winner
		}
		if len(e.sentTo(winner)) != 2 {
			t.Errorf("winner got %q", e.sentTo(winner))
		}
		got := e.sentTo(loser)
		if len(got) != 2 || !(strings.Contains(got[1], "taken") || strings.Contains(got[1], "plus libre")) {
			t.Errorf("loser got %q, want a new offer", got)
		}
	})
}

func TestWebhookSignature(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		form := url.Values{"MessageSid": {"SMx1"}, "From": {alice}, "Body": {"STOP"}}
		good := faketwilio.Sign(authToken, e.web.URL+notify.SMSPath, form)
		e.fire("fridge-1", "compressor")
		for name, sig := range map[string]string{
			"missing":     "",
			"wrong key":   faketwilio.Sign("ffffffffffffffffffffffffffffffff", e.web.URL+notify.SMSPath, form),
			"wrong path":  faketwilio.Sign(authToken, e.web.URL+notify.StatusPath, form),
			"other body":  faketwilio.Sign(authToken, e.web.URL+notify.SMSPath, url.Values{"Body": {"START"}}),
			"not base64!": "%%%",
		} {
			if code := e.post(notify.SMSPath, form, sig); code != 403 {
				t.Errorf("%s signature: %d, want 403", name, code)
			}
		}
		for name, sig := range map[string]string{
			"missing":       "",
			"for sms":       good,
			"wrong key":     faketwilio.Sign("ffffffffffffffffffffffffffffffff", e.web.URL+notify.StatusPath, form),
			"without query": faketwilio.Sign(authToken, e.web.URL+notify.StatusPath, form),
		} {
			if code := e.post(notify.StatusPath+"?m=1", form, sig); code != 403 {
				t.Errorf("%s signature on status: %d, want 403", name, code)
			}
		}
		if !must(e.store.GetCustomer(e.ctx, "alice")).SMSConsent {
			t.Fatal("an unsigned STOP was obeyed")
		}
		if code := e.post(notify.SMSPath, form, good); code != 200 {
			t.Errorf("good signature: %d", code)
		}
		if must(e.store.GetCustomer(e.ctx, "alice")).SMSConsent {
			t.Error("a signed STOP was not obeyed")
		}
	})
}

func TestStatusCallbacksMonotonic(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.fire("fridge-1", "compressor")
		e.fire("fridge-2", "compressor")
		m1, m2 := e.tw.Messages()[0], e.tw.Messages()[1]
		for _, st := range []string{"sent", "delivered", "sent", "queued", "delivered", "failed"} {
			if code := e.status(m1.StatusCallback, m1.SID, st); code != 204 {
				t.Fatalf("status %s: %d", st, code)
			}
		}
		tk1 := e.ticket("fridge-1", "compressor")
		msgs := must(e.n.Messages(e.ctx, tk1.ID, ""))
		if msgs[0].Delivery != "delivered" {
			t.Errorf("replayed callbacks moved the status to %q, want delivered", msgs[0].Delivery)
		}
		e.status(m2.StatusCallback, m2.SID, "sent")
		e.status(m2.StatusCallback, m2.SID, "undelivered")
		e.status(m2.StatusCallback, m2.SID, "undelivered")
		tk2 := e.ticket("fridge-2", "compressor")
		var flagged int
		for _, ev := range tk2.Timeline {
			if strings.Contains(string(ev.Body), `"status":"undelivered"`) {
				flagged++
			}
		}
		if flagged != 1 {
			t.Errorf("undelivered offer shown %d times on its ticket, want once", flagged)
		}
		for _, ev := range tk1.Timeline {
			if strings.Contains(string(ev.Body), `"status":"failed"`) {
				t.Error("a failed status after delivered reached the ticket")
			}
		}
	})
}

func TestOfferExpiresAfterOneReminder(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(o *notify.Options) { o.OfferExpiry = 48 * time.Hour; o.OfferReminder = 24 * time.Hour })
		e.fire("fridge-1", "compressor")
		e.clock.Add(24 * time.Hour)
		e.poll()
		reminder := e.wantSent(alice, 2)[1]
		contains(t, reminder, "Reminder", "3) Wed 11 Mar 08:00-10:00")
		if strings.Contains(reminder, "1)") || strings.Contains(reminder, "2)") {
			t.Errorf("the reminder lists a slot that has passed: %q", reminder)
		}
		e.clock.Add(24 * time.Hour)
		e.poll()
		e.wantSent(alice, 2)
		if tk := e.ticket("fridge-1", "compressor"); tk.Status != proactive.TicketExpired {
			t.Errorf("ticket %s, want expired", tk.Status)
		}
	})
}

func TestSurveyTimesOutQuietly(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.fire("fridge-1", "compressor")
		e.reply(alice, "1")
		tk := e.ticket("fridge-1", "compressor")
		must(e.n.VisitDone(e.ctx, tk.ID, "", proactive.OutcomeNoFaultFound, ""))
		e.poll()
		e.clock.Add(48 * time.Hour)
		e.poll()
		n := len(e.sentTo(alice))
		if tk = e.ticket("fridge-1", "compressor"); tk.Status != proactive.TicketClosed || tk.Outcome != proactive.OutcomeNoFaultFound {
			t.Errorf("ticket %s %s, want closed no_fault_found", tk.Status, tk.Outcome)
		}
		e.reply(alice, "4") // too late: no conversation awaits it
		e.poll()
		if len(e.sentTo(alice)) != n {
			t.Error("a late survey answer got a reply")
		}
		if c := must(e.n.Conversation(e.ctx, tk.ID)); c.CSAT != 0 {
			t.Errorf("late answer stored: %+v", c)
		}
	})
}
