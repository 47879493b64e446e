package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/internal/testenv"
)

// batchWriterFunc adapts a function to ingest.Writer, events included.
type batchWriterFunc func(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus, events []proactive.Event) error

func (f batchWriterFunc) Write(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus, events []proactive.Event) error {
	return f(ctx, samples, statuses, events)
}

// eventSink records what an EventSink is given.
type eventSink struct {
	mu     sync.Mutex
	events []proactive.Event
}

func (s *eventSink) sink(_ context.Context, events []proactive.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, events...)
}

func (s *eventSink) got() []proactive.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

func fridgeLookup(id proactive.DeviceID) (string, bool) {
	if id == "fridge-1" {
		return "fridge-x200", true
	}
	return "", false
}

// An event is acknowledged only once its write succeeded, and only then
// handed to the event sink, with its device and model.
func TestIngesterAcksEventsOnlyAfterWrite(t *testing.T) {
	var log events
	entered := make(chan struct{})
	release := make(chan struct{})
	calls := 0
	w := batchWriterFunc(func(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus, evs []proactive.Event) error {
		calls++
		log.add(fmt.Sprintf("write start: %d samples, %d statuses, %d events", len(samples), len(statuses), len(evs)))
		if calls == 1 {
			close(entered)
			<-release
			log.add("write failed")
			return errors.New("influxdb: 503 service unavailable")
		}
		log.add("write ok")
		return nil
	})
	sinkCalls := 0
	in, _ := newIngester(t, ingest.Options{
		Writer: w, Lookup: fridgeLookup,
		EventSink: func(_ context.Context, evs []proactive.Event) {
			for _, e := range evs {
				log.add(fmt.Sprintf("event sink: %s %s %s %s", e.Device, e.Model, e.Code, e.Time.Format(time.RFC3339Nano)))
			}
		},
		Sink: func(context.Context, []proactive.Sample, []proactive.DeviceStatus) { sinkCalls++ },
	})
	mustRun(t, in)

	msg, d := message("devices/fridge-1/events", `{"ts": 1763791200000, "code": "E101", "component": "compressor"}`, received)
	msg.Ack = func() { log.add("ack"); d.settle(true) }
	msg.Nack = func() { log.add("nack"); d.settle(false) }
	if err := in.Handle(t.Context(), msg); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	<-entered
	if acks, nacks := d.counts(); acks != 0 || nacks != 0 {
		t.Errorf("while the write is failing: acks = %d, nacks = %d; want none", acks, nacks)
	}
	close(release)
	d.wait(t)
	d.assertAcked(t)
	// The event sink is called after the ack, in the same settle; wait for it.
	want := []string{
		"write start: 0 samples, 0 statuses, 1 events", "write failed",
		"write start: 0 samples, 0 statuses, 1 events", "write ok", "ack",
		"event sink: fridge-1 fridge-x200 E101 2025-11-22T06:00:00Z",
	}
	testenv.Eventually(t, 0, func() error {
		if got := log.list(); !slices.Equal(got, want) {
			return fmt.Errorf("log = %q, want %q", got, want)
		}
		return nil
	})
	if sinkCalls != 0 {
		t.Errorf("the sample sink was called %d times for a batch of events only", sinkCalls)
	}
	if got := in.PointsWritten(); got != 1 {
		t.Errorf("PointsWritten = %d, want 1", got)
	}
}

