package notify_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

// together runs f(0..n-1) on n goroutines released at once and waits.
func together(n int, f func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			f(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// pollBoth runs rounds passes of Poll on every notifier at the same time.
func pollBoth(t *testing.T, e *env, rounds int, ns ...*notify.Notifier) {
	t.Helper()
	for range rounds {
		errs := make([]error, len(ns))
		together(len(ns), func(i int) { errs[i] = ns[i].Poll(e.ctx) })
		for _, err := range errs {
			if err != nil {
				t.Fatalf("poll: %v", err)
			}
		}
	}
}

// TestTwoNotifiersBurstOfAlerts: two notifiers (two processes, each with its
// own connections) on one database get the same alert 40 times at once, as
// two instances subscribed to the same telemetry would: one ticket, one
// alert event, one offer in the outbox, one SMS at Twilio.
func TestTwoNotifiersBurstOfAlerts(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		ns := []*notify.Notifier{e.n, e.instance(nil)}
		a := alert("fridge-1", "compressor", proactive.SeverityWarning, e.clock.Now())
		together(40, func(i int) { ns[i%2].Alerts(e.ctx, []proactive.Alert{a}) })
		pollBoth(t, e, 2, ns...)

		page := must(e.store.ListTickets(e.ctx, devices.TicketFilter{Device: "fridge-1"}))
		if len(page.Items) != 1 {
			t.Fatalf("%d tickets for fridge-1, want 1: %+v", len(page.Items), page.Items)
		}
		tk := must(e.store.GetTicket(e.ctx, page.Items[0].ID))
		alerts := 0
		for _, ev := range tk.Timeline {
			if ev.Kind == proactive.TicketEventAlert {
				alerts++
			}
		}
		if alerts != 1 || tk.Status != proactive.TicketOffered {
			t.Errorf("ticket %s with %d alert events, want offered with 1", tk.Status, alerts)
		}
		msgs := must(e.n.Messages(e.ctx, tk.ID, ""))
		if len(msgs) != 1 || msgs[0].Kind != notify.KindOffer || msgs[0].Status != "sent" {
			t.Errorf("outbox of the ticket = %+v, want one sent offer", msgs)
		}
		if posts := e.tw.Posts(); len(posts) != 1 {
			t.Errorf("Twilio got %d posts, want 1", len(posts))
		}
	})
}

// TestTwoNotifiersSendEachMessageOnce: 30 customers with an offer and a
// dispatcher's message each, polled by two notifiers at the same time:
// every message is sent exactly once, and each customer's in order.
func TestTwoNotifiersSendEachMessageOnce(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		const customers = 30
		// 30 devices firing one rule at once would be an incident, whose
		// customers are not texted: this test is about delivery.
		noIncident := func(o *notify.Options) { o.IncidentMinDevices = customers + 1 }
		e := newEnv(t, dsn, noIncident)
		ns := []*notify.Notifier{e.n, e.instance(noIncident)}
		phone := func(i int) string { return fmt.Sprintf("+3367%07d", i) }
		for i := range customers {
			id := fmt.Sprintf("cust-%d", i)
			must(e.store.CreateCustomer(e.ctx, proactive.Customer{ID: id, Name: id, Phone: phone(i), Language: "en"}))
			must(e.store.RecordConsent(e.ctx, id, proactive.ConsentEvent{Granted: true, Method: proactive.ConsentWebForm, Actor: "test"}))
			must(e.store.CreateDevice(e.ctx, proactive.Device{ID: proactive.DeviceID("dev-" + id), Model: "fridge-a200",
				CustomerID: id, TimeZone: "Europe/Paris", Site: proactive.Address{PostalCode: "75011", Country: "FR"}}))
		}
		together(customers, func(i int) {
			ns[i%2].Alerts(e.ctx, []proactive.Alert{alert(fmt.Sprintf("dev-cust-%d", i), "compressor", proactive.SeverityWarning, e.clock.Now())})
		})
		for i := range customers {
			tk := e.ticket(fmt.Sprintf("dev-cust-%d", i), "compressor")
			must(ns[(i+1)%2].SendMessage(e.ctx, tk.ID, "dispatcher", fmt.Sprintf("note %d", i)))
		}
		pollBoth(t, e, 3, ns...)

		if posts := len(e.tw.Posts()); posts != 2*customers {
			t.Errorf("Twilio got %d posts, want %d", posts, 2*customers)
		}
		for i := range customers {
			got := e.wantSent(phone(i), 2)
			contains(t, got[0], "fridge-a200", "compressor")
			contains(t, got[1], fmt.Sprintf("note %d", i))
		}
	})
}

// TestDailyCapAcrossNotifiers: with a cap of two a day, five days of four
// proactive messages to one customer, each day polled by three notifiers
// at once: two go out a day, in order.
func TestDailyCapAcrossNotifiers(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		capTwo := func(o *notify.Options) { o.DailyCap = 2 }
		e := newEnv(t, dsn, capTwo)
		ns := []*notify.Notifier{e.n, e.instance(capTwo), e.instance(capTwo)}
		e.fire("fridge-1", "compressor")
		tk := e.ticket("fridge-1", "compressor")
		e.clock.Add(24*time.Hour + time.Minute)
		sent := 1
		for day := range 5 {
			for i := range 4 {
				must(e.n.SendMessage(e.ctx, tk.ID, "dispatcher", fmt.Sprintf("day %d note %d", day, i)))
			}
			pollBoth(t, e, 3, ns...)
			sent += 2
			got := e.wantSent(alice, sent)
			if day == 0 {
				contains(t, got[sent-2], "day 0 note 0")
				contains(t, got[sent-1], "day 0 note 1")
			}
			e.clock.Add(24*time.Hour + time.Minute)
		}
	})
}

// TestTwoNotifiersRunJobsOnce: a visit's reminder falls due and both
// notifiers poll at once: one reminder.
func TestTwoNotifiersRunJobsOnce(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		ns := []*notify.Notifier{e.n, e.instance(nil)}
		e.fire("fridge-1", "compressor")
		e.reply(alice, "2") // Tuesday 08:00; its reminder is due Monday 18:00
		e.poll()
		e.wantSent(alice, 2)
		e.clock.Set(time.Date(2026, 3, 9, 18, 0, 0, 0, paris))
		pollBoth(t, e, 3, ns...)
		got := e.wantSent(alice, 3)
		contains(t, got[2], "Reminder", "tomorrow")
	})
}
