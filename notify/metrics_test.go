package notify_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/proactivehq/proactive"
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
		if len(outbox) != 3 || outbox["pending"] != 0 || len(tickets) != 5 || tickets["open"] != 0 || tickets["review"] != 0 {
			t.Fatalf("empty database: outbox %v, tickets %v; want every live state at 0", outbox, tickets)
		}

		e.fire("fridge-1", "compressor")                                                           // offered, its offer sent
		e.reply(alice, "stop")                                                                     // opted out
		e.fire("fridge-2", "compressor")                                                           // offered, sent
		e.fire("fridge-2", "fan")                                                                  // review: within the contact cooldown of fridge-2's offer
		must(e.n.SendMessage(e.ctx, e.ticket("fridge-2", "compressor").ID, "dispatcher", "hello")) // pending until a poll

		outbox = gauges(t, reg, "proactive_notify_outbox_messages")
		if len(outbox) != 3 || outbox["pending"] != 1 || outbox["unknown"] != 0 {
			t.Errorf("outbox gauges %v, want 1 pending and only the live states", outbox)
		}
		if sent := counterOf(t, reg, "proactive_notify_attempts_total", "sent"); sent != 3 {
			t.Errorf("attempts sent = %v, want 3 (two offers, the STOP's confirmation)", sent)
		}
		tickets = gauges(t, reg, "proactive_tickets")
		if len(tickets) != 5 || tickets["offered"] != 2 || tickets["review"] != 1 || tickets["open"] != 0 {
			t.Errorf("ticket gauges %v, want 2 offered and 1 in review, only the live statuses", tickets)
		}
	})
}

// family returns the samples of a metric family by their first label's
// value ("" for a family without labels).
func family(t *testing.T, reg *prometheus.Registry, name string) map[string]*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.Metric{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			k := ""
			if len(m.GetLabel()) > 0 {
				k = m.GetLabel()[0].GetValue()
			}
			out[k] = m
		}
	}
	return out
}

// counterOf returns one labelled counter's value; it fails if the series is
// absent, since every known label value starts at 0.
func counterOf(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	m, ok := family(t, reg, name)[label]
	if !ok || m.GetCounter() == nil {
		t.Fatalf("%s{%q}: no counter series", name, label)
	}
	return m.GetCounter().GetValue()
}

// TestOutcomeMetrics follows one ticket from its offer to its closing and
// finds each step counted where it happened: the offer made and booked,
// the time to the visit and to the resolution, the closing's outcome.
func TestOutcomeMetrics(t *testing.T) {
	testenv.EachDialect(t, func(t *testing.T, dsn string) {
		reg := prometheus.NewRegistry()
		e := newEnv(t, dsn, func(o *notify.Options) { o.Registerer = reg })
		for _, o := range []string{"offered", "booked", "declined", "expired"} {
			if v := counterOf(t, reg, "proactive_notify_offers_total", o); v != 0 {
				t.Errorf("fresh offers{%s} = %v", o, v)
			}
		}
		counterOf(t, reg, "proactive_tickets_closed_total", "false_alarm")
		counterOf(t, reg, "proactive_alerts_held_total", "quiet_hours")
		counterOf(t, reg, "proactive_notify_status_callbacks_total", "undelivered")

		e.fire("fridge-1", "compressor")
		tk := e.ticket("fridge-1", "compressor")
		e.reply(alice, "2")
		e.poll()
		visit := time.Date(2026, 3, 10, 10, 5, 0, 0, paris)
		e.clock.Set(visit)
		must(e.n.VisitDone(e.ctx, tk.ID, "tech-paris", proactive.OutcomePartReplaced, "new compressor"))
		e.poll()
		e.reply(alice, "5") // the survey's answer closes the ticket
		e.poll()

		if got := counterOf(t, reg, "proactive_notify_offers_total", "offered"); got != 1 {
			t.Errorf("offers offered = %v, want 1", got)
		}
		if got := counterOf(t, reg, "proactive_notify_offers_total", "booked"); got != 1 {
			t.Errorf("offers booked = %v, want 1", got)
		}
		if got := counterOf(t, reg, "proactive_tickets_closed_total", "part_replaced"); got != 1 {
			t.Errorf("tickets closed part_replaced = %v, want 1", got)
		}
		want := visit.Sub(monday0830).Seconds()
		if h := family(t, reg, "proactive_notify_time_to_visit_seconds")[""].GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != want {
			t.Errorf("time to visit: %d samples, sum %v; want 1 of %v", h.GetSampleCount(), h.GetSampleSum(), want)
		}
		if h := family(t, reg, "proactive_notify_resolution_seconds")[""].GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() < want {
			t.Errorf("resolution: %d samples, sum %v; want 1 of at least %v", h.GetSampleCount(), h.GetSampleSum(), want)
		}
		if h := family(t, reg, "proactive_notify_alert_to_first_sms_seconds")[""].GetHistogram(); h.GetSampleCount() != 1 {
			t.Errorf("alert to first SMS: %d samples, want 1", h.GetSampleCount())
		}
	})
}
