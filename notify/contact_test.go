package notify_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

const bruno = "+33622222222"

// fireAlert hands the notifier one alert and runs a poll.
func (e *env) fireAlert(a proactive.Alert) {
	e.t.Helper()
	e.n.Alerts(e.ctx, []proactive.Alert{a})
	e.poll()
}

// counters reads a counter vector's samples by label value.
func counters(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// lastSkip returns the body of a ticket's last "outreach skipped" entry.
func lastSkip(t *testing.T, tk proactive.Ticket) map[string]any {
	t.Helper()
	var out map[string]any
	for _, ev := range tk.Timeline {
		var b map[string]any
		if err := json.Unmarshal(ev.Body, &b); err != nil {
			t.Fatal(err)
		}
		if b["outreach"] == "skipped" {
			out = b
		}
	}
	if out == nil {
		t.Fatalf("ticket %d: no skipped outreach on its timeline", tk.ID)
	}
	return out
}

// contact: review opens the ticket in review and texts nobody until a
// dispatcher approves it, then exactly one offer goes out; the review
// state survives a restart (another notifier on the same database approves).
func TestContactReview(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		reg := prometheus.NewRegistry()
		e := newEnv(t, dsn, func(o *notify.Options) { o.Registerer = reg })
		a := alert("fridge-1", "compressor", proactive.SeverityWarning, e.clock.Now())
		a.Contact = proactive.ContactReview
		e.fireAlert(a)
		e.wantSent(alice, 0)
		tk := e.ticket("fridge-1", "compressor")
		if tk.Status != proactive.TicketReview || tk.HeldReason != "review" {
			t.Fatalf("ticket %s held for %q, want review for review", tk.Status, tk.HeldReason)
		}
		if b := lastSkip(t, tk); b["reason"] != "review" {
			t.Errorf("timeline skip %v, want reason review", b)
		}
		if got := counters(t, reg, "proactive_alerts_held_total"); got["review"] != 1 {
			t.Errorf("alerts held %v, want one for review", got)
		}
		// Firing again adds to the ticket, texts nobody.
		e.clock.Add(time.Minute)
		e.fireAlert(alert("fridge-1", "compressor", proactive.SeverityWarning, e.clock.Now()))
		e.wantSent(alice, 0)
		if tk := e.ticket("fridge-1", "compressor"); tk.AlertsAbsorbed != 1 || !tk.LastAlertFiredAt.Equal(e.clock.Now()) {
			t.Errorf("absorbed %d, last fired %v; want 1 at %v", tk.AlertsAbsorbed, tk.LastAlertFiredAt, e.clock.Now())
		}

		// A restart: another process approves.
		other := e.instance(nil)
		got, err := other.Approve(e.ctx, tk.ID, "dispatcher")
		if err != nil || got.Status != proactive.TicketOffered {
			t.Fatalf("approve: %s, %v; want offered", got.Status, err)
		}
		if err := other.Poll(e.ctx); err != nil {
			t.Fatal(err)
		}
		contains(t, e.wantSent(alice, 1)[0], "1)")
		if _, err := other.Approve(e.ctx, tk.ID, "dispatcher"); proactive.ErrorCode(err) != proactive.EConflict {
			t.Errorf("second approval: %v, want a conflict", err)
		}
		e.poll()
		e.wantSent(alice, 1)
	})
}

// contact: none opens a ticket that stays open for the field team and never
// texts; it cannot be approved, only dismissed.
func TestContactNone(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		a := alert("fridge-2", "fan", proactive.SeverityCritical, e.clock.Now())
		a.Contact = proactive.ContactNone
		e.fireAlert(a)
		e.clock.Add(24 * time.Hour)
		e.poll()
		e.wantSent(bruno, 0)
		tk := e.ticket("fridge-2", "fan")
		if tk.Status != proactive.TicketOpen || tk.HeldReason != "contact_none" {
			t.Fatalf("ticket %s held for %q, want open for contact_none", tk.Status, tk.HeldReason)
		}
		if _, err := e.n.Approve(e.ctx, tk.ID, "dispatcher"); proactive.ErrorCode(err) != proactive.EConflict {
			t.Errorf("approve an open ticket: %v, want a conflict", err)
		}
		got, err := e.n.Dismiss(e.ctx, tk.ID, "dispatcher", "")
		if err != nil || got.Status != proactive.TicketClosed || got.Outcome != proactive.OutcomeFalseAlarm {
			t.Errorf("dismiss: %+v, %v; want closed as false_alarm", got, err)
		}
	})
}

// An alert older than MaxAlertAge when notify sees it opens its ticket in
// review, texts nobody, and says so on the timeline.
func TestAlertAge(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.fireAlert(alert("fridge-1", "compressor", proactive.SeverityCritical, e.clock.Now().Add(-90*24*time.Hour)))
		e.wantSent(alice, 0)
		tk := e.ticket("fridge-1", "compressor")
		if tk.Status != proactive.TicketReview || tk.HeldReason != "alert_age" {
			t.Fatalf("ticket %s held for %q, want review for alert_age", tk.Status, tk.HeldReason)
		}
		if b := lastSkip(t, tk); b["age"] != "2160h0m0s" {
			t.Errorf("timeline skip %v, want the alert's age", b)
		}
		// Within the age, as today: offered at once.
		e.fireAlert(alert("fridge-2", "compressor", proactive.SeverityCritical, e.clock.Now().Add(-30*time.Minute)))
		e.wantSent(bruno, 1)
	})
}

