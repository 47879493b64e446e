package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/internal/testenv"
)

// waitLimit bounds every wait in these tests so that a bug fails a test
// instead of hanging it. Nothing waits for it to pass.
const waitLimit = 5 * time.Second

// writerFunc adapts a function to ingest.Writer for the tests of samples
// and statuses; it fails the batches that hold events, which those tests
// do not send (see batchWriterFunc).
type writerFunc func(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus) error

func (f writerFunc) Write(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus, events []proactive.Event) error {
	if len(events) > 0 {
		return fmt.Errorf("writerFunc given %d events", len(events))
	}
	return f(ctx, samples, statuses)
}

// store is a Writer that keeps everything it is given and never fails.
type store struct {
	mu       sync.Mutex
	batches  int
	samples  []proactive.Sample
	statuses []proactive.DeviceStatus
	events   []proactive.Event
}

func (s *store) Write(_ context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus, events []proactive.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches++
	s.samples = append(s.samples, samples...)
	s.statuses = append(s.statuses, statuses...)
	s.events = append(s.events, events...)
	return nil
}

func (s *store) stored() ([]proactive.Sample, []proactive.DeviceStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples), slices.Clone(s.statuses)
}

// events is an ordered log shared by fakes, to check what happened before what.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// delivery records how a message was settled.
type delivery struct {
	mu          sync.Mutex
	acks, nacks int
	settled     chan struct{}
	once        sync.Once
}

func (d *delivery) settle(ack bool) {
	d.mu.Lock()
	if ack {
		d.acks++
	} else {
		d.nacks++
	}
	d.mu.Unlock()
	d.once.Do(func() { close(d.settled) })
}

func (d *delivery) counts() (acks, nacks int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acks, d.nacks
}

// wait blocks until the message is acked or nacked.
func (d *delivery) wait(tb testing.TB) {
	tb.Helper()
	select {
	case <-d.settled:
	case <-time.After(waitLimit):
		tb.Fatal("message was neither acked nor nacked")
	}
}

// assertAcked checks that the message was acked exactly once and never nacked.
func (d *delivery) assertAcked(tb testing.TB) {
	tb.Helper()
	if acks, nacks := d.counts(); acks != 1 || nacks != 0 {
		tb.Errorf("acks = %d, nacks = %d; want 1 ack", acks, nacks)
	}
}

// assertNacked checks that the message was nacked exactly once and never acked.
func (d *delivery) assertNacked(tb testing.TB) {
	tb.Helper()
	if acks, nacks := d.counts(); acks != 0 || nacks != 1 {
		tb.Errorf("acks = %d, nacks = %d; want 1 nack", acks, nacks)
	}
}

func message(topic, payload string, received time.Time) (ingest.Message, *delivery) {
	d := &delivery{settled: make(chan struct{})}
	return ingest.Message{
		Topic: topic, Payload: []byte(payload), Received: received,
		Ack:  func() { d.settle(true) },
		Nack: func() { d.settle(false) },
	}, d
}

// newIngester returns an ingester with fast timings and a discard logger;
// fields set in opts are kept.
func newIngester(tb testing.TB, opts ingest.Options) (*ingest.Ingester, *ingest.Metrics) {
	tb.Helper()
	if opts.Metrics == nil {
		opts.Metrics = ingest.NewMetrics(prometheus.NewRegistry())
	}
	opts.Logger = slog.New(slog.DiscardHandler)
	if opts.Linger == 0 {
		opts.Linger = time.Millisecond
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = 5 * time.Millisecond
	}
	if opts.RetryMin == 0 {
		opts.RetryMin = time.Millisecond
	}
	if opts.RetryMax == 0 {
		opts.RetryMax = 4 * time.Millisecond
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return received }
	}
	return ingest.New(opts), opts.Metrics
}

// running is an ingester's Run under way.
type running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// stop cancels Run's context and waits for Run to return.
func (r *running) stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(waitLimit):
			r.err = errors.New("Run did not return after its context was cancelled")
		}
	})
	return r.err
}

// mustRun starts in.Run; the test's cleanup stops it.
func mustRun(tb testing.TB, in *ingest.Ingester) *running {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- in.Run(ctx) }()
	tb.Cleanup(func() {
		if err := r.stop(); err != nil {
			tb.Error(err)
		}
	})
	return r
}

// value reads a counter or gauge, like testutil.ToFloat64 (which this
// module's go.mod does not yet provide for: it needs kylelemons/godebug).
func value(tb testing.TB, c prometheus.Collector) float64 {
	tb.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		tb.Fatalf("register collector: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	if len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		tb.Fatalf("collector gathered %d families, want one metric", len(mfs))
	}
	m := mfs[0].GetMetric()[0]
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	tb.Fatalf("metric %s is neither a counter nor a gauge", mfs[0].GetName())
	return 0
}

func deadLetterCount(tb testing.TB, m *ingest.Metrics, r ingest.Reason) float64 {
	tb.Helper()
	return value(tb, m.DeadLetters.WithLabelValues(string(r)))
}

