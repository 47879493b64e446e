// Package rules watches every device with rules written in expr over
// per-device windows, and turns conditions that hold into alerts: pending,
// firing after `for`, resolved after `clear_for`. See doc.go for the rule
// language and how exact each function is.
package rules

import (
	"context"
	"hash/maphash"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
)

// NotifyFunc receives alerts as they fire and resolve. It is called from
// the engine's workers, so it should hand work off rather than block long.
type NotifyFunc func(ctx context.Context, alerts []proactive.Alert)

// Options configure an Engine. Zero fields get the defaults noted.
type Options struct {
	Notify NotifyFunc
	Device DeviceFunc
	// LateTolerance is how late a sample may arrive (behind the device's
	// newest) and still count in its windows, default 5m.
	LateTolerance time.Duration
	// Shards is how many workers own devices, default GOMAXPROCS.
	Shards int
	// QueueSize bounds the batches waiting per shard, default 64; when full,
	// Consume blocks, which holds back ingest's acknowledgements.
	QueueSize int
	// TickInterval is how often since_seen() rules are evaluated without new
	// data, default 1m.
	TickInterval time.Duration
	// IntakeDown starts the engine with intake down: the clock evaluates no
	// since_seen() rule until SetIntake(true) reports that telemetry flows,
	// so that a restart after downtime does not make every device silent.
	// Leave it false where nothing reports intake (tests, tools).
	IntakeDown bool
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// Engine evaluates the loaded rules for every device as samples arrive,
// sharded by device over worker goroutines.
type Engine struct {
	opts   Options
	log    *slog.Logger
	m      *engineMetrics
	seed   maphash.Seed
	shards []*shard
	fleet  *baselines // the model baselines, shared by the shards

	mu  sync.Mutex // guards set
	set *RuleSet

	intakeMu sync.Mutex // guards intakeUp, resumed
	intakeUp bool
	resumed  time.Time // when intake last came up; zero: never reported
}

type shard struct {
	mu sync.Mutex // guards ev against status readers
	ev *Evaluator
	in chan batch
}

// batch is one shard's part of what Consume, ConsumeEvents or
// ConsumeMaintenance was given; one queue keeps a device's samples, events
// and maintenance in the order they came.
type batch struct {
	samples []proactive.Sample
	events  []proactive.Event
	maint   []proactive.Maintenance
	// done, when set, is closed once the shard has processed the batch
	// (Sync's barrier).
	done chan struct{}
}

func (b batch) len() int { return len(b.samples) + len(b.events) + len(b.maint) }

// New returns an engine with no rules; Load gives it some, Run starts it.
func New(opts Options) *Engine {
	if opts.LateTolerance <= 0 {
		opts.LateTolerance = 5 * time.Minute
	}
	if opts.Shards <= 0 {
		opts.Shards = runtime.GOMAXPROCS(0)
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 64
	}
	if opts.TickInterval <= 0 {
		opts.TickInterval = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Engine{opts: opts, log: opts.Logger.With("component", "rules"), seed: maphash.MakeSeed(), intakeUp: !opts.IntakeDown}
	e.m = newEngineMetrics(opts.Registerer, e)
	e.set = &RuleSet{layout: newLayout()}
	e.fleet = newBaselines()
	for range opts.Shards {
		sh := &shard{
			ev: newEvaluator(e.set, opts.Device, opts.LateTolerance),
			in: make(chan batch, opts.QueueSize),
		}
		sh.ev.setFleet(e.fleet)
		e.shards = append(e.shards, sh)
	}
	return e
}

// Load compiles specs and, only if every one compiles, replaces the running
// rules with them; otherwise the running rules stay and the problems are
// returned. Windows and alert states survive for rules that keep their names.
func (e *Engine) Load(specs []Spec) Problems {
	e.mu.Lock()
	defer e.mu.Unlock()
	set, probs := compileRules(e.set.layout, specs)
	if len(probs) > 0 {
		e.m.loadErrors.Inc()
		return probs
	}
	e.set = set
	for _, sh := range e.shards {
		sh.mu.Lock()
		sh.ev.setRules(set)
		sh.mu.Unlock()
	}
	for _, r := range set.rules {
		// A series at 0 for each loaded rule, before its first alert.
		e.m.transitions.WithLabelValues(r.Name, string(proactive.AlertFiring))
		e.m.transitions.WithLabelValues(r.Name, string(proactive.AlertResolved))
	}
	e.m.loads.Inc()
	return nil
}

// LoadFiles reads the rule files matching patterns and loads them (see Load).
func (e *Engine) LoadFiles(patterns []string) (int, Problems) {
	specs, probs := LoadFiles(patterns)
	if len(probs) > 0 {
		e.m.loadErrors.Inc()
		return 0, probs
	}
	return len(specs), e.Load(specs)
}

// Consume hands accepted samples to the shards, in order per device. It has
// the shape of ingest's sink; it blocks while a shard's queue is full.
func (e *Engine) Consume(ctx context.Context, samples []proactive.Sample, _ []proactive.DeviceStatus) {
	e.enqueue(ctx, spread(e, samples, func(s proactive.Sample) proactive.DeviceID { return s.Device },
		func(b *batch, n int) { b.samples = make([]proactive.Sample, 0, n) },
		func(b *batch, s proactive.Sample) { b.samples = append(b.samples, s) }))
}

// ConsumeEvents hands device events to the shards, in order per device with
// the samples: each is kept in its device's event history and evaluates the
// device's rules as a sample does. It blocks while a shard's queue is full.
func (e *Engine) ConsumeEvents(ctx context.Context, events []proactive.Event) {
	e.enqueue(ctx, spread(e, events, func(ev proactive.Event) proactive.DeviceID { return ev.Device },
		func(b *batch, n int) { b.events = make([]proactive.Event, 0, n) },
		func(b *batch, ev proactive.Event) { b.events = append(b.events, ev) }))
}

// ConsumeMaintenance hands maintenance records to the shards. A record seen
// again (same ID, or the same time) changes nothing: each device keeps the
// newest maintenance time per component. It blocks while a shard's queue
// is full; records are applied before the samples consumed after them.
func (e *Engine) ConsumeMaintenance(ctx context.Context, records []proactive.Maintenance) {
	e.enqueue(ctx, spread(e, records, func(m proactive.Maintenance) proactive.DeviceID { return m.Device },
		func(b *batch, n int) { b.maint = make([]proactive.Maintenance, 0, n) },
		func(b *batch, m proactive.Maintenance) { b.maint = append(b.maint, m) }))
}

// spread splits items into one batch per shard by their device, in order;
// nil when there are none. Each batch is made to size by reserve before put
// fills it: grown by append, the batches of a write cost twice their size
// in garbage.
func spread[T any](e *Engine, items []T, device func(T) proactive.DeviceID, reserve func(*batch, int), put func(*batch, T)) []batch {
	if len(items) == 0 {
		return nil
	}
	shard := make([]int32, len(items))
	counts := make([]int, len(e.shards))
	for i, it := range items {
		s := e.shardOf(device(it))
		shard[i] = int32(s)
		counts[s]++
	}
	parts := make([]batch, len(e.shards))
	for s, n := range counts {
		if n > 0 {
			reserve(&parts[s], n)
		}
	}
	for i, it := range items {
		put(&parts[shard[i]], it)
	}
	return parts
}

// MaintenanceID returns the highest maintenance ID the engine has taken in
// (queued records not yet applied excepted), 0 if none: a feed resumes
// after it.
func (e *Engine) MaintenanceID() int64 {
	var id int64
	for _, sh := range e.shards {
		sh.mu.Lock()
		id = max(id, sh.ev.maintID)
		sh.mu.Unlock()
	}
	return id
}

func (e *Engine) enqueue(ctx context.Context, parts []batch) {
	for i, p := range parts {
		if p.len() == 0 {
			continue
		}
		select {
		case e.shards[i].in <- p:
			continue
		default:
		}
		select {
		case e.shards[i].in <- p:
		case <-ctx.Done():
			e.m.dropped.Add(float64(len(p.samples)))
			return
		}
	}
}

func (e *Engine) shardOf(id proactive.DeviceID) int {
	if len(e.shards) == 1 {
		return 0
	}
	return int(maphash.String(e.seed, string(id)) % uint64(len(e.shards)))
}

// Run evaluates until ctx ends, then finishes the batches already queued.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, sh := range e.shards {
		wg.Go(func() { e.work(ctx, sh) })
	}
	wg.Wait()
	return nil
}

