package devices_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

const month = 30 * 24 * time.Hour

// webhookFixture is a store with two webhooks that both want a customer's
// opt-out, so that each opt-out is one event with two deliveries.
type webhookFixture struct {
	t     *testing.T
	s     *devices.Store
	clock *fakeClock
	a, b  proactive.Webhook
	// event is the public id of each customer's opt-out event.
	event map[string]string
	n     int
}

func newWebhookFixture(t *testing.T, dsn string) *webhookFixture {
	f := &webhookFixture{t: t, clock: newClock(), event: map[string]string{}}
	f.s = mustOpen(t, dsn, withClock(f.clock))
	for i, w := range []*proactive.Webhook{&f.a, &f.b} {
		h, err := f.s.CreateWebhook(t.Context(), proactive.Webhook{URL: fmt.Sprintf("https://hook-%d.example/in", i),
			Events: []proactive.EventType{proactive.EventCustomerOptedOut}}, "s3cret-s3cret-s3cret")
		if err != nil {
			t.Fatal(err)
		}
		*w = h
	}
	return f
}

// optOut emits the opt-out event of a new customer id.
func (f *webhookFixture) optOut(id string) {
	f.t.Helper()
	f.n++
	mustCustomer(f.t, f.s, id, fmt.Sprintf("+336%08d", f.n))
	for _, granted := range []bool{true, false} {
		if _, err := f.s.RecordConsent(f.t.Context(), id, proactive.ConsentEvent{Granted: granted, Method: proactive.ConsentAPI, Actor: "test"}); err != nil {
			f.t.Fatal(err)
		}
	}
}

// settle attempts every due delivery of customer id's event, with the
// outcome state gives its webhook (delivered, dead, or pending: a retry in
// an hour); a nil state only notes the event's id.
func (f *webhookFixture) settle(id string, state func(webhook int64) string) {
	f.t.Helper()
	ctx, now := f.t.Context(), f.clock.Now()
	due, err := f.s.WebhookDue(ctx, now, 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, d := range due {
		var data proactive.CustomerEvent
		if err := json.Unmarshal(d.Event.Data, &data); err != nil || data.CustomerID != id {
			continue
		}
		f.event[id] = d.Event.ID
		n++
		if state == nil {
			continue
		}
		if ok, err := f.s.WebhookClaim(ctx, d.ID, now, now.Add(time.Minute)); err != nil || !ok {
			f.t.Fatalf("claim %d: %v, %v", d.ID, ok, err)
		}
		r := devices.DeliveryResult{State: state(d.Webhook), Status: 200, At: now}
		if r.State == devices.DeliveryPending {
			r.Status, r.Next, r.Error = 500, now.Add(time.Hour), "receiver answered 500"
		}
		if err := f.s.WebhookResult(ctx, d.ID, r); err != nil {
			f.t.Fatal(err)
		}
	}
	if n != 2 {
		f.t.Fatalf("%s: %d due deliveries, want 2", id, n)
	}
}

// log maps each event id in a webhook's delivery log to its state.
func (f *webhookFixture) log(hook int64) map[string]string {
	f.t.Helper()
	page, err := f.s.WebhookDeliveries(f.t.Context(), hook, devices.ListOptions{Limit: 500})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range page.Items {
		out[d.EventID] = d.State
	}
	return out
}

// prune prunes with batches of batch rows until nothing is left, and
// returns the deliveries and events deleted.
func (f *webhookFixture) prune(s *devices.Store, batch int) (deliveries, events int) {
	f.t.Helper()
	for {
		n, m, err := s.PruneWebhooks(f.t.Context(), f.clock.Now().Add(-month), batch)
		if err != nil {
			f.t.Error(err)
			return deliveries, events
		}
		if n > batch || m > batch {
			f.t.Errorf("one call deleted %d deliveries and %d events, over the batch of %d", n, m, batch)
		}
		deliveries, events = deliveries+n, events+m
		if n == 0 && m == 0 {
			return deliveries, events
		}
	}
}

func (f *webhookFixture) events() int {
	f.t.Helper()
	var n int
	if err := f.s.ReadDB().QueryRowContext(f.t.Context(), `SELECT COUNT(*) FROM webhook_events`).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *webhookFixture) wantLog(hook int64, want map[string]string) {
	f.t.Helper()
	got := f.log(hook)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		f.t.Errorf("webhook %d's log %v, want %v", hook, got, want)
	}
}