func TestIngesterStoresGoodEntriesOfABadBatch(t *testing.T) {
	st := &store{}
	in, m := newIngester(t, ingest.Options{Writer: st})
	mustRun(t, in)

	at := time.UnixMilli(tsMillis)
	msg, d := message("devices/fridge-1/telemetry", `[
		{"ts": 1763791200000, "metrics": {"cabinet_temp": 4.1}},
		{"ts": 1763791201000, "metrics": {"Cabinet_temp": 4.2}},
		{"ts": 1763791202000, "metrics": {"cabinet_temp": 4.3, "door_open": true}}
	]`, received)
	if err := in.Handle(t.Context(), msg); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	d.wait(t)
	d.assertAcked(t)

	samples, _ := st.stored()
	want := []proactive.Sample{
		{Device: "fridge-1", Time: at, Metrics: map[string]float64{"cabinet_temp": 4.1}},
		{Device: "fridge-1", Time: at.Add(2 * time.Second), Metrics: map[string]float64{"cabinet_temp": 4.3, "door_open": 1}},
	}
	assertSamples(t, samples, want)
	if got := deadLetterCount(t, m, ingest.ReasonBadMetricName); got != 1 {
		t.Errorf("dead letters bad_metric_name = %v, want 1", got)
	}
	if got := in.PointsWritten(); got != 2 {
		t.Errorf("PointsWritten = %d, want 2", got)
	}
	if got := value(t, m.PointsWritten); got != 2 {
		t.Errorf("points written metric = %v, want 2", got)
	}
	dl := in.DeadLetters().Recent(0)
	if len(dl) != 1 {
		t.Fatalf("dead letters = %v, want 1", dl)
	}
	if dl[0].Entry != 1 || dl[0].Reason != ingest.ReasonBadMetricName || dl[0].Device != "fridge-1" ||
		dl[0].Topic != "devices/fridge-1/telemetry" || !dl[0].Time.Equal(received) || dl[0].Detail == "" {
		t.Errorf("dead letter = %+v, want entry 1 of fridge-1 rejected for bad_metric_name", dl[0])
	}
}

