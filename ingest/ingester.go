// Package ingest receives device telemetry, statuses and events over MQTT (an
// embedded broker or an external one), decodes and validates them, stores them
// in InfluxDB in batches and hands every stored sample and event to a consumer. A message is acknowledged to the
// broker only after its points are stored, so a crash loses nothing.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proactivehq/proactive"
)

// ErrClosed is returned by Handle once the ingester has begun shutting down.
var ErrClosed = errors.New("ingester is shutting down")

// ErrRejected marks a write error that a retry of the same batch cannot fix
// (the store refused the batch for its content). Writers wrap it, or return
// an error that has a Permanent() bool method reporting true, as
// influx.ErrRejected does.
var ErrRejected = errors.New("rejected by the store")

// Writer stores batches durably (*influx.Store).
type Writer interface {
	// Write stores every sample, status and event or returns an error; it
	// must be safe to call again with the same batch (InfluxDB overwrites
	// identical points). An error wrapping ErrRejected, or a permanent one (see
	// ErrRejected), means a retry cannot help; any other error is retried
	// with backoff.
	Write(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus, events []proactive.Event) error
}

// rejected reports whether a write error is one a retry cannot fix.
func rejected(err error) bool {
	var p interface{ Permanent() bool }
	return errors.Is(err, ErrRejected) || errors.As(err, &p) && p.Permanent()
}

// SinkFunc receives the samples and statuses of each stored batch, in the
// order they were received per device. It is called from the writer loop, so
// it must hand work off rather than block for long.
type SinkFunc func(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus)

// EventSinkFunc receives the device events of each stored batch, in the
// order they were received per device, under the same terms as SinkFunc.
type EventSinkFunc func(ctx context.Context, events []proactive.Event)

// IntakeFunc is told whether telemetry can reach the ingester: true once its
// source (the embedded broker, or the subscription to an external one) is
// serving, false when it loses its broker or stops. It is called from the
// source's goroutines and must not block.
type IntakeFunc func(up bool)

// LookupFunc returns the registered model of a device and whether the device
// is registered.
type LookupFunc func(id proactive.DeviceID) (model string, ok bool)

// Message is one MQTT publish handed to the ingester by a broker adapter.
type Message struct {
	Topic    string
	Payload  []byte
	Received time.Time
	// Ack is called once the message is durable or needs no storing (all of it
	// was dead-lettered); Nack when it was not stored and must be delivered
	// again. Exactly one of them is called, once. Either may be nil.
	Ack  func()
	Nack func()
	// AckAfterSink, when true, calls Ack only after the sinks have taken
	// the batch the message was stored in: Kafka commits an offset only
	// once its records are evaluated, not only stored.
	AckAfterSink bool
	// tooLarge, when set, is the size of the payload the subscriber
	// discarded unread for being far past MaxPayload.
	tooLarge int
	// queueAck, when set, is used instead of Ack once the message is
	// stored: it queues the acknowledgement, and the ingester's ackFlush
	// sends the acks of a batch together (the embedded broker's PUBACKs,
	// one write per connection).
	queueAck func()
}

func (m Message) ack() {
	if m.Ack != nil {
		m.Ack()
	}
}

func (m Message) nack() {
	if m.Nack != nil {
		m.Nack()
	}
}

