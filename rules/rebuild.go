package rules

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/proactivehq/proactive"
)

// History is the stored telemetry a rebuild reads (StoredHistory).
type History struct {
	// Samples returns a source of the samples of [from, to), in time order
	// across devices.
	Samples func(from, to time.Time) SampleSource
	// Buckets, when set, yields the windows' buckets as aggregates; without
	// it RebuildHistory replays samples over Lookback.
	Buckets BucketSource
	// Events, when set, returns a source of the device events of [from,
	// to), which the rebuilds feed with the samples, in time order; without
	// it devices come back with no events (StoredHistory sets it when the
	// store is an EventStore).
	Events func(from, to time.Time) EventSource
	// Maintenance, when set, gives the maintenance records, which the
	// rebuilds apply at their times; without it the MaintenanceFeed brings
	// them once the engine runs.
	Maintenance MaintenanceSource
}

// BucketRequest asks for the buckets of the windows of one length over one
// metric, for every device, between From and To (bucket edges).
type BucketRequest struct {
	Metric   string
	Length   time.Duration
	From, To time.Time
}

// BucketSource calls fn with the aggregates of the non-empty buckets that
// reqs ask for, for every device, in any order; a bucket may come in
// several aggregates of parts of its samples, which Window.Merge combines.
// It stops at the first error fn returns and returns it, and once ctx is
// done returns ctx's error.
type BucketSource func(ctx context.Context, reqs []BucketRequest, fn func(BucketAggregate) error) error

// RebuildReport is what RebuildHistory did.
type RebuildReport struct {
	// Aggregated is true when the windows were loaded from bucket
	// aggregates and only the tail was replayed; false for a replay of
	// samples over Lookback.
	Aggregated bool
	// Buckets counts the aggregates merged, Samples the samples replayed.
	Buckets, Samples int64
	// From is the start of the history read; Tail the span replayed sample
	// by sample (Lookback for a replay).
	From time.Time
	Tail time.Duration
	// Fallback is why the aggregates could not be used, when History had
	// a bucket source and the rebuild replayed samples instead.
	Fallback error
}

// RebuildTail is how much history RebuildHistory replays sample by sample,
// through the rules, to derive alert states: the longest `for` plus
// `clear_for` of the loaded rules, so that an alert whose condition has held
// since before the tail is firing again by its end, and one that went
// false within it resolves as it did live.
func (e *Engine) RebuildTail() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	var tail time.Duration
	for _, r := range e.set.rules {
		tail = max(tail, r.For+r.ClearFor)
	}
	return tail
}