func TestIngesterCountsBadInputAndKeepsWorking(t *testing.T) {
	st := &store{}
	in, m := newIngester(t, ingest.Options{Writer: st})
	mustRun(t, in)

	tooLarge := `{"metrics": {"a": 1}}` + strings.Repeat(" ", ingest.MaxPayload)
	bad := []struct {
		name, topic, payload string
		reasons              []ingest.Reason
	}{
		{"not JSON", "devices/f1/telemetry", `temp=4`, []ingest.Reason{ingest.ReasonNotJSON}},
		{"empty payload", "devices/f1/telemetry", ``, []ingest.Reason{ingest.ReasonNotJSON}},
		{"top-level number", "devices/f1/telemetry", `42`, []ingest.Reason{ingest.ReasonWrongType}},
		{"string value", "devices/f1/telemetry", `{"metrics": {"a": "x"}}`, []ingest.Reason{ingest.ReasonWrongType}},
		{"NaN", "devices/f1/telemetry", `{"metrics": {"a": "NaN"}}`, []ingest.Reason{ingest.ReasonNonFinite}},
		{"huge number", "devices/f1/telemetry", `{"metrics": {"a": 1e400}}`, []ingest.Reason{ingest.ReasonNonFinite}},
		{"bad name", "devices/f1/telemetry", `{"metrics": {"A": 1}}`, []ingest.Reason{ingest.ReasonBadMetricName}},
		{"bad ts", "devices/f1/telemetry", `{"ts": "noon", "metrics": {"a": 1}}`, []ingest.Reason{ingest.ReasonBadTimestamp}},
		{"no metrics", "devices/f1/telemetry", `{"metrics": {}}`, []ingest.Reason{ingest.ReasonNoMetrics}},
		{"too large", "devices/f1/telemetry", tooLarge, []ingest.Reason{ingest.ReasonTooLarge}},
		{"bad device id", "devices/f 1/telemetry", `{"metrics": {"a": 1}}`, []ingest.Reason{ingest.ReasonBadTopic}},
		{"no suffix", "devices/f1", `{"metrics": {"a": 1}}`, []ingest.Reason{ingest.ReasonBadTopic}},
		{"bad status", "devices/f1/status", `{"online": "yes"}`, []ingest.Reason{ingest.ReasonWrongType}},
		{"status not JSON", "devices/f1/status", `on`, []ingest.Reason{ingest.ReasonNotJSON}},
		{"array of bad entries", "devices/f1/telemetry", `[{"metrics": {}}, 5, {"metrics": {"a": "Inf"}}]`,
			[]ingest.Reason{ingest.ReasonNoMetrics, ingest.ReasonWrongType, ingest.ReasonNonFinite}},
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

	// A message on a topic outside the prefix is not ours: acked, not counted.
	foreign, fd := message("other/f1/telemetry", `garbage`, received)
	if err := in.Handle(t.Context(), foreign); err != nil {
		t.Fatalf("Handle foreign topic: %v", err)
	}
	fd.wait(t)
	fd.assertAcked(t)

	good, gd := message("devices/f1/telemetry", `{"ts": 1763791200000, "metrics": {"a": 1.5}}`, received)
	if err := in.Handle(t.Context(), good); err != nil {
		t.Fatalf("Handle good message: %v", err)
	}
	gd.wait(t)
	gd.assertAcked(t)
	samples, statuses := st.stored()
	assertSamples(t, samples, []proactive.Sample{{Device: "f1", Time: time.UnixMilli(tsMillis), Metrics: map[string]float64{"a": 1.5}}})
	if len(statuses) != 0 {
		t.Errorf("stored statuses %v, want none", statuses)
	}
	for _, r := range ingest.Reasons {
		if got := deadLetterCount(t, m, r); got != want[r] {
			t.Errorf("after the good message: dead letters %s = %v, want %v", r, got, want[r])
		}
	}
	// Every message under the prefix is counted as received, bad or good
	// (len(bad) and the good one); the foreign one is not.
	counted := value(t, m.Messages.WithLabelValues("telemetry")) + value(t, m.Messages.WithLabelValues("status"))
	if want := float64(len(bad) + 1); counted != want {
		t.Errorf("messages counted = %v, want %v", counted, want)
	}
	if got := value(t, m.Messages.WithLabelValues("status")); got != 2 {
		t.Errorf("status messages = %v, want 2", got)
	}
}

func TestIngesterAcksOnlyAfterWrite(t *testing.T) {
	var ev events
	entered := make(chan struct{})
	release := make(chan struct{})
	calls := 0
	w := writerFunc(func(ctx context.Context, samples []proactive.Sample, _ []proactive.DeviceStatus) error {
		calls++
		ev.add("write start")
		if calls == 1 {
			close(entered)
			<-release
			ev.add("write failed")
			return errors.New("influxdb: 503 service unavailable")
		}
		ev.add("write ok")
		return nil
	})
	in, _ := newIngester(t, ingest.Options{Writer: w})
	mustRun(t, in)

	msg, d := message("devices/f1/telemetry", `{"metrics": {"a": 1}}`, received)
	msg.Ack = func() { ev.add("ack"); d.settle(true) }
	msg.Nack = func() { ev.add("nack"); d.settle(false) }
	if err := in.Handle(t.Context(), msg); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	<-entered
	if acks, nacks := d.counts(); acks != 0 || nacks != 0 {
		t.Errorf("while the write is under way: acks = %d, nacks = %d; want none", acks, nacks)
	}
	close(release)
	d.wait(t)
	d.assertAcked(t)
	want := []string{"write start", "write failed", "write start", "write ok", "ack"}
	if got := ev.list(); !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

func TestIngesterRetriesUntilWritten(t *testing.T) {
	const failures = 3
	errDown := errors.New("influxdb: connection refused")
	var (
		mu       sync.Mutex
		attempts [][]proactive.Sample
		in       *ingest.Ingester
		lastErrs []error
	)
	w := writerFunc(func(ctx context.Context, samples []proactive.Sample, _ []proactive.DeviceStatus) error {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, slices.Clone(samples))
		lastErrs = append(lastErrs, in.WriteError())
		if len(attempts) <= failures {
			return fmt.Errorf("write to influxdb: %w", errDown)
		}
		return nil
	})
	in, m := newIngester(t, ingest.Options{Writer: w})
	mustRun(t, in)

	msg, d := message("devices/f1/telemetry", `{"ts": 1763791200000, "metrics": {"a": 1}}`, received)
	if err := in.Handle(t.Context(), msg); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	d.wait(t)
	d.assertAcked(t)

	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != failures+1 {
		t.Fatalf("writer called %d times, want %d", len(attempts), failures+1)
	}
	want := []proactive.Sample{{Device: "f1", Time: time.UnixMilli(tsMillis), Metrics: map[string]float64{"a": 1}}}
	for i, a := range attempts {
		t.Run(fmt.Sprintf("attempt %d", i+1), func(t *testing.T) { assertSamples(t, a, want) })
	}
	// Before the first attempt nothing had failed; before each retry the
	// previous failure is reported.
	if lastErrs[0] != nil {
		t.Errorf("WriteError before the first attempt = %v, want nil", lastErrs[0])
	}
	for i := 1; i < len(lastErrs); i++ {
		if !errors.Is(lastErrs[i], errDown) {
			t.Errorf("WriteError before attempt %d = %v, want %v", i+1, lastErrs[i], errDown)
		}
	}
	if err := in.WriteError(); err != nil {
		t.Errorf("WriteError after success = %v, want nil", err)
	}
	if got := value(t, m.WriteErrors.WithLabelValues("true")); got != failures {
		t.Errorf("retryable write errors = %v, want %d", got, failures)
	}
	if got := value(t, m.WriteErrors.WithLabelValues("false")); got != 0 {
		t.Errorf("non-retryable write errors = %v, want 0", got)
	}
	if got := in.PointsWritten(); got != 1 {
		t.Errorf("PointsWritten = %d, want 1", got)
	}
}

// rejectPoison is a store that rejects, as InfluxDB does with a 400, every
// batch holding a sample with the metric "poison".
type rejectPoison struct {
	store
	callsMu  sync.Mutex
	calls    int
	rejected int
}

func (r *rejectPoison) Write(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus, events []proactive.Event) error {
	r.callsMu.Lock()
	r.calls++
	poisoned := slices.ContainsFunc(samples, func(s proactive.Sample) bool { _, ok := s.Metrics["poison"]; return ok })
	if poisoned {
		r.rejected++
	}
	r.callsMu.Unlock()
	if poisoned {
		return fmt.Errorf("write to influxdb: %w: 400 partial write: field type conflict", ingest.ErrRejected)
	}
	return r.store.Write(ctx, samples, statuses, events)
}

func (r *rejectPoison) counts() (calls, rejected int) {
	r.callsMu.Lock()
	defer r.callsMu.Unlock()
	return r.calls, r.rejected
}

func TestIngesterDeadLettersRejectedMessage(t *testing.T) {
	t.Run("alone", func(t *testing.T) {
		w := &rejectPoison{}
		in, m := newIngester(t, ingest.Options{Writer: w})
		mustRun(t, in)

		msg, d := message("devices/f1/telemetry", `{"metrics": {"poison": 1}}`, received)
		if err := in.Handle(t.Context(), msg); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		d.wait(t)
		d.assertAcked(t) // dead-lettered: redelivering it cannot help
		if calls, _ := w.counts(); calls != 1 {
			t.Errorf("writer called %d times, want 1: a rejected write must not be retried", calls)
		}
		if got := deadLetterCount(t, m, ingest.ReasonWriteRejected); got != 1 {
			t.Errorf("dead letters write_rejected = %v, want 1", got)
		}
		if got := value(t, m.WriteErrors.WithLabelValues("false")); got != 1 {
			t.Errorf("non-retryable write errors = %v, want 1", got)
		}
		if got := value(t, m.WriteErrors.WithLabelValues("true")); got != 0 {
			t.Errorf("retryable write errors = %v, want 0", got)
		}
		if got := in.PointsWritten(); got != 0 {
			t.Errorf("PointsWritten = %d, want 0", got)
		}
		dl := in.DeadLetters().Recent(0)
		if len(dl) != 1 || dl[0].Reason != ingest.ReasonWriteRejected || dl[0].Entry != -1 || dl[0].Device != "f1" || dl[0].Detail == "" {
			t.Errorf("dead letters = %+v, want one write_rejected for f1", dl)
		}
	})

	t.Run("in a batch", func(t *testing.T) {
		w := &rejectPoison{}
		var (
			mu   sync.Mutex
			sunk []proactive.Sample
		)
		in, m := newIngester(t, ingest.Options{
			Writer: w,
			Sink: func(_ context.Context, samples []proactive.Sample, _ []proactive.DeviceStatus) {
				mu.Lock()
				sunk = append(sunk, samples...)
				mu.Unlock()
			},
		})
		// The messages are queued before Run starts, so they share a batch.
		inputs := []struct{ topic, payload string }{
			{"devices/f1/telemetry", `{"ts": 1763791200000, "metrics": {"a": 1}}`},
			{"devices/f2/telemetry", `{"ts": 1763791200000, "metrics": {"poison": 1}}`},
			{"devices/f3/status", `{"online": true}`},
			{"devices/f1/telemetry", `{"ts": 1763791201000, "metrics": {"a": 2}}`},
			{"devices/f4/telemetry", `{"ts": 1763791200000, "metrics": {"a": 4}}`},
		}
		var ds []*delivery
		for _, mm := range inputs {
			msg, d := message(mm.topic, mm.payload, received)
			if err := in.Handle(t.Context(), msg); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			ds = append(ds, d)
		}
		run := mustRun(t, in)
		for _, d := range ds {
			d.wait(t)
			d.assertAcked(t)
		}
		if _, rejected := w.counts(); rejected == 0 {
			t.Fatal("the writer never saw the poisoned message")
		}

		// The store accepts again: the ingester keeps going.
		msg, d := message("devices/f1/telemetry", `{"ts": 1763791202000, "metrics": {"a": 3}}`, received)
		if err := in.Handle(t.Context(), msg); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		d.wait(t)
		d.assertAcked(t)
		if err := run.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}

		at := time.UnixMilli(tsMillis)
		want := []proactive.Sample{
			{Device: "f1", Time: at, Metrics: map[string]float64{"a": 1}},
			{Device: "f1", Time: at.Add(time.Second), Metrics: map[string]float64{"a": 2}},
			{Device: "f4", Time: at, Metrics: map[string]float64{"a": 4}},
			{Device: "f1", Time: at.Add(2 * time.Second), Metrics: map[string]float64{"a": 3}},
		}
		samples, statuses := w.stored()
		assertSamples(t, samples, want)
		if len(statuses) != 1 || statuses[0].Device != "f3" || !statuses[0].Online {
			t.Errorf("stored statuses %+v, want f3 online", statuses)
		}
		mu.Lock()
		assertSamples(t, sunk, want)
		mu.Unlock()
		if got := deadLetterCount(t, m, ingest.ReasonWriteRejected); got != 1 {
			t.Errorf("dead letters write_rejected = %v, want 1: only the poisoned message", got)
		}
		if dl := in.DeadLetters().Recent(0); len(dl) != 1 || dl[0].Device != "f2" || dl[0].Reason != ingest.ReasonWriteRejected {
			t.Errorf("dead letters = %+v, want one write_rejected for f2", dl)
		}
		if got := value(t, m.WriteErrors.WithLabelValues("true")); got != 0 {
			t.Errorf("retryable write errors = %v, want 0", got)
		}
		if got := in.PointsWritten(); got != 5 {
			t.Errorf("PointsWritten = %d, want 5", got)
		}
	})
}