// Options configure an Ingester. Zero fields get the defaults noted.
type Options struct {
	Writer Writer
	Sink   SinkFunc
	// Forward, when set, takes every message Handle is given instead of
	// the ingester, and answers for its Ack or Nack (Kafka's forwarder:
	// the MQTT intake goes to a topic that the instances consume).
	Forward func(ctx context.Context, m Message) error
	// EventSink, when set, gets the events of each stored batch, just
	// before Sink gets its samples, so that the samples' evaluations see
	// the events stored with them.
	EventSink EventSinkFunc
	// Intake, when set, is told when the source connects and disconnects,
	// so that the rules do not take our own outage for silent devices.
	Intake IntakeFunc
	// Lookup gives a device's model; with RequireRegistration, telemetry from
	// devices it does not know is dead-lettered.
	Lookup              LookupFunc
	RequireRegistration bool
	// TopicPrefix is the first topic level, default "devices".
	TopicPrefix string
	// BatchSize is the most points in one write, default 5000.
	BatchSize int
	// FlushInterval is the longest a point waits in a filling batch, default 1s.
	FlushInterval time.Duration
	// Linger is how long the writer waits for more messages when the queue
	// runs dry before it writes a partial batch, default 2ms. Brokers limit
	// unacknowledged messages in flight, so waiting long only adds latency.
	Linger time.Duration
	// QueueSize and BatchSize bound the messages held between receipt and
	// acknowledgement, default 10000: QueueSize waiting and BatchSize in the
	// write being retried, the other writes in flight taking their share
	// of QueueSize. When the queue is full, Handle blocks: the broker stops
	// getting acks.
	QueueSize int
	// RetryMin and RetryMax bound the backoff between write attempts,
	// defaults 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// WritesInFlight is how many batch writes may be under way at once,
	// default 2: while InfluxDB syncs one batch to disk, the next is sent.
	// Batches are still acknowledged and handed to the sink in queue order.
	// It is 1 when QueueSize leaves no room for a second batch.
	// (Should two batches in flight hold different values for the same
	// device and timestamp, which one InfluxDB keeps is not defined.)
	WritesInFlight int
	// ShutdownTimeout bounds the final flush, default 10s.
	ShutdownTimeout time.Duration
	// DeadLetterLog is how many recent dead letters are kept, default 1000.
	DeadLetterLog int
	// MaxClockSkew is how far ahead of its receipt a timestamp may be,
	// default DefaultMaxClockSkew (Decoder).
	MaxClockSkew time.Duration
	// MaxMetricsPerDevice bounds the distinct metric names a device may
	// have, default 200: the metrics of a sample past it are dead-lettered
	// (too_many_metrics) and its other metrics stored.
	MaxMetricsPerDevice int
	// MaxRatePerDevice bounds a device's messages per second, averaged
	// over RateBurst messages (a token bucket); 0, the default, sets no
	// bound. A message over it is dead-lettered (rate_limited) before it
	// is decoded, so a flood costs other devices nothing but the reading.
	MaxRatePerDevice float64
	// RateBurst is how many messages a device may send at once, default
	// ten seconds' worth of MaxRatePerDevice.
	RateBurst int
	Metrics   *Metrics
	Logger    *slog.Logger
	Now       func() time.Time
}

// item is one message's worth of valid data waiting to be written.
type item struct {
	msg      Message
	device   proactive.DeviceID
	samples  []proactive.Sample
	statuses []proactive.DeviceStatus
	events   []proactive.Event
	// one backs samples when the message holds one reading, as nearly
	// every message does: one allocation for the item and its sample.
	one [1]proactive.Sample
}

// Ingester validates messages and writes them in batches. Handle may be
// called from many goroutines; Run owns the writer loop.
type Ingester struct {
	opts  Options
	log   *slog.Logger
	m     *Metrics
	queue chan *item
	// full is signalled when the queue holds fullMark items or a batch's
	// points (queuedPoints), for fill waiting on a write under way.
	full         chan struct{}
	fullMark     int
	queuedPoints atomic.Int64
	// wanted is how many points the batch being filled lacks.
	wanted atomic.Int64
	dead   *DeadLetters
	points atomic.Int64
	dec    Decoder
	// limits holds each device's limits.
	limitsMu sync.RWMutex
	limits   map[proactive.DeviceID]*deviceLimits

	mu       sync.Mutex
	stopping bool
	stopCh   chan struct{}
	handlers sync.WaitGroup

	errMu     sync.Mutex
	lastErr   error
	lastErrAt time.Time

	// ackFlush, when set (by the embedded broker), sends the acks that
	// Message.queueAck queued.
	ackFlush atomic.Pointer[func()]
}

