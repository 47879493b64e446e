package notify_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
)

// gauges returns the samples of a metric family by its one label's value.
func gauges(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetGauge() == nil || len(m.GetLabel()) != 1 {
				t.Fatalf("%s: unexpected sample %v", name, m)
			}
			out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestCountGauges: the outbox depth by state and the tickets by status, as
// a scrape sees them.
func TestCountGauges(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		reg := prometheus.NewRegistry()
		e := newEnv(t, dsn, func(o *notify.Options) { o.Registerer = reg })
		outbox := gauges(t, reg, "proactive_notify_outbox_messages")
		tickets := gauges(t, reg, "proactive_tickets")
		if len(outbox) != 6 || outbox["pending"] != 0 || len(tickets) != 9 || tickets["open"] != 0 || tickets["review"] != 0 {
			t.Fatalf("empty database: outbox %v, tickets %v; want every state at 0", outbox, tickets)
		}

		e.fire("fridge-1", "compressor")                                                           // offered, its offer sent
		e.reply(alice, "stop")                                                                     // opted out
		e.fire("fridge-2", "compressor")                                                           // offered, sent
		e.fire("fridge-2", "fan")                                                                  // review: within the contact cooldown of fridge-2's offer
		must(e.n.SendMessage(e.ctx, e.ticket("fridge-2", "compressor").ID, "dispatcher", "hello")) // pending until a poll

		outbox = gauges(t, reg, "proactive_notify_outbox_messages")
		if outbox["sent"] != 3 || outbox["pending"] != 1 || outbox["failed"] != 0 {
			t.Errorf("outbox gauges %v, want 3 sent (two offers, the STOP's confirmation) and 1 pending", outbox)
		}
		tickets = gauges(t, reg, "proactive_tickets")
		if tickets["offered"] != 2 || tickets["review"] != 1 || tickets["open"] != 0 || tickets["closed"] != 0 {
			t.Errorf("ticket gauges %v, want 2 offered and 1 in review", tickets)
		}
	})
}