func TestIngesterBackpressure(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	st := &store{}
	w := writerFunc(func(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return st.Write(ctx, samples, statuses, nil)
	})
	// One write at a time: TestIngesterWritesInFlight covers more.
	in, m := newIngester(t, ingest.Options{Writer: w, QueueSize: 1, WritesInFlight: 1})
	run := mustRun(t, in)

	m1, d1 := message("devices/f1/telemetry", `{"metrics": {"seq": 1}}`, received)
	if err := in.Handle(t.Context(), m1); err != nil {
		t.Fatalf("Handle m1: %v", err)
	}
	<-entered // m1 is being written and the queue is empty
	m2, d2 := message("devices/f1/telemetry", `{"metrics": {"seq": 2}}`, received)
	if err := in.Handle(t.Context(), m2); err != nil {
		t.Fatalf("Handle m2: %v", err)
	}
	// The queue holds m2 and the writer holds m1: m3 has nowhere to go.
	m3, d3 := message("devices/f1/telemetry", `{"metrics": {"seq": 3}}`, received)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := in.Handle(ctx, m3)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Handle on a full queue = %v, want %v", err, context.DeadlineExceeded)
	}
	d3.assertNacked(t)
	if acks, nacks := d1.counts(); acks+nacks != 0 {
		t.Errorf("m1 settled while its write is blocked: acks %d, nacks %d", acks, nacks)
	}
	if got := value(t, m.Pending); got != 2 {
		t.Errorf("pending = %v, want 2", got)
	}

	close(release)
	d1.wait(t)
	d2.wait(t)
	d1.assertAcked(t)
	d2.assertAcked(t)
	d3.assertNacked(t)
	samples, _ := st.stored()
	var seqs []float64
	for _, s := range samples {
		seqs = append(seqs, s.Metrics["seq"])
	}
	if !slices.Equal(seqs, []float64{1, 2}) {
		t.Errorf("stored seq %v, want [1 2]: the nacked message must not be stored", seqs)
	}
	// The gauge drops after the acks; once Run returned, the batch is done.
	if err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := value(t, m.Pending); got != 0 {
		t.Errorf("pending after the writes = %v, want 0", got)
	}
}