// Events share batches with samples; each kind reaches its own sink, and
// what the store was given is what the sinks get.
func TestIngesterEventsShareBatchesWithSamples(t *testing.T) {
	st := &store{}
	var es eventSink
	var mu sync.Mutex
	var sunk []proactive.Sample
	in, m := newIngester(t, ingest.Options{
		Writer: st, Lookup: fridgeLookup, EventSink: es.sink,
		Sink: func(_ context.Context, samples []proactive.Sample, _ []proactive.DeviceStatus) {
			mu.Lock()
			sunk = append(sunk, samples...)
			mu.Unlock()
		},
	})
	mustRun(t, in)

	var ds []*delivery
	for _, mm := range []struct{ topic, payload string }{
		{"devices/fridge-1/telemetry", `{"ts": 1763791200000, "metrics": {"compressor_current": 9.5}}`},
		{"devices/fridge-1/events", `[{"ts": 1763791200000, "code": "E101", "severity": "error", "text": "overcurrent trip"}, {"code": "I1"}]`},
		{"devices/fridge-2/events", `{"ts": "2025-11-22T06:00:01Z", "code": "W7", "component": "fan"}`},
	} {
		msg, d := message(mm.topic, mm.payload, received)
		if err := in.Handle(t.Context(), msg); err != nil {
			t.Fatalf("Handle %s: %v", mm.topic, err)
		}
		ds = append(ds, d)
	}
	for _, d := range ds {
		d.wait(t)
		d.assertAcked(t)
	}
	at := time.UnixMilli(tsMillis)
	want := []proactive.Event{
		{Device: "fridge-1", Model: "fridge-x200", Time: at, Code: "E101", Severity: "error", Text: "overcurrent trip"},
		{Device: "fridge-1", Model: "fridge-x200", Time: received, Code: "I1"},
		{Device: "fridge-2", Time: at.Add(time.Second), Code: "W7", Component: "fan"},
	}
	st.mu.Lock()
	stored := slices.Clone(st.events)
	st.mu.Unlock()
	assertEvents(t, stored, want)
	// The sinks are called after the acks, in the same settle.
	testenv.Eventually(t, 0, func() error {
		mu.Lock()
		defer mu.Unlock()
		if n := len(es.got()); n < len(want) || len(sunk) == 0 {
			return fmt.Errorf("event sink got %d events, want %d; sample sink %d samples, want 1", n, len(want), len(sunk))
		}
		return nil
	})
	assertEvents(t, es.got(), want)
	mu.Lock()
	if len(sunk) != 1 || sunk[0].Metrics["compressor_current"] != 9.5 {
		t.Errorf("sample sink got %+v, want the one sample", sunk)
	}
	mu.Unlock()
	if got := value(t, m.Messages.WithLabelValues("events")); got != 2 {
		t.Errorf("events messages = %v, want 2", got)
	}
	if got := value(t, m.Messages.WithLabelValues("telemetry")); got != 1 {
		t.Errorf("telemetry messages = %v, want 1", got)
	}
	if got := in.PointsWritten(); got != 4 {
		t.Errorf("PointsWritten = %d, want 4", got)
	}
}

// Bad events go to the dead letters with their reason, counted; the good
// entries of an array are still stored; with RequireRegistration, an
// unregistered device's events are refused as its telemetry is.
func TestIngesterDeadLettersBadEvents(t *testing.T) {
	st := &store{}
	in, m := newIngester(t, ingest.Options{Writer: st, Lookup: fridgeLookup, RequireRegistration: true})
	mustRun(t, in)

	bad := []struct {
		name, topic, payload string
		reasons              []ingest.Reason
	}{
		{"not JSON", "devices/fridge-1/events", `E101`, []ingest.Reason{ingest.ReasonNotJSON}},
		{"no code", "devices/fridge-1/events", `{"text": "?"}`, []ingest.Reason{ingest.ReasonBadEventCode}},
		{"bad severity", "devices/fridge-1/events", `{"code": "E1", "severity": "fatal"}`, []ingest.Reason{ingest.ReasonBadSeverity}},
		{"empty array", "devices/fridge-1/events", `[]`, []ingest.Reason{ingest.ReasonNoEvents}},
		{"bad device id", "devices/fridge 1/events", `{"code": "E1"}`, []ingest.Reason{ingest.ReasonBadTopic}},
		{"unregistered device", "devices/fridge-9/events", `{"code": "E1"}`, []ingest.Reason{ingest.ReasonUnknownDevice}},
	}
	want := map[ingest.Reason]float64{}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			msg, d := message(tc.topic, tc.payload, received)
			if err := in.Handle(t.Context(), msg); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			d.wait(t)
			d.assertAcked(t) // dead-lettered, so there is nothing to redeliver
			for _, r := range tc.reasons {
				want[r]++
			}
			for _, r := range ingest.Reasons {
				if got := deadLetterCount(t, m, r); got != want[r] {
					t.Errorf("dead letters %s = %v, want %v", r, got, want[r])
				}
			}
		})
	}

	msg, d := message("devices/fridge-1/events", `[
		{"ts": 1763791200000, "code": "E101"},
		{"code": "E 2"},
		{"code": "E3", "text": "ok"},
		{"code": "E4", "component": "Fan"}
	]`, received)
	if err := in.Handle(t.Context(), msg); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	d.wait(t)
	d.assertAcked(t)
	st.mu.Lock()
	stored := slices.Clone(st.events)
	st.mu.Unlock()
	assertEvents(t, stored, []proactive.Event{
		{Device: "fridge-1", Model: "fridge-x200", Time: time.UnixMilli(tsMillis), Code: "E101"},
		{Device: "fridge-1", Model: "fridge-x200", Time: received, Code: "E3", Text: "ok"},
	})
	want[ingest.ReasonBadEventCode]++
	want[ingest.ReasonBadComponent]++
	for _, r := range ingest.Reasons {
		if got := deadLetterCount(t, m, r); got != want[r] {
			t.Errorf("dead letters %s = %v, want %v", r, got, want[r])
		}
	}
	dl := in.DeadLetters().Recent(2)
	if len(dl) != 2 {
		t.Fatalf("dead letters = %+v, want 2 of the array", dl)
	}
	for i, w := range []struct {
		entry  int
		reason ingest.Reason
	}{{3, ingest.ReasonBadComponent}, {1, ingest.ReasonBadEventCode}} { // newest first
		if dl[i].Entry != w.entry || dl[i].Reason != w.reason || dl[i].Device != "fridge-1" ||
			dl[i].Topic != "devices/fridge-1/events" || dl[i].Detail == "" {
			t.Errorf("dead letter %d = %+v, want entry %d of fridge-1's events rejected for %s", i, dl[i], w.entry, w.reason)
		}
	}
	if got := value(t, m.Messages.WithLabelValues("events")); got != float64(len(bad)+1) {
		t.Errorf("events messages = %v, want %d", got, len(bad)+1)
	}
}