func (e *Engine) work(ctx context.Context, sh *shard) {
	tick := time.NewTicker(e.opts.TickInterval)
	defer tick.Stop()
	for {
		select {
		case batch := <-sh.in:
			e.process(ctx, sh, batch)
		case <-tick.C:
			up, resumed := e.intake()
			if !up {
				continue // our own outage: no device is silent meanwhile
			}
			sh.mu.Lock()
			sh.ev.seenFloor = resumed
			alerts := append([]proactive.Alert(nil), sh.ev.Tick(e.opts.Now())...)
			sh.mu.Unlock()
			e.notify(ctx, alerts)
		case <-ctx.Done():
			for {
				select {
				case batch := <-sh.in:
					e.process(context.WithoutCancel(ctx), sh, batch)
				default:
					return
				}
			}
		}
	}
}

// SetIntake reports whether telemetry reaches the engine: false while the
// ingester is disconnected from its broker or not running. While intake is
// down the clock fires no since_seen() rule; once it is up again, a device's
// silence is measured from then at the earliest, so the platform's own
// outage makes no device silent. It has the shape of ingest's IntakeFunc.
func (e *Engine) SetIntake(up bool) {
	now := e.opts.Now()
	e.intakeMu.Lock()
	defer e.intakeMu.Unlock()
	if up == e.intakeUp {
		return
	}
	e.intakeUp = up
	if up {
		e.resumed = now
	}
	e.log.Info("telemetry intake changed", "up", up)
}