func TestIngesterShutdownDrainsQueue(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	st := &store{}
	w := writerFunc(func(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus) error {
		select {
		case entered <- struct{}{}:
			<-release // hold only the first batch
		default:
		}
		return st.Write(ctx, samples, statuses, nil)
	})
	// One write at a time, so that the store's order is the queue's.
	in, _ := newIngester(t, ingest.Options{Writer: w, BatchSize: 2, WritesInFlight: 1})
	run := mustRun(t, in)

	const n = 8 // an odd number queued behind the first, so a partial batch remains
	var ds []*delivery
	for i := range n {
		msg, d := message("devices/f1/telemetry", fmt.Sprintf(`{"metrics": {"seq": %d}}`, i), received)
		if err := in.Handle(t.Context(), msg); err != nil {
			t.Fatalf("Handle %d: %v", i, err)
		}
		ds = append(ds, d)
		if i == 0 {
			<-entered // the first message is being written; the rest queue up
		}
	}

	// Cancel while the first write is held, so that every message is still
	// queued or in flight.
	run.cancel()
	close(release)
	if err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i, d := range ds {
		if acks, nacks := d.counts(); acks != 1 || nacks != 0 {
			t.Errorf("message %d when Run returned: acks = %d, nacks = %d; want 1 ack", i, acks, nacks)
		}
	}
	samples, _ := st.stored()
	var seqs []float64
	for _, s := range samples {
		seqs = append(seqs, s.Metrics["seq"])
	}
	if !slices.Equal(seqs, []float64{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("stored seq %v, want 0 to 7 once each", seqs)
	}

	// After shutdown, messages are refused and nacked, good or bad.
	for _, payload := range []string{`{"metrics": {"seq": 99}}`, `not json`} {
		msg, d := message("devices/f1/telemetry", payload, received)
		if err := in.Handle(t.Context(), msg); !errors.Is(err, ingest.ErrClosed) {
			t.Errorf("Handle(%s) after shutdown = %v, want ErrClosed", payload, err)
		}
		d.assertNacked(t)
	}
	if samples, _ := st.stored(); len(samples) != n {
		t.Errorf("stored %d samples after shutdown, want %d", len(samples), n)
	}
}

// TestIngesterShutdownFinishesWriteInFlight cancels Run while a writer that
// honours its context (as the InfluxDB client does) is writing. Run's
// contract is to write what it holds within ShutdownTimeout, so the write in
// flight must not be cut short and its message must be acked, not nacked.
func TestIngesterShutdownFinishesWriteInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	st := &store{}
	calls := 0 // writes are made one at a time, from Run
	w := writerFunc(func(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus) error {
		if calls++; calls == 1 {
			close(entered)
			<-release
		}
		// Like an HTTP request, the write fails if its context ended meanwhile.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write to influxdb: %w", err)
		}
		return st.Write(ctx, samples, statuses, nil)
	})
	in, _ := newIngester(t, ingest.Options{Writer: w})
	run := mustRun(t, in)

	msg, d := message("devices/f1/telemetry", `{"metrics": {"a": 1}}`, received)
	if err := in.Handle(t.Context(), msg); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	<-entered
	run.cancel()
	close(release)
	if err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if acks, nacks := d.counts(); acks != 1 || nacks != 0 {
		t.Errorf("message in flight at shutdown: acks = %d, nacks = %d; want it written and acked", acks, nacks)
	}
	if samples, _ := st.stored(); len(samples) != 1 {
		t.Errorf("stored %d samples, want 1", len(samples))
	}
}

// TestIngesterShutdownIsBounded stops an ingester whose store never answers
// while several batches are queued: Run must give up after about
// ShutdownTimeout, not ShutdownTimeout per batch, and nack everything.
func TestIngesterShutdownIsBounded(t *testing.T) {
	const (
		grace   = 100 * time.Millisecond
		batches = 10
	)
	entered := make(chan struct{})
	var once sync.Once
	w := writerFunc(func(ctx context.Context, _ []proactive.Sample, _ []proactive.DeviceStatus) error {
		once.Do(func() { close(entered) })
		<-ctx.Done() // a store that hangs until the write is abandoned
		return fmt.Errorf("write to influxdb: %w", ctx.Err())
	})
	in, _ := newIngester(t, ingest.Options{Writer: w, BatchSize: 1, ShutdownTimeout: grace})
	run := mustRun(t, in)

	var ds []*delivery
	for i := range batches {
		msg, d := message("devices/f1/telemetry", fmt.Sprintf(`{"metrics": {"seq": %d}}`, i), received)
		if err := in.Handle(t.Context(), msg); err != nil {
			t.Fatalf("Handle %d: %v", i, err)
		}
		ds = append(ds, d)
		if i == 0 {
			<-entered
		}
	}
	start := time.Now()
	if err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// That Run returns at all proves the grace bounds the stuck writes; how
	// long it took is logged, not asserted (a loaded machine makes a bound
	// flaky).
	t.Logf("Run returned %v after cancellation with ShutdownTimeout %v", time.Since(start), grace)
	for i, d := range ds {
		if acks, nacks := d.counts(); acks != 0 || nacks != 1 {
			t.Errorf("message %d: acks = %d, nacks = %d; want 1 nack", i, acks, nacks)
		}
	}
}

