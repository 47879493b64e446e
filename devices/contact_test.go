package devices_test

import (
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// The ticket cooldown is a device-side timer: it runs on the alerts' own
// times, so a backfill replayed in minutes opens a ticket per cooldown of
// data time, not one for the whole replay.
func TestOpenTicketCooldownOnAlertTime(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clk := newClock()
		s := mustOpen(t, dsn, withClock(clk))
		ctx := t.Context()
		mustDevice(t, s, "d1", "")
		a := alert("d1", "compressor")
		a.Cooldown = 7 * 24 * time.Hour
		a.FiredAt = clk.Now().Add(-90 * 24 * time.Hour) // a quarter ago
		first := mustOpenTicket(t, s, a)
		mustTransition(t, s, first.ID, proactive.TicketCancelled)

		// Three days later in data time, a minute later on the wall: held.
		clk.Add(time.Minute)
		a.FiredAt = a.FiredAt.Add(3 * 24 * time.Hour)
		again, created, err := s.OpenTicket(ctx, a)
		if err != nil || created || again.ID != first.ID {
			t.Fatalf("within the cooldown of data time: ticket %d, created %v, %v; want ticket %d", again.ID, created, err, first.ID)
		}
		if again.AlertsAbsorbed != 1 || !again.LastAlertFiredAt.Equal(a.FiredAt) {
			t.Errorf("absorbed %d, last fired %v; want 1 at %v", again.AlertsAbsorbed, again.LastAlertFiredAt, a.FiredAt)
		}
		// Ten days later in data time, another minute on the wall: a new one.
		clk.Add(time.Minute)
		a.FiredAt = a.FiredAt.Add(7 * 24 * time.Hour)
		if next := mustOpenTicket(t, s, a); next.ID == first.ID || !next.FiredAt.Equal(a.FiredAt) {
			t.Errorf("past the cooldown in data time: ticket %+v, want a new one fired at %v", next, a.FiredAt)
		}
	})
}

// A rule's trust counts its closed tickets' outcomes: fault_confirmed and
// part_replaced for it, no_fault_found and false_alarm against.
func TestRuleTrust(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, withClock(newClock()))
		ctx := t.Context()
		mustDevice(t, s, "d1", "")
		for i, o := range []proactive.Outcome{proactive.OutcomeFalseAlarm, proactive.OutcomeFalseAlarm, proactive.OutcomeFaultConfirmed} {
			tk := mustOpenTicket(t, s, alert("d1", "compressor"))
			if o != proactive.OutcomeFalseAlarm {
				mustTransition(t, s, tk.ID, proactive.TicketScheduled, proactive.TicketVisited)
			}
			if _, err := s.CloseTicket(ctx, tk.ID, o, "", "dispatcher"); err != nil {
				t.Fatalf("close %d: %v", i, err)
			}
		}
		mustOpenTicket(t, s, alert("d1", "compressor")) // open: no outcome yet
		got, err := s.RuleTrust(ctx, "compressor_wear")
		if want := (devices.RuleTrust{Rule: "compressor_wear", Outcomes: 3, Confirmed: 1}); err != nil || got != want {
			t.Errorf("RuleTrust = %+v, %v; want %+v", got, err, want)
		}
		if p := got.Precision(); p < 0.33 || p > 0.34 {
			t.Errorf("precision %v, want 1/3", p)
		}
		all, err := s.RulesTrust(ctx)
		if err != nil || len(all) != 1 || all["compressor_wear"] != got {
			t.Errorf("RulesTrust = %v, %v", all, err)
		}
		if none, err := s.RuleTrust(ctx, "fan_bearing"); err != nil || none.Outcomes != 0 || none.Precision() != 0 {
			t.Errorf("a rule without tickets: %+v, %v", none, err)
		}
	})
}

// Hold records why a ticket's customer was not texted; the ticket's JSON
// carries it.
func TestHold(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, withClock(newClock()))
		ctx := t.Context()
		mustDevice(t, s, "d1", "")
		tk := mustOpenTicket(t, s, alert("d1", "compressor"))
		err := s.WithTx(ctx, func(tx *devices.Tx) error {
			_, err := tx.Apply(ctx, devices.Change{Ticket: tk.ID, Held: "review",
				Status: &devices.StatusChange{To: proactive.TicketReview, Actor: "notify", Note: "held: review"}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetTicket(ctx, tk.ID)
		if err != nil || got.HeldReason != "review" || got.Status != proactive.TicketReview {
			t.Errorf("ticket %+v, %v; want held for review, in review", got, err)
		}
		err = s.WithTx(ctx, func(tx *devices.Tx) error { return tx.Hold(ctx, 999, "review") })
		wantCode(t, err, proactive.ENotFound)
		err = s.WithTx(ctx, func(tx *devices.Tx) error { return tx.Hold(ctx, tk.ID, "") })
		wantCode(t, err, proactive.EInvalid)
	})
}