// intake reports whether intake is up and since when.
func (e *Engine) intake() (bool, time.Time) {
	e.intakeMu.Lock()
	defer e.intakeMu.Unlock()
	return e.intakeUp, e.resumed
}

func (e *Engine) process(ctx context.Context, sh *shard, b batch) {
	var alerts []proactive.Alert
	sh.mu.Lock()
	for _, m := range b.maint {
		sh.ev.ObserveMaintenance(m)
	}
	for _, ev := range b.events {
		alerts = append(alerts, sh.ev.ObserveEvent(ev)...)
	}
	for _, s := range b.samples {
		alerts = append(alerts, sh.ev.Observe(s)...)
	}
	sh.mu.Unlock()
	if len(b.samples) > 0 {
		e.m.samples.Add(float64(len(b.samples)))
	}
	e.notify(ctx, alerts)
	if b.done != nil {
		close(b.done)
	}
}

func (e *Engine) notify(ctx context.Context, alerts []proactive.Alert) {
	if len(alerts) == 0 {
		return
	}
	for _, a := range alerts {
		e.m.transitions.WithLabelValues(a.Rule, string(a.State)).Inc()
		e.log.Info("alert "+string(a.State), "alert", a,
			"severity", a.Severity, "time_to_failure", a.TimeToFailure, "summary", a.Summary)
	}
	if e.opts.Notify != nil {
		e.opts.Notify(ctx, alerts)
	}
}

// RuleStatus is the health of one loaded rule across all devices.
type RuleStatus struct {
	Name        string             `json:"name"`
	Component   string             `json:"component"`
	Severity    proactive.Severity `json:"severity"`
	Contact     proactive.Contact  `json:"contact"`
	File        string             `json:"file"`
	Line        int                `json:"line"`
	Health      string             `json:"health"` // ok | error
	LastError   string             `json:"last_error,omitempty"`
	LastErrorAt time.Time          `json:"last_error_at,omitzero"`
	Evaluations int64              `json:"evaluations"`
	Errors      int64              `json:"errors"`
	Pending     int                `json:"pending"`
	Firing      int                `json:"firing"`
}