// TestIngesterShutdownSettlesBlockedHandle checks that a Handle waiting on a
// full queue at shutdown either gets its message written and acked, or
// returns ErrClosed and nacks it.
func TestIngesterShutdownSettlesBlockedHandle(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	st := &store{}
	w := writerFunc(func(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus) error {
		select {
		case entered <- struct{}{}:
			<-release
		default:
		}
		return st.Write(ctx, samples, statuses, nil)
	})
	in, _ := newIngester(t, ingest.Options{Writer: w, QueueSize: 1})
	run := mustRun(t, in)

	m1, d1 := message("devices/f1/telemetry", `{"metrics": {"seq": 1}}`, received)
	if err := in.Handle(t.Context(), m1); err != nil {
		t.Fatalf("Handle m1: %v", err)
	}
	<-entered
	m2, d2 := message("devices/f1/telemetry", `{"metrics": {"seq": 2}}`, received)
	if err := in.Handle(t.Context(), m2); err != nil {
		t.Fatalf("Handle m2: %v", err)
	}
	m3, d3 := message("devices/f1/telemetry", `{"metrics": {"seq": 3}}`, received)
	handled := make(chan error, 1)
	go func() { handled <- in.Handle(context.Background(), m3) }()

	run.cancel()
	close(release)
	if err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var err3 error
	select {
	case err3 = <-handled:
	case <-time.After(waitLimit):
		t.Fatal("Handle still blocked after Run returned")
	}
	d1.assertAcked(t)
	d2.assertAcked(t)
	samples, _ := st.stored()
	stored3 := slices.ContainsFunc(samples, func(s proactive.Sample) bool { return s.Metrics["seq"] == 3 })
	switch {
	case err3 == nil:
		d3.assertAcked(t)
		if !stored3 {
			t.Error("m3 was accepted but not stored")
		}
	case errors.Is(err3, ingest.ErrClosed):
		d3.assertNacked(t)
		if stored3 {
			t.Error("m3 was refused but stored")
		}
	default:
		t.Errorf("Handle m3 = %v, want nil or ErrClosed", err3)
	}
}

