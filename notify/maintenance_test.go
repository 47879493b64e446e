package notify_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
)

// A visit reported with part_replaced records the replacement of the
// ticket's component at the visit's time once the ticket closes, after the
// customer's survey answer hours later.
func TestVisitPartReplacedRecordsMaintenance(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, nil)
		e.fire("fridge-1", "compressor")
		tk := e.ticket("fridge-1", "compressor")
		e.reply(alice, "1")
		visitAt := e.clock.Now().Add(26 * time.Hour)
		e.clock.Set(visitAt)
		must(e.n.VisitDone(e.ctx, tk.ID, "tech-paris", proactive.OutcomePartReplaced, "new compressor"))
		e.poll()
		if got := must(e.store.DeviceMaintenance(e.ctx, "fridge-1")); len(got) != 0 {
			t.Errorf("recorded before the ticket closed: %+v", got)
		}
		e.clock.Add(3 * time.Hour)
		e.reply(alice, "5")
		e.poll()
		if tk = e.ticket("fridge-1", "compressor"); tk.Status != proactive.TicketClosed {
			t.Fatalf("ticket %s, want closed", tk.Status)
		}
		got := must(e.store.DeviceMaintenance(e.ctx, "fridge-1"))
		for i := range got {
			got[i].ID = 0
		}
		want := []proactive.Maintenance{{Device: "fridge-1", Time: visitAt.UTC(), Component: "compressor",
			Kind: proactive.MaintenanceReplaced, Notes: "new compressor"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("maintenance:\n got %+v\nwant %+v", got, want)
		}
	})
}
