package notify_test

import (
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

// A dispatcher books only what a technician can keep: their skill and area,
// within a shift, not at a time offered to another customer.
func TestBookChecksTheTechnician(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.fire("fridge-1", "compressor")
		tk := e.ticket("fridge-1", "compressor")
		tuesday := func(h, m int) time.Time { return time.Date(2026, 3, 10, h, m, 0, 0, paris) }
		for _, tc := range []struct {
			name string
			slot notify.Slot
			code string
		}{
			{"another region", notify.Slot{Technician: "tech-lyon", Start: tuesday(10, 30)}, proactive.EInvalid},
			{"another skill", notify.Slot{Technician: "tech-fans", Start: tuesday(10, 30)}, proactive.EInvalid},
			{"at night", notify.Slot{Technician: "tech-paris", Start: tuesday(3, 0)}, proactive.EConflict},
			{"past the shift", notify.Slot{Technician: "tech-paris", Start: tuesday(16, 0)}, proactive.EConflict},
			{"ten days long", notify.Slot{Technician: "tech-paris", Start: tuesday(10, 30), End: tuesday(10, 30).AddDate(0, 0, 10)}, proactive.EConflict},
			{"unknown technician", notify.Slot{Technician: "nobody", Start: tuesday(10, 30)}, proactive.ENotFound},
		} {
			if _, err := e.n.Book(e.ctx, tk.ID, tc.slot, "dispatcher"); proactive.ErrorCode(err) != tc.code {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
		// The ticket's own offered slot is bookable on its behalf.
		slots := must(e.n.Slots(e.ctx, tk.ID))
		if _, err := e.n.Book(e.ctx, tk.ID, slots[0], "dispatcher"); err != nil {
			t.Fatalf("book an offered slot: %v", err)
		}
		if got := e.ticket("fridge-1", "compressor"); got.Status != proactive.TicketScheduled {
			t.Errorf("ticket %s, want scheduled", got.Status)
		}
	})
}

// Alert → first SMS is the platform's latency, on its own clock, whatever
// time the devices' clocks (or a simulation at speed) gave the alert.
func TestAlertToSMSOnThePlatformClock(t *testing.T) {
	e := newEnv(t, testenv.SQLite(t), nil)
	ahead := alert("fridge-1", "compressor", proactive.SeverityWarning, e.clock.Now().Add(12*time.Hour))
	e.n.Alerts(e.ctx, []proactive.Alert{ahead})
	e.clock.Add(3 * time.Second)
	e.poll()
	e.wantSent("+33611111111", 1)
	m := must(e.n.Measures(e.ctx))
	if m.AlertToFirstSMS != 3*time.Second {
		t.Errorf("alert to first SMS %s, want the 3s of the platform's clock", m.AlertToFirstSMS)
	}
}