func TestIngesterSinkGetsPerDeviceOrder(t *testing.T) {
	var (
		mu         sync.Mutex
		sunk       []proactive.Sample
		sunkStatus []proactive.DeviceStatus
		unwritten  int // samples the sink got before the writer did
		written    = map[proactive.DeviceID]int{}
	)
	st := &store{}
	w := writerFunc(func(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus) error {
		mu.Lock()
		for _, s := range samples {
			written[s.Device]++
		}
		mu.Unlock()
		return st.Write(ctx, samples, statuses, nil)
	})
	sink := func(_ context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range samples {
			if written[s.Device]--; written[s.Device] < 0 {
				unwritten++
			}
		}
		sunk = append(sunk, samples...)
		sunkStatus = append(sunkStatus, statuses...)
	}
	in, _ := newIngester(t, ingest.Options{Writer: w, Sink: sink, BatchSize: 7, QueueSize: 4})
	run := mustRun(t, in)

	// One publisher per device, concurrently, through a small queue: the
	// order across devices is arbitrary, within a device it is kept.
	devices := []proactive.DeviceID{"fridge-a", "fridge-b", "fridge-c"}
	const perDevice = 40 // messages per device; every other one holds two readings
	var wg sync.WaitGroup
	failures := make(chan string, len(devices))
	for _, dev := range devices {
		wg.Go(func() {
			var last *delivery
			seq := 0
			for i := range perDevice {
				var payload string
				if i%2 == 0 {
					payload = fmt.Sprintf(`{"metrics": {"seq": %d}}`, seq)
					seq++
				} else {
					payload = fmt.Sprintf(`[{"metrics": {"seq": %d}}, {"metrics": {"seq": %d}}]`, seq, seq+1)
					seq += 2
				}
				msg, d := message("devices/"+string(dev)+"/telemetry", payload, received.Add(time.Duration(i)*time.Second))
				if err := in.Handle(context.Background(), msg); err != nil {
					failures <- fmt.Sprintf("%s: Handle: %v", dev, err)
					return
				}
				last = d
			}
			status, d := message("devices/"+string(dev)+"/status", `{"online": false}`, received.Add(time.Hour))
			if err := in.Handle(context.Background(), status); err != nil {
				failures <- fmt.Sprintf("%s: Handle status: %v", dev, err)
				return
			}
			for _, d := range []*delivery{last, d} {
				select {
				case <-d.settled:
				case <-time.After(waitLimit):
					failures <- fmt.Sprintf("%s: message not settled", dev)
					return
				}
			}
		})
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	if t.Failed() {
		t.FailNow()
	}
	if err := run.stop(); err != nil { // Run returns after its last sink call
		t.Fatalf("Run: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if unwritten != 0 {
		t.Errorf("sink got %d samples before they were written", unwritten)
	}
	const readings = perDevice/2 + perDevice // 20 single and 20 double messages
	for _, dev := range devices {
		var seqs []float64
		var lastTime time.Time
		for _, s := range sunk {
			if s.Device != dev {
				continue
			}
			if s.Time.Before(lastTime) {
				t.Errorf("%s: sample at %v after one at %v", dev, s.Time, lastTime)
			}
			lastTime = s.Time
			seqs = append(seqs, s.Metrics["seq"])
		}
		if len(seqs) != readings {
			t.Errorf("%s: sink got %d samples, want %d", dev, len(seqs), readings)
		}
		for i, v := range seqs {
			if v != float64(i) {
				t.Errorf("%s: sink got seq %v at position %d, want 0..%d in order: %v", dev, v, i, readings-1, seqs)
				break
			}
		}
	}
	var statusDevices []string
	for _, s := range sunkStatus {
		statusDevices = append(statusDevices, string(s.Device))
		if s.Online || !s.Time.Equal(received.Add(time.Hour)) {
			t.Errorf("status %+v, want offline at %v", s, received.Add(time.Hour))
		}
	}
	slices.Sort(statusDevices)
	if !slices.Equal(statusDevices, []string{"fridge-a", "fridge-b", "fridge-c"}) {
		t.Errorf("sink got statuses of %v, want one per device", statusDevices)
	}
	stored, _ := st.stored()
	if len(stored) != len(sunk) {
		t.Errorf("stored %d samples, sink got %d", len(stored), len(sunk))
	}
}

func TestIngesterRegistration(t *testing.T) {
	lookup := func(id proactive.DeviceID) (string, bool) {
		if id == "fridge-1" {
			return "fridge-x200", true
		}
		return "", false
	}
	tests := []struct {
		name    string
		require bool
		// wantUnknown says whether the unregistered fridge-2 is dead-lettered.
		wantUnknown bool
	}{
		{name: "required", require: true, wantUnknown: true},
		{name: "not required", require: false, wantUnknown: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &store{}
			in, m := newIngester(t, ingest.Options{Writer: st, Lookup: lookup, RequireRegistration: tc.require})
			mustRun(t, in)

			var ds []*delivery
			for _, mm := range []struct{ topic, payload string }{
				{"devices/fridge-2/telemetry", `{"metrics": {"a": 2}}`},
				{"devices/fridge-2/status", `{"online": true}`},
				{"devices/fridge-1/telemetry", `{"metrics": {"a": 1}}`},
				{"devices/fridge-1/status", `{"online": true}`},
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
			samples, statuses := st.stored()
			want := []proactive.Sample{
				{Device: "fridge-2", Time: received, Metrics: map[string]float64{"a": 2}},
				{Device: "fridge-1", Model: "fridge-x200", Time: received, Metrics: map[string]float64{"a": 1}},
			}
			wantStatuses := []proactive.DeviceStatus{
				{Device: "fridge-2", Time: received, Online: true},
				{Device: "fridge-1", Model: "fridge-x200", Time: received, Online: true},
			}
			wantUnknown := 0.0
			if tc.wantUnknown {
				want, wantStatuses, wantUnknown = want[1:], wantStatuses[1:], 2
			}
			assertSamples(t, samples, want)
			if !slices.EqualFunc(statuses, wantStatuses, func(a, b proactive.DeviceStatus) bool {
				return a.Device == b.Device && a.Model == b.Model && a.Time.Equal(b.Time) && a.Online == b.Online
			}) {
				t.Errorf("statuses = %+v, want %+v", statuses, wantStatuses)
			}
			if got := deadLetterCount(t, m, ingest.ReasonUnknownDevice); got != wantUnknown {
				t.Errorf("dead letters unknown_device = %v, want %v", got, wantUnknown)
			}
			for _, l := range in.DeadLetters().Recent(0) {
				if l.Reason != ingest.ReasonUnknownDevice || l.Device != "fridge-2" {
					t.Errorf("dead letter %+v, want unknown_device for fridge-2", l)
				}
			}
		})
	}
}

func TestIngesterDeadLetterLog(t *testing.T) {
	in, _ := newIngester(t, ingest.Options{Writer: &store{}, DeadLetterLog: 3})
	if got := in.DeadLetters().Recent(0); len(got) != 0 {
		t.Fatalf("Recent before any dead letter = %v, want none", got)
	}
	// Dead letters are recorded by Handle itself, without Run.
	for i := range 5 {
		payload := fmt.Sprintf("bad-%d", i)
		if i == 4 {
			payload += strings.Repeat("x", 2000)
		}
		msg, d := message(fmt.Sprintf("devices/f%d/telemetry", i), payload, received.Add(time.Duration(i)*time.Second))
		if err := in.Handle(t.Context(), msg); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		d.assertAcked(t)
	}
	tests := []struct {
		n    int
		want []string // devices, newest first
	}{
		{n: 0, want: []string{"f4", "f3", "f2"}},
		{n: 1, want: []string{"f4"}},
		{n: 2, want: []string{"f4", "f3"}},
		{n: 3, want: []string{"f4", "f3", "f2"}},
		{n: 10, want: []string{"f4", "f3", "f2"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("Recent(%d)", tc.n), func(t *testing.T) {
			got := in.DeadLetters().Recent(tc.n)
			var devs []string
			for _, l := range got {
				devs = append(devs, l.Device)
			}
			if !slices.Equal(devs, tc.want) {
				t.Fatalf("devices = %v, want %v", devs, tc.want)
			}
			for _, l := range got {
				i := int(l.Device[1] - '0')
				if l.Reason != ingest.ReasonNotJSON || l.Entry != -1 ||
					l.Topic != "devices/"+l.Device+"/telemetry" || !l.Time.Equal(received.Add(time.Duration(i)*time.Second)) ||
					!strings.HasPrefix(l.Payload, fmt.Sprintf("bad-%d", i)) {
					t.Errorf("dead letter %+v does not describe message %d", l, i)
				}
				if len(l.Payload) > 512 {
					t.Errorf("dead letter of %s keeps %d payload bytes, want at most 512", l.Device, len(l.Payload))
				}
			}
		})
	}
}

func assertSamples(t *testing.T, got, want []proactive.Sample) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d samples %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Device != w.Device || g.Model != w.Model || !g.Time.Equal(w.Time) || len(g.Metrics) != len(w.Metrics) {
			t.Errorf("sample %d = %+v, want %+v", i, g, w)
			continue
		}
		for k, v := range w.Metrics {
			if gv, ok := g.Metrics[k]; !ok || gv != v {
				t.Errorf("sample %d metric %q = %v (present %v), want %v", i, k, gv, ok, v)
			}
		}
	}
}

// TestIngesterWritesInFlight holds the first batch's write while the second
// is written: both are under way at once, yet acks and the sink follow the
// queue's order, and with both slots taken the queue fills and Handle
// blocks.
func TestIngesterWritesInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	st := &store{}
	w := writerFunc(func(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus) error {
		if samples[0].Metrics["seq"] == 1 {
			close(entered)
			<-release
		}
		return st.Write(ctx, samples, statuses, nil)
	})
	var order events
	sink := func(_ context.Context, samples []proactive.Sample, _ []proactive.DeviceStatus) {
		for _, s := range samples {
			order.add(fmt.Sprintf("sink %v", s.Metrics["seq"]))
		}
	}
	in, _ := newIngester(t, ingest.Options{Writer: w, Sink: sink, BatchSize: 1, QueueSize: 2, WritesInFlight: 2})
	mustRun(t, in)

	handle := func(seq int) *delivery {
		t.Helper()
		d := &delivery{settled: make(chan struct{})}
		m := ingest.Message{
			Topic: "devices/f1/telemetry", Payload: fmt.Appendf(nil, `{"metrics": {"seq": %d}}`, seq), Received: received,
			Ack:  func() { order.add(fmt.Sprintf("ack %d", seq)); d.settle(true) },
			Nack: func() { d.settle(false) },
		}
		if err := in.Handle(t.Context(), m); err != nil {
			t.Fatalf("Handle %d: %v", seq, err)
		}
		return d
	}
	d1 := handle(1)
	<-entered
	d2 := handle(2)
	testenv.Eventually(t, 0, func() error {
		if samples, _ := st.stored(); len(samples) == 0 {
			return errors.New("the second batch was not written while the first was under way")
		}
		return nil
	})
	// Both slots are taken: 3 waits in the queue, whose room of 2 the second
	// write in flight shares.
	d3 := handle(3)
	m4, d4 := message("devices/f1/telemetry", `{"metrics": {"seq": 4}}`, received)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := in.Handle(ctx, m4); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Handle with two writes unsettled and the queue full = %v, want %v", err, context.DeadlineExceeded)
	}
	d4.assertNacked(t)
	if acks, _ := d2.counts(); acks != 0 {
		t.Fatal("message 2 acknowledged before message 1, whose write is still under way")
	}

	close(release)
	for _, d := range []*delivery{d1, d2, d3} {
		d.wait(t)
		d.assertAcked(t)
	}
	testenv.Eventually(t, 0, func() error {
		if got := order.list(); len(got) < 6 {
			return fmt.Errorf("settled so far %v, want 3 acks and 3 sinks", got)
		}
		return nil
	})
	want := []string{"ack 1", "sink 1", "ack 2", "sink 2", "ack 3", "sink 3"}
	if got := order.list(); !slices.Equal(got, want) {
		t.Errorf("settled in order %v, want %v", got, want)
	}
}