// Rules returns the status of every loaded rule, in load order.
func (e *Engine) Rules() []RuleStatus {
	e.mu.Lock()
	set := e.set
	e.mu.Unlock()
	out := make([]RuleStatus, len(set.rules))
	idx := map[string]int{}
	for i, r := range set.rules {
		out[i] = RuleStatus{Name: r.Name, Component: r.Component, Severity: r.Severity, Contact: r.Contact.OrAuto(),
			File: r.File, Line: r.Line, Health: "ok"}
		idx[r.Name] = i
	}
	for _, sh := range e.shards {
		sh.mu.Lock()
		for name, st := range sh.ev.stats {
			i, ok := idx[name]
			if !ok {
				continue
			}
			rs := &out[i]
			rs.Evaluations += st.evaluations
			rs.Errors += st.errors
			if st.lastErr != nil && st.lastErrAt.After(rs.LastErrorAt) {
				rs.Health, rs.LastError, rs.LastErrorAt = "error", st.lastErr.Error(), st.lastErrAt
			}
		}
		for _, d := range sh.ev.devices {
			for name, a := range d.alerts {
				if i, ok := idx[name]; ok {
					switch a.state {
					case proactive.AlertPending:
						out[i].Pending++
					case proactive.AlertFiring:
						out[i].Firing++
					}
				}
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// Alerts lists every pending and firing alert.
func (e *Engine) Alerts() []AlertStatus {
	var out []AlertStatus
	for _, sh := range e.shards {
		sh.mu.Lock()
		out = append(out, sh.ev.Alerts()...)
		sh.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Device != out[j].Device {
			return out[i].Device < out[j].Device
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}

type engineMetrics struct {
	samples     prometheus.Counter
	dropped     prometheus.Counter
	transitions *prometheus.CounterVec
	loads       prometheus.Counter
	loadErrors  prometheus.Counter
}

// newEngineMetrics registers the engine's instruments. Evaluation counts and
// alert states are read from the shards at scrape time, so the hot path
// touches no shared counter.
func newEngineMetrics(reg prometheus.Registerer, e *Engine) *engineMetrics {
	m := &engineMetrics{
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "proactive_rules_samples_total", Help: "Samples the rule engine took in."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "proactive_rules_samples_dropped_total", Help: "Samples not evaluated because shutdown came while the rule queues were full."}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proactive_rules_alert_transitions_total", Help: "Alerts that fired or resolved, by rule and state."}, []string{"rule", "state"}),
		loads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "proactive_rules_loads_total", Help: "Successful rule loads."}),
		loadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "proactive_rules_load_errors_total", Help: "Rule loads refused for problems in the files."}),
	}
	if reg != nil {
		reg.MustRegister(m.samples, m.dropped, m.transitions, m.loads, m.loadErrors, &statusCollector{e})
	}
	return m
}

var (
	descEvals  = prometheus.NewDesc("proactive_rules_evaluations_total", "Rule evaluations, by rule.", []string{"rule"}, nil)
	descErrors = prometheus.NewDesc("proactive_rules_evaluation_errors_total", "Rule evaluations that failed, by rule.", []string{"rule"}, nil)
	descAlerts = prometheus.NewDesc("proactive_rules_alerts", "Alerts now pending or firing, by rule and state.", []string{"rule", "state"}, nil)
)

type statusCollector struct{ e *Engine }

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEvals
	ch <- descErrors
	ch <- descAlerts
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.e.Rules() {
		ch <- prometheus.MustNewConstMetric(descEvals, prometheus.CounterValue, float64(r.Evaluations), r.Name)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(r.Errors), r.Name)
		ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.GaugeValue, float64(r.Pending), r.Name, "pending")
		ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.GaugeValue, float64(r.Firing), r.Name, "firing")
	}
}

// Lookback is how much history Rebuild replays for the loaded rules: twice
// the longest window plus the longest `for` or `clear_for`. Conditions over
// the last window-plus-hold are then computed from full windows, so every
// alert that changed state in that span is derived exactly as it was live.
// An alert firing since before it comes back firing, with ActiveAt and
// FiredAt no earlier than the history replayed.
func (e *Engine) Lookback() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	var longest, hold time.Duration
	for _, k := range e.set.layout.windowKeys {
		longest = max(longest, k.length+k.length/Buckets)
	}
	for _, r := range e.set.rules {
		hold = max(hold, r.For, r.ClearFor)
	}
	return 2*longest + hold
}

// Rebuild replays history from src through the shards before Run, so that a
// restart neither forgets windows nor double-fires: alert states are derived
// again from the same samples, and nothing is notified. It returns how many
// samples it replayed.
func (e *Engine) Rebuild(ctx context.Context, src SampleSource) (int64, error) {
	return e.rebuild(ctx, src, nil)
}

// rebuild is Rebuild with the events and maintenance of q fed at their
// times.
func (e *Engine) rebuild(ctx context.Context, src SampleSource, q *signalQueue) (int64, error) {
	var n int64
	err := src(ctx, func(s proactive.Sample) error {
		e.feedSignals(q, s.Time, time.Time{}, nil)
		sh := e.shards[e.shardOf(s.Device)]
		sh.mu.Lock()
		sh.ev.Observe(s)
		sh.mu.Unlock()
		n++
		return nil
	})
	return n, err
}