// written is a batch whose write is under way or done, waiting to be
// settled in queue order.
type written struct {
	batch []*item
	// errs[i] is the outcome of batch[i]'s write: nil when stored.
	errs []error
	// The points of the whole batch, gathered once for the write and,
	// when all of it was stored, handed to the sinks as they are.
	samples  []proactive.Sample
	statuses []proactive.DeviceStatus
	events   []proactive.Event
	done     chan struct{}
}

// New returns an Ingester; call Run to start writing.
func New(opts Options) *Ingester {
	if opts.TopicPrefix == "" {
		opts.TopicPrefix = "devices"
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 5000
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	if opts.Linger <= 0 {
		opts.Linger = 2 * time.Millisecond
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 10000
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 100 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Second
	}
	if opts.WritesInFlight <= 0 {
		opts.WritesInFlight = 2
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.MaxMetricsPerDevice <= 0 {
		opts.MaxMetricsPerDevice = DefaultMaxMetricsPerDevice
	}
	if opts.MaxRatePerDevice > 0 && opts.RateBurst <= 0 {
		opts.RateBurst = max(1, int(math.Ceil(10*opts.MaxRatePerDevice)))
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// The writes in flight beyond the first hold messages out of the
	// queue's share, so that QueueSize + BatchSize still bounds what is
	// held, as during an outage, when every write in flight is retried.
	queue := opts.QueueSize
	if extra := (opts.WritesInFlight - 1) * opts.BatchSize; queue > extra {
		queue -= extra
	} else {
		opts.WritesInFlight = 1
	}
	in := &Ingester{
		opts:     opts,
		log:      opts.Logger.With("component", "ingest"),
		m:        opts.Metrics,
		queue:    make(chan *item, queue),
		full:     make(chan struct{}, 1),
		fullMark: max(1, min(opts.BatchSize, queue/2)),
		dead:     NewDeadLetters(opts.DeadLetterLog),
		dec:      Decoder{MaxClockSkew: opts.MaxClockSkew},
		stopCh:   make(chan struct{}),
		limits:   make(map[proactive.DeviceID]*deviceLimits),
	}
	in.wanted.Store(int64(opts.BatchSize))
	return in
}

// TopicPrefix returns the first topic level the ingester listens under.
func (in *Ingester) TopicPrefix() string { return in.opts.TopicPrefix }

// DeadLetters returns the log of recent dead letters.
func (in *Ingester) DeadLetters() *DeadLetters { return in.dead }

// PointsWritten returns how many points InfluxDB has acknowledged.
func (in *Ingester) PointsWritten() int64 { return in.points.Load() }

// WriteError returns the error of the last write attempt when it failed, nil
// once a write succeeds again.
func (in *Ingester) WriteError() error {
	in.errMu.Lock()
	defer in.errMu.Unlock()
	return in.lastErr
}

// Handle decodes and validates one message and queues its valid part for
// writing. It blocks while the queue is full (backpressure) and returns
// ErrClosed once shutdown began, or ctx's error. Whatever it returns, exactly
// one of m.Ack and m.Nack is called, now or after the write.
func (in *Ingester) Handle(ctx context.Context, m Message) error {
	if in.opts.Forward != nil {
		return in.opts.Forward(ctx, m)
	}
	return in.handle(ctx, m)
}

// handle is Handle without forwarding: the Kafka consumer's way in.
func (in *Ingester) handle(ctx context.Context, m Message) error {
	in.mu.Lock()
	if in.stopping {
		in.mu.Unlock()
		m.nack()
		return ErrClosed
	}
	in.handlers.Add(1)
	in.mu.Unlock()
	defer in.handlers.Done()

	if m.Received.IsZero() {
		m.Received = in.opts.Now()
	}
	it := in.decode(m)
	if it == nil {
		m.ack() // nothing worth keeping: it is in the dead letters
		return nil
	}
	in.m.Pending.Inc()
	select {
	case in.queue <- it:
		queued := in.queuedPoints.Add(int64(it.points()))
		if len(in.queue) >= in.fullMark || queued >= in.wanted.Load() {
			select {
			case in.full <- struct{}{}:
			default:
			}
		}
		return nil
	case <-in.stopCh:
		in.m.Pending.Dec()
		m.nack()
		return ErrClosed
	case <-ctx.Done():
		in.m.Pending.Dec()
		m.nack()
		return ctx.Err()
	}
}

// decode turns a message into an item, dead-lettering what is invalid. It
// returns nil when nothing of the message is to be stored.
func (in *Ingester) decode(m Message) *item {
	id, kind, err := ParseTopic(in.opts.TopicPrefix, m.Topic)
	if kind == TopicUnknown && err == nil {
		return nil // not ours: some other application's topic on a shared broker
	}
	in.m.message(kind).Inc()
	if err != nil {
		in.deadLetter(m, "", EntryError{-1, ReasonBadTopic, err.Error()})
		return nil
	}
	if m.tooLarge > 0 {
		in.deadLetter(m, id, EntryError{-1, ReasonTooLarge, fmt.Sprintf("payload is %d bytes, the limit is %d", m.tooLarge, MaxPayload)})
		return nil
	}
	model, known := "", false
	if in.opts.Lookup != nil {
		model, known = in.opts.Lookup(id)
	}
	if in.opts.RequireRegistration && !known {
		in.deadLetter(m, id, EntryError{-1, ReasonUnknownDevice, fmt.Sprintf("device %q is not registered", id)})
		return nil
	}
	lim := in.deviceLimits(id)
	if !lim.allow(m.Received) {
		in.rateLimited(m, id, lim)
		return nil
	}
	it := &item{msg: m, device: id}
	if kind == TopicStatus {
		online, eerr := DecodeStatus(m.Payload)
		if eerr != nil {
			in.deadLetter(m, id, *eerr)
			return nil
		}
		it.statuses = []proactive.DeviceStatus{{Device: id, Model: model, Time: m.Received, Online: online}}
		return it
	}
	if kind == TopicEvents {
		events, errs := in.dec.Events(m.Payload, m.Received)
		for _, e := range errs {
			in.deadLetter(m, id, e)
		}
		if len(events) == 0 {
			return nil
		}
		for i := range events {
			events[i].Device, events[i].Model = id, model
		}
		it.events = events
		return it
	}
	readings, errs := in.dec.Telemetry(m.Payload, m.Received)
	for _, e := range errs {
		in.deadLetter(m, id, e)
	}
	readings = in.capMetrics(m, id, lim, readings, errs)
	if len(readings) == 0 {
		return nil
	}
	if len(readings) == 1 {
		it.samples = it.one[:]
	} else {
		it.samples = make([]proactive.Sample, len(readings))
	}
	for i, r := range readings {
		it.samples[i] = proactive.Sample{Device: id, Model: model, Time: r.Time, Metrics: r.Metrics}
	}
	return it
}

func kindLabel(k TopicKind) string {
	switch k {
	case TopicStatus:
		return "status"
	case TopicEvents:
		return "events"
	}
	return "telemetry"
}

func (in *Ingester) deadLetter(m Message, id proactive.DeviceID, e EntryError) {
	in.recordDeadLetter(m, id, e)
	in.log.Warn("dead letter", "topic", truncate(m.Topic, 200), "entry", e.Entry, "reason", e.Reason, "detail", e.Detail)
}

// recordDeadLetter counts a dead letter and keeps it in the log of recent
// ones, without logging it.
func (in *Ingester) recordDeadLetter(m Message, id proactive.DeviceID, e EntryError) {
	in.m.DeadLetters.WithLabelValues(string(e.Reason)).Inc()
	excerpt := m.Payload
	if len(excerpt) > excerptLen {
		excerpt = excerpt[:excerptLen]
	}
	in.dead.add(DeadLetter{
		Time: m.Received, Topic: truncate(m.Topic, 200), Device: string(id),
		Entry: e.Entry, Reason: e.Reason, Detail: e.Detail, Payload: string(excerpt),
	})
}

// Run writes queued messages in batches until ctx is cancelled, then stops
// taking messages, writes what it holds (bounded by ShutdownTimeout) and
// returns. Up to WritesInFlight batches are written at once; each is
// acknowledged (and handed to the sink) after the ones before it. Messages it
// could not write are nacked, never acked.
func (in *Ingester) Run(ctx context.Context) error {
	// Writes under way are never cut short by shutdown: cancelling one would
	// leave InfluxDB holding points we then report as unwritten. Writes and
	// retries, the final flush included, go on for ShutdownTimeout in all
	// after ctx ends.
	wctx, cancel := graceContext(ctx, in.opts.ShutdownTimeout)
	defer cancel()
	p := in.newPipeline(wctx)
	defer p.close()
	for {
		// A slot first, so that what waits for one waits in the queue,
		// where Handle's backpressure sees it.
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			in.drain(p)
			return nil
		}
		var batch []*item
		select {
		case it := <-in.queue:
			in.took(it)
			batch = append(make([]*item, 0, 256), it)
		case <-ctx.Done():
			<-p.slots
			in.drain(p)
			return nil
		}
		batch = in.fill(ctx, batch, p)
		p.start(batch)
	}
}

// pipeline writes batches concurrently and settles them in order.
type pipeline struct {
	in      *Ingester
	wctx    context.Context
	slots   chan struct{} // one per write under way or unsettled
	pending chan *written
	settled chan struct{}
	// busy counts the writes started and not yet settled; freed receives a
	// signal as each is settled.
	busy  atomic.Int32
	freed chan struct{}
}

func (in *Ingester) newPipeline(wctx context.Context) *pipeline {
	p := &pipeline{
		in: in, wctx: wctx,
		slots:   make(chan struct{}, in.opts.WritesInFlight),
		pending: make(chan *written, in.opts.WritesInFlight),
		settled: make(chan struct{}),
		freed:   make(chan struct{}, 1),
	}
	go func() {
		defer close(p.settled)
		for w := range p.pending {
			<-w.done
			in.settle(wctx, w)
			p.busy.Add(-1)
			<-p.slots
			select {
			case p.freed <- struct{}{}:
			default:
			}
		}
	}()
	return p
}

// write starts writing batch once fewer than WritesInFlight batches are
// unsettled. The wait is not bounded by ctx: the writes holding the slots
// end within ShutdownTimeout of it.
func (p *pipeline) write(batch []*item) {
	if len(batch) == 0 {
		return
	}
	p.slots <- struct{}{}
	p.start(batch)
}

// start writes batch in a slot the caller holds.
func (p *pipeline) start(batch []*item) {
	w := &written{batch: batch, errs: make([]error, len(batch)), done: make(chan struct{})}
	p.busy.Add(1)
	p.pending <- w
	go func() {
		defer close(w.done)
		w.samples, w.statuses, w.events = gather(w.batch, nil)
		p.in.writeGathered(p.wctx, w.batch, w.errs, w.samples, w.statuses, w.events)
	}()
}

// close waits until every batch handed to write is settled.
func (p *pipeline) close() {
	close(p.pending)
	<-p.settled
}

// fill adds queued items to batch until it holds BatchSize points, the batch
// is FlushInterval old, or the queue stayed empty for Linger while no other
// write was under way.
func (in *Ingester) fill(ctx context.Context, batch []*item, p *pipeline) []*item {
	points := batch[0].points()
	deadline := time.NewTimer(in.opts.FlushInterval)
	defer deadline.Stop()
	linger := time.NewTimer(in.opts.Linger)
	defer linger.Stop()
	for points < in.opts.BatchSize {
		select {
		case it := <-in.queue:
			in.took(it)
			batch = append(batch, it)
			points += it.points()
			continue
		default:
		}
		if p.busy.Load() > 0 {
			// While another write is under way, a partial batch waits for
			// it: a second write of a few points costs InfluxDB nearly as
			// much as a full one, and the first write's end frees room in
			// the broker's window for more messages. Meanwhile messages
			// wait in the queue, taken at once when the write ends or the
			// queue holds a batch's worth: taking each as it came woke this
			// goroutine once a message.
			in.wanted.Store(int64(in.opts.BatchSize - points))
			if in.queuedPoints.Load() >= in.wanted.Load() {
				continue // came meanwhile
			}
			select {
			case <-p.freed:
			case <-in.full:
			case <-deadline.C:
				return batch
			case <-ctx.Done():
				return batch
			}
			continue
		}
		linger.Reset(in.opts.Linger)
		select {
		case it := <-in.queue:
			in.took(it)
			batch = append(batch, it)
			points += it.points()
		case <-linger.C:
			return batch
		case <-deadline.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// took accounts for it leaving the queue.
func (in *Ingester) took(it *item) { in.queuedPoints.Add(-int64(it.points())) }

func (it *item) points() int { return len(it.samples) + len(it.statuses) + len(it.events) }

// write writes a batch with retries and records each message's outcome in
// errs. When InfluxDB rejects the batch for its content (one message's field
// type clash, say), it halves the batch until the culprit stands alone, so
// that the others are stored. Rewriting points InfluxDB already took is
// harmless.
func (in *Ingester) write(ctx context.Context, batch []*item, errs []error) {
	samples, statuses, events := gather(batch, nil)
	in.writeGathered(ctx, batch, errs, samples, statuses, events)
}

// gather returns the points of the items of batch whose errs entry is nil
// (all of them when errs is nil), in slices of the exact size.
func gather(batch []*item, errs []error) ([]proactive.Sample, []proactive.DeviceStatus, []proactive.Event) {
	var ns, nst, nev int
	for i, it := range batch {
		if errs == nil || errs[i] == nil {
			ns, nst, nev = ns+len(it.samples), nst+len(it.statuses), nev+len(it.events)
		}
	}
	samples := make([]proactive.Sample, 0, ns)
	var statuses []proactive.DeviceStatus
	if nst > 0 {
		statuses = make([]proactive.DeviceStatus, 0, nst)
	}
	var events []proactive.Event
	if nev > 0 {
		events = make([]proactive.Event, 0, nev)
	}
	for i, it := range batch {
		if errs == nil || errs[i] == nil {
			samples = append(samples, it.samples...)
			statuses = append(statuses, it.statuses...)
			events = append(events, it.events...)
		}
	}
	return samples, statuses, events
}

// writeGathered is write with the batch's points gathered.
func (in *Ingester) writeGathered(ctx context.Context, batch []*item, errs []error, samples []proactive.Sample, statuses []proactive.DeviceStatus, events []proactive.Event) {
	in.m.BatchPoints.Observe(float64(len(samples) + len(statuses) + len(events)))
	err := in.writeWithRetry(ctx, samples, statuses, events)
	if rejected(err) && len(batch) > 1 {
		mid := len(batch) / 2
		in.write(ctx, batch[:mid], errs[:mid])
		in.write(ctx, batch[mid:], errs[mid:])
		return
	}
	for i := range errs {
		errs[i] = err
	}
}

// settle acknowledges what a write stored and hands it to the sink,
// dead-letters what InfluxDB refused for its content (keeping it would block
// every device behind it), and nacks what could not be written before
// shutdown.
func (in *Ingester) settle(ctx context.Context, w *written) {
	samples, statuses, events := w.samples, w.statuses, w.events
	var stored, failed int
	var lastErr error
	partial := false
	for i, it := range w.batch {
		if w.errs[i] == nil {
			stored += it.points()
		} else {
			partial = true
		}
	}
	if partial {
		samples, statuses, events = gather(w.batch, w.errs)
	}
	in.points.Add(int64(stored))
	in.m.PointsWritten.Add(float64(stored))
	defer func() {
		for i, it := range w.batch {
			if w.errs[i] == nil && it.msg.AckAfterSink {
				it.msg.ack()
			}
		}
	}()
	for i, it := range w.batch {
		switch err := w.errs[i]; {
		case err == nil && it.msg.AckAfterSink:
		case err == nil:
			if it.msg.queueAck != nil {
				it.msg.queueAck()
			} else {
				it.msg.ack()
			}
		case rejected(err):
			in.deadLetter(it.msg, it.device, EntryError{-1, ReasonWriteRejected, err.Error()})
			it.msg.ack()
		default:
			failed++
			lastErr = err
			it.msg.nack()
		}
	}
	if f := in.ackFlush.Load(); f != nil {
		(*f)()
	}
	in.m.Pending.Sub(float64(len(w.batch)))
	if failed > 0 {
		in.log.Error("batch not written before shutdown; its messages are not acknowledged and will be delivered again",
			"messages", failed, "err", lastErr)
	}
	if stored == 0 || in.opts.Sink == nil && in.opts.EventSink == nil {
		return
	}
	// The grace context: the final batches still reach the rules.
	start := time.Now()
	if len(events) > 0 && in.opts.EventSink != nil {
		in.opts.EventSink(ctx, events)
	}
	if len(samples)+len(statuses) > 0 && in.opts.Sink != nil {
		in.opts.Sink(ctx, samples, statuses)
	}
	in.m.SinkSeconds.Observe(time.Since(start).Seconds())
}

func (in *Ingester) writeWithRetry(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus, events []proactive.Event) error {
	b := proactive.Backoff{
		Base: in.opts.RetryMin,
		Max:  in.opts.RetryMax,
		OnRetry: func(_ int, _ time.Duration, err error) {
			if !in.setWriteError(err) {
				in.log.Warn("write to the store failed; retrying with backoff", "err", err, "points", len(samples)+len(statuses)+len(events))
			}
		},
	}
	err := proactive.Retry(ctx, b, func(ctx context.Context, attempt int) (retry bool, err error) {
		start := time.Now()
		err = in.opts.Writer.Write(ctx, samples, statuses, events)
		in.m.WriteSeconds.Observe(time.Since(start).Seconds())
		if err == nil {
			if in.setWriteError(nil) {
				in.log.Info("writes to the store recovered", "attempts", attempt)
			}
			return false, nil
		}
		retryable := !rejected(err)
		in.m.WriteErrors.WithLabelValues(fmt.Sprint(retryable)).Inc()
		return retryable, err
	})
	if err != nil && !rejected(err) {
		// Retry gave up because ctx ended.
		return fmt.Errorf("write: %w", err)
	}
	return err
}

// setWriteError records the latest write outcome and reports whether the
// previous attempt had failed.
func (in *Ingester) setWriteError(err error) bool {
	in.errMu.Lock()
	defer in.errMu.Unlock()
	wasFailing := in.lastErr != nil
	in.lastErr = err
	if err != nil && !wasFailing {
		in.lastErrAt = time.Now()
	}
	return wasFailing
}

// graceContext returns a context that is not cancelled with ctx but grace
// after it.
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(wctx, func() { t.Stop() })
	})
	return wctx, func() {
		stop()
		cancel()
	}
}

// drain stops intake, waits for Handle calls under way, and writes whatever
// is queued.
func (in *Ingester) drain(p *pipeline) {
	in.mu.Lock()
	if !in.stopping {
		in.stopping = true
		close(in.stopCh)
	}
	in.mu.Unlock()
	in.handlers.Wait()
	var batch []*item
	points := 0
	for {
		select {
		case it := <-in.queue:
			in.took(it)
			batch = append(batch, it)
			points += it.points()
			if points >= in.opts.BatchSize {
				p.write(batch)
				batch, points = nil, 0
			}
			continue
		default:
		}
		break
	}
	p.write(batch)
}

// intake tells Options.Intake whether the source is serving.
func (in *Ingester) intake(up bool) {
	if in.opts.Intake != nil {
		in.opts.Intake(up)
	}
}