// While a write is under way, a batch's worth of points waiting starts the
// next write at once, also when a few messages carry it (readings in
// arrays): the batcher counts points, not messages, to wake.
func TestSecondWriteStartsOnABatchOfPoints(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	writes := 0
	w := writerFunc(func(_ context.Context, samples []proactive.Sample, _ []proactive.DeviceStatus) error {
		mu.Lock()
		writes++
		first := writes == 1
		mu.Unlock()
		if first {
			<-release
		}
		return nil
	})
	in, _ := newIngester(t, ingest.Options{Writer: w, BatchSize: 100, WritesInFlight: 2, FlushInterval: time.Hour, Linger: time.Hour})
	mustRun(t, in)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	readings := func(from int) []byte {
		var b strings.Builder
		b.WriteString("[")
		for i := range 50 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"ts": %d, "metrics": {"n": %d}}`, 1763791200000+int64(from+i)*1000, from+i)
		}
		b.WriteString("]")
		return []byte(b.String())
	}
	send := func(from int) {
		if err := in.Handle(t.Context(), ingest.Message{Topic: "devices/pump-1/telemetry", Payload: readings(from)}); err != nil {
			t.Fatal(err)
		}
	}
	// The first write takes the first 100 points and blocks.
	send(0)
	send(50)
	testenv.Eventually(t, 0, func() error {
		mu.Lock()
		defer mu.Unlock()
		if writes < 1 {
			return errors.New("the first write has not begun")
		}
		return nil
	})
	// Two more messages are another batch's worth: the second write starts
	// while the first still blocks.
	send(100)
	send(150)
	testenv.Eventually(t, 0, func() error {
		mu.Lock()
		defer mu.Unlock()
		if writes < 2 {
			return errors.New("the second write waits for the first although a batch of points is queued")
		}
		return nil
	})
	close(release)
}