// RebuildHistory rebuilds windows and alert states from h as they stood at
// end, before Run and on an engine that has taken no samples, notifying
// nothing. With h.Buckets it loads each window's buckets older than the
// tail (RebuildTail) as aggregates, one per device, metric and bucket,
// then replays the tail's samples: the windows take those after their own
// aggregated buckets, and the samples from end-tail on are evaluated, so
// alert states are derived from the tail alone. Without h.Buckets, or when
// they fail for a reason other than ctx, it replays every sample of the
// last Lookback instead (Rebuild), and says why in the report.
//
// Windows rebuilt from aggregates hold what live windows held; doc.go says
// how exactly. ctx bounds the whole rebuild: when it ends, the rebuild
// stops with what it has loaded and returns ctx's error.
func (e *Engine) RebuildHistory(ctx context.Context, h History, end time.Time) (RebuildReport, error) {
	if h.Buckets == nil {
		return e.replay(ctx, h, end, nil)
	}
	e.mu.Lock()
	set := e.set
	e.mu.Unlock()
	tail := e.RebuildTail()
	rep := RebuildReport{Aggregated: true, Tail: tail}

	// Each window takes aggregates of its buckets before the one holding
	// end-tail, reaching back as far as a query at end-tail reads, and the
	// samples from that bucket on.
	t0 := end.Add(-tail)
	l := set.layout
	since := make([]int64, len(l.windowKeys))
	reqs := make([]BucketRequest, 0, len(l.windowKeys))
	first := t0
	for ws, k := range l.windowKeys {
		width, _ := geometry(k.length)
		split := floorDiv(t0.UnixNano(), width)
		since[ws] = split * width
		r := BucketRequest{Metric: l.metricNames[k.metric], Length: k.length,
			From: time.Unix(0, (split-Buckets)*width).UTC(), To: time.Unix(0, since[ws]).UTC()}
		reqs = append(reqs, r)
		first = minTime(first, r.From)
	}
	rep.From = first

	// The newest aggregated time of each device's metrics, for their
	// latest values.
	newest := map[proactive.DeviceID][]int64{}
	err := h.Buckets(ctx, reqs, func(a BucketAggregate) error {
		sh := e.shards[e.shardOf(a.Device)]
		sh.mu.Lock()
		merged := sh.ev.merge(a, newest)
		sh.mu.Unlock()
		if merged {
			rep.Buckets++
		}
		return nil
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return rep, fmt.Errorf("rebuild rule windows: load aggregates: %w", ctxErr)
		}
		e.reset()
		return e.replay(ctx, h, end, fmt.Errorf("load aggregates: %w", err))
	}

	tailFrom := t0
	for _, s := range since {
		tailFrom = minTime(tailFrom, time.Unix(0, s))
	}
	q, err := e.signals(ctx, h, minTime(tailFrom, t0.Add(-e.eventSpan())), end)
	if err != nil {
		return rep, fmt.Errorf("rebuild rule windows: load events and maintenance: %w", err)
	}
	err = h.Samples(tailFrom, end)(ctx, func(s proactive.Sample) error {
		e.feedSignals(q, s.Time, t0, nil)
		sh := e.shards[e.shardOf(s.Device)]
		sh.mu.Lock()
		if s.Time.Before(t0) {
			// Before the tail: for the windows still behind it, no evaluation.
			sh.ev.add(sh.ev.device(&s), &s, since)
		} else {
			sh.ev.Observe(s)
		}
		sh.mu.Unlock()
		rep.Samples++
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("rebuild rule windows: replay the tail: %w", err)
	}
	e.feedSignals(q, end, t0, nil)
	return rep, nil
}

// replay is the rebuild without aggregates: every sample of the last
// Lookback through the rules.
func (e *Engine) replay(ctx context.Context, h History, end time.Time, why error) (RebuildReport, error) {
	lb := e.Lookback()
	rep := RebuildReport{From: end.Add(-lb), Tail: lb, Fallback: why}
	if why != nil {
		e.log.Warn("rule windows: no aggregates, replaying samples", "lookback", lb, "err", why)
	}
	q, err := e.signals(ctx, h, rep.From.Add(-e.eventSpan()), end)
	if err != nil {
		return rep, fmt.Errorf("rebuild rule windows: load events and maintenance: %w", err)
	}
	n, err := e.rebuild(ctx, h.Samples(rep.From, end), q)
	e.feedSignals(q, end, time.Time{}, nil)
	rep.Samples = n
	if err != nil {
		return rep, fmt.Errorf("rebuild rule windows: replay samples: %w", err)
	}
	return rep, nil
}

// reset forgets every device, for a rebuild to start over.
func (e *Engine) reset() {
	for _, sh := range e.shards {
		sh.mu.Lock()
		sh.ev.devices = map[proactive.DeviceID]*device{}
		sh.mu.Unlock()
	}
}

// merge loads an aggregate into its device's window, if a rule reads that
// window, and takes its newest sample as the device's latest when newer
// than any merged before (newest, by device and metric slot, tracks them).
func (ev *Evaluator) merge(a BucketAggregate, newest map[proactive.DeviceID][]int64) bool {
	l := ev.set.layout
	slot, ok := l.metrics[a.Metric]
	if !ok {
		return false
	}
	ws, ok := l.windows[windowKey{slot, a.Length}]
	if !ok {
		return false
	}
	d := ev.device(&proactive.Sample{Device: a.Device, Model: a.Model})
	if !ev.window(d, ws).Merge(a) {
		return false
	}
	at := newest[a.Device]
	if at == nil {
		at = make([]int64, len(l.metricNames))
		for i := range at {
			at[i] = math.MinInt64
		}
		newest[a.Device] = at
	}
	if ns := a.LastTime.UnixNano(); ns >= at[slot] {
		at[slot], d.latest[slot] = ns, a.Last
	}
	if a.LastTime.After(d.lastSeen) {
		d.lastSeen = a.LastTime
	}
	return true
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