// Retention deletes delivered and dead deliveries that finished before the
// cutoff, a batch at a time, and the events no delivery refers to any
// more; pending deliveries (never tried, retrying, or retried by an admin)
// stay whatever their age, and so do their events.
func TestPruneWebhooks(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		f := newWebhookFixture(t, dsn)
		state := func(a, b string) func(int64) string {
			return func(w int64) string {
				if w == f.a.ID {
					return a
				}
				return b
			}
		}
		f.optOut("c0")
		f.settle("c0", state(devices.DeliveryDead, devices.DeliveryDelivered))
		f.optOut("c1")
		f.settle("c1", state(devices.DeliveryDelivered, devices.DeliveryDead))
		f.optOut("c2")
		f.settle("c2", state(devices.DeliveryDelivered, devices.DeliveryPending))
		f.optOut("c3") // never attempted
		f.settle("c3", nil)
		if d, m := f.prune(f.s, 1); d != 0 || m != 0 {
			t.Fatalf("pruned %d deliveries and %d events of the last minutes", d, m)
		}

		f.clock.Add(month + time.Hour)
		f.optOut("c4")
		f.settle("c4", state(devices.DeliveryDelivered, devices.DeliveryDead))
		// An admin retries c0's dead delivery: pending again, kept.
		var c0 int64
		page, err := f.s.WebhookDeliveries(t.Context(), f.a.ID, devices.ListOptions{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Items {
			if d.EventID == f.event["c0"] {
				c0 = d.ID
			}
		}
		if _, err := f.s.RetryWebhookDelivery(t.Context(), f.a.ID, c0); err != nil {
			t.Fatal(err)
		}

		// c0's to b, c1's both, c2's to a; only c1's event has no delivery
		// left.
		if d, m := f.prune(f.s, 1); d != 4 || m != 1 {
			t.Errorf("pruned %d deliveries and %d events, want 4 and 1", d, m)
		}
		ev := f.event
		f.wantLog(f.a.ID, map[string]string{ev["c0"]: "pending", ev["c3"]: "pending", ev["c4"]: "delivered"})
		f.wantLog(f.b.ID, map[string]string{ev["c2"]: "pending", ev["c3"]: "pending", ev["c4"]: "dead"})
		if n := f.events(); n != 4 {
			t.Errorf("%d events left, want c0's, c2's, c3's and c4's", n)
		}
		// The old pending ones still go out, with their events.
		due, err := f.s.WebhookDue(t.Context(), f.clock.Now(), 100)
		if err != nil || len(due) != 4 {
			t.Fatalf("due after pruning: %d, %v; want c0's, c2's and c3's two", len(due), err)
		}

		// Once they are settled and old too, nothing is left.
		f.settle("c3", state(devices.DeliveryDelivered, devices.DeliveryDelivered))
		for _, d := range due {
			if d.Event.ID == ev["c0"] || d.Event.ID == ev["c2"] {
				now := f.clock.Now()
				if ok, err := f.s.WebhookClaim(t.Context(), d.ID, now, now.Add(time.Minute)); err != nil || !ok {
					t.Fatalf("claim: %v %v", ok, err)
				}
				if err := f.s.WebhookResult(t.Context(), d.ID, devices.DeliveryResult{State: devices.DeliveryDead, At: now}); err != nil {
					t.Fatal(err)
				}
			}
		}
		f.clock.Add(month + time.Hour)
		if d, m := f.prune(f.s, 2); d != 6 || m != 4 {
			t.Errorf("pruned %d deliveries and %d events, want 6 and 4", d, m)
		}
		f.wantLog(f.a.ID, map[string]string{})
		f.wantLog(f.b.ID, map[string]string{})
		if n := f.events(); n != 0 {
			t.Errorf("%d events left", n)
		}
	})
}

// Two processes pruning the same backlog at once delete each row once,
// without an error.
func TestPruneWebhooksConcurrently(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		f := newWebhookFixture(t, dsn)
		const customers = 40
		for i := range customers {
			id := fmt.Sprintf("c%d", i)
			f.optOut(id)
			f.settle(id, func(int64) string { return devices.DeliveryDelivered })
		}
		f.clock.Add(month + time.Hour)
		other := mustOpen(t, dsn, withClock(f.clock))
		var wg sync.WaitGroup
		var mu sync.Mutex
		deliveries, events := 0, 0
		for _, s := range []*devices.Store{f.s, other} {
			wg.Go(func() {
				d, m := f.prune(s, 7)
				mu.Lock()
				defer mu.Unlock()
				deliveries, events = deliveries+d, events+m
			})
		}
		wg.Wait()
		if deliveries != 2*customers || events != customers {
			t.Errorf("pruned %d deliveries and %d events together, want %d and %d", deliveries, events, 2*customers, customers)
		}
		if n := f.events(); n != 0 {
			t.Errorf("%d events left", n)
		}
	})
}
