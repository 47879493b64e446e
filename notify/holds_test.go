package notify_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

// TestConcurrentAlertsHoldEachSlotOnce: 30 customers' alerts at once, on
// two notifiers (two processes) sharing one database, never hold the same
// technician and start for two offers. On PostgreSQL the holds once raced:
// two transactions read the same free slots and both held them.
func TestConcurrentAlertsHoldEachSlotOnce(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		const n = 30
		// 30 alerts of one rule at once are an incident: raise its bar, so
		// that every alert makes an offer and holds slots.
		noIncident := func(o *notify.Options) { o.IncidentMinDevices = n + 1 }
		e := newEnv(t, dsn, noIncident)
		var crew testenv.Crew
		for i := range n {
			id := fmt.Sprintf("burst-%02d", i)
			crew.Customers = append(crew.Customers, testenv.CrewCustomer{
				Customer: proactive.Customer{ID: id, Name: "Customer " + id, Phone: fmt.Sprintf("+336700000%02d", i), Language: "en"},
				Consent:  true,
				Device: proactive.Device{ID: proactive.DeviceID(id), Model: "fridge-a200", TimeZone: "Europe/Paris",
					Site: proactive.Address{Line1: fmt.Sprintf("%d rue de la Roquette", i+1), City: "Paris", PostalCode: "75011", Country: "FR"}},
			})
		}
		for i := range 2 { // three Paris technicians in all, so that offers spread over several
			crew.Technicians = append(crew.Technicians, proactive.Technician{ID: fmt.Sprintf("tech-paris-%d", i+2),
				Name: fmt.Sprintf("Paris %d", i+2), Phone: fmt.Sprintf("+3366000000%d", i), TimeZone: "Europe/Paris",
				Skills: []string{"compressor"}, ServiceArea: []string{"75"}, Hours: testenv.Weekdays()})
		}
		testenv.Seed(t, e.store, crew)

		ns := []*notify.Notifier{e.n, e.instance(noIncident)}
		together(n, func(i int) {
			a := alert(fmt.Sprintf("burst-%02d", i), "compressor", proactive.SeverityWarning, e.clock.Now())
			ns[i%2].Alerts(e.ctx, []proactive.Alert{a})
		})

		type slot struct {
			tech  string
			start time.Time
		}
		holder := map[slot]int64{}
		offered := 0
		for i := range n {
			tk := e.ticket(fmt.Sprintf("burst-%02d", i), "compressor")
			var held []devices.OfferSlot
			if err := e.store.WithTx(e.ctx, func(tx *devices.Tx) (err error) {
				held, err = tx.OfferSlots(e.ctx, tk.ID, 1)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if len(held) > 0 {
				offered++
			}
			for _, h := range held {
				k := slot{h.Technician, h.Start}
				if other, dup := holder[k]; dup {
					t.Errorf("%s at %s held for tickets %d and %d", h.Technician, h.Start.Format(time.RFC3339), other, tk.ID)
				}
				holder[k] = tk.ID
			}
		}
		if offered < n/2 { // the calendars have room for most of them; the point is that some contended
			t.Errorf("%d of %d tickets got an offer", offered, n)
		}
		t.Logf("%d offers, %d slots held", offered, len(holder))
	})
}