// The embedded broker's per-device ACL lets a device publish its own events,
// acknowledged once stored, and refuses another device's.
func TestEmbeddedBrokerTakesADevicesOwnEvents(t *testing.T) {
	b := startAuthBroker(t)
	own, _ := pahoDevice(t, b.addr, "pump-1", "s3cret-1")

	tok := own.Publish("devices/pump-1/events", 1, false, `{"ts": 1763791200000, "code": "E101", "component": "motor"}`)
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	// PUBACK means stored.
	b.store.mu.Lock()
	stored := slices.Clone(b.store.events)
	b.store.mu.Unlock()
	assertEvents(t, stored, []proactive.Event{{Device: "pump-1", Time: time.UnixMilli(tsMillis), Code: "E101", Component: "motor"}})

	forger, lost := pahoDevice(t, b.addr, "pump-2", "s3cret-2")
	forger.Publish("devices/pump-1/events", 1, false, `{"code": "FORGED"}`)
	// MQTT 3.1.1 has no negative PUBACK: the broker drops the forger.
	select {
	case <-lost:
	case <-time.After(waitLimit):
		t.Fatal("forger still connected")
	}
	// Batches are written in order, so once pump-1's next publish is
	// acknowledged, the forgery would be in the store.
	tok = own.Publish("devices/pump-1/events", 1, false, `{"ts": 1763791260000, "code": "E102"}`)
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	b.store.mu.Lock()
	stored = slices.Clone(b.store.events)
	b.store.mu.Unlock()
	if len(stored) != 2 || stored[1].Code != "E102" {
		t.Errorf("stored %+v, want pump-1's own two events", stored)
	}
}

// The subscriber to an external broker takes device events as it takes
// telemetry.
func TestSubscriberTakesEvents(t *testing.T) {
	brokerURL := testenv.Mosquitto(t)
	// Topics and client ids of this test's own: the broker is shared.
	prefix := fmt.Sprintf("events-test-%d", time.Now().UnixNano())
	st := &store{}
	in, _ := newIngester(t, ingest.Options{Writer: st, TopicPrefix: prefix})
	mustRun(t, in)
	sub, err := ingest.NewSubscriber(in, ingest.SubscriberOptions{URL: brokerURL, ClientID: prefix + "-ingest"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("subscriber Run: %v", err)
		}
	})
	testenv.Eventually(t, 0, sub.Ready)

	dev := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID(prefix + "-dev").SetCleanSession(true))
	if tok := dev.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { dev.Disconnect(50) })
	if tok := dev.Publish(prefix+"/pump-1/events", 1, false, `{"ts": 1763791200000, "code": "E101"}`); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	testenv.Eventually(t, 0, func() error {
		st.mu.Lock()
		defer st.mu.Unlock()
		if len(st.events) != 1 || st.events[0].Device != "pump-1" || st.events[0].Code != "E101" {
			return fmt.Errorf("stored events %+v, want pump-1's E101", st.events)
		}
		return nil
	})
}