// The contact cooldown is off at Off: a second offer about the device goes
// out at once; by default it is held, in review.
func TestContactCooldownOff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cooldown time.Duration
		sent     int
	}{{"default", 0, 1}, {"off", notify.Off, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.EachDialect(t, func(t *testing.T, dsn string) {
				e := newEnv(t, dsn, func(o *notify.Options) { o.ContactCooldown = tc.cooldown })
				e.fire("fridge-1", "compressor")
				e.clock.Add(time.Hour)
				e.fire("fridge-1", "fan")
				e.wantSent(alice, tc.sent)
				want := proactive.TicketOffered
				if tc.sent == 1 {
					want = proactive.TicketReview
				}
				if tk := e.ticket("fridge-1", "fan"); tk.Status != want {
					t.Errorf("second ticket %s (held %q), want %s", tk.Status, tk.HeldReason, want)
				}
			})
		})
	}
}

// Approving a ticket whose customer cannot be texted moves it to open for
// the field team, the reason on its timeline.
func TestApproveWithoutConsent(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.reply(alice, "STOP")
		e.fire("fridge-1", "compressor")
		tk := e.ticket("fridge-1", "compressor")
		if tk.Status != proactive.TicketReview || tk.HeldReason != "opted_out" {
			t.Fatalf("ticket %s held for %q, want review for opted_out", tk.Status, tk.HeldReason)
		}
		got, err := e.n.Approve(e.ctx, tk.ID, "dispatcher")
		if err != nil || got.Status != proactive.TicketOpen {
			t.Fatalf("approve: %s, %v; want open", got.Status, err)
		}
		e.poll()
		e.wantSent(alice, 1) // the STOP's confirmation only
		last := got.Timeline[len(got.Timeline)-1]
		var b map[string]any
		if err := json.Unmarshal(last.Body, &b); err != nil || last.Actor != "dispatcher" || b["to"] != "open" {
			t.Errorf("last timeline entry %+v, want the dispatcher's move to open", last)
		}
		if note, _ := b["note"].(string); note == "" {
			t.Error("no reason on the approval")
		}
	})
}

// Measured trust: dismissed tickets (false_alarm) drop a rule's precision;
// with at least MinOutcomes outcomes under MinPrecision its next ticket is
// held to review; confirmed outcomes bring it back.
func TestRuleTrust(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		reg := prometheus.NewRegistry()
		e := newEnv(t, dsn, func(o *notify.Options) {
			o.Registerer, o.ContactCooldown, o.MinOutcomes = reg, notify.Off, 3
		})
		for range 3 {
			a := alert("fridge-1", "compressor", proactive.SeverityWarning, e.clock.Now())
			a.Contact = proactive.ContactReview
			e.fireAlert(a)
			tk := e.ticket("fridge-1", "compressor")
			if _, err := e.n.Dismiss(e.ctx, tk.ID, "dispatcher", "the site was being cleaned"); err != nil {
				t.Fatal(err)
			}
			e.clock.Add(time.Minute)
		}
		trust := must(e.n.Trust(e.ctx))["compressor_wear"]
		if trust.Outcomes != 3 || trust.Precision != 0 || !trust.Held {
			t.Fatalf("trust %+v, want 3 outcomes, precision 0, held", trust)
		}
		e.fire("fridge-2", "compressor") // contact auto, but untrusted
		e.wantSent(bruno, 0)
		tk := e.ticket("fridge-2", "compressor")
		if tk.Status != proactive.TicketReview || tk.HeldReason != "untrusted_rule" {
			t.Fatalf("ticket %s held for %q, want review for untrusted_rule", tk.Status, tk.HeldReason)
		}
		if got := counters(t, reg, "proactive_alerts_held_total"); got["untrusted_rule"] != 1 || got["review"] != 3 {
			t.Errorf("alerts held %v, want 3 review and 1 untrusted_rule", got)
		}
		// Five confirmed faults: 5 of 8, over 0.6.
		for i := range 5 {
			a := alert("fridge-1", fmt.Sprintf("part%d", i), proactive.SeverityWarning, e.clock.Now())
			a.Rule = "compressor_wear"
			c, _, err := e.store.OpenTicket(e.ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			must(e.store.Transition(e.ctx, c.ID, proactive.TicketScheduled, "dispatcher", ""))
			must(e.store.Transition(e.ctx, c.ID, proactive.TicketVisited, "dispatcher", ""))
			must(e.store.CloseTicket(e.ctx, c.ID, proactive.OutcomeFaultConfirmed, "", "tech-paris"))
		}
		if trust := must(e.n.Trust(e.ctx))["compressor_wear"]; trust.Held || trust.Outcomes != 8 {
			t.Fatalf("trust %+v, want 8 outcomes, not held", trust)
		}
		e.fire("fridge-1", "compressor")
		e.wantSent(alice, 1)
	})
}

// With MaxAlertAge at Off, an old alert texts as a fresh one does.
func TestAlertAgeOff(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(o *notify.Options) { o.MaxAlertAge = notify.Off })
		e.fireAlert(alert("fridge-1", "compressor", proactive.SeverityCritical, e.clock.Now().Add(-90*24*time.Hour)))
		e.wantSent(alice, 1)
	})
}
