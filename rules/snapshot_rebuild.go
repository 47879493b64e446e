package rules

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/proactivehq/proactive"
)

// ErrSnapshotStale is wrapped by the Fallback of a RebuildSince that set
// its snapshot aside as empty or older than MaxSnapshotGap.
var ErrSnapshotStale = errors.New("snapshot set aside")

// MaxSnapshotGap returns the age beyond which RebuildSince does not use a
// snapshot and rebuilds from history instead: twice RebuildTail, and at
// least an hour. The gap is replayed sample by sample, which for long gaps
// reads more than RebuildHistory's aggregates and tail do.
func (e *Engine) MaxSnapshotGap() time.Duration {
	return max(2*e.RebuildTail(), time.Hour)
}

// RebuildSince completes, from h, a state that Restore loaded from a
// snapshot described by info, up to end, before Run, notifying nothing.
//
// The gap starts at the snapshot's Time (or its clock, if earlier) minus
// the late tolerance (the larger of the snapshot's and the engine's): a
// sample that reached the engine after the snapshot is at most that old,
// unless its device was silent longer. Each window drops its buckets from
// the one holding the gap's start on, which may hold samples the snapshot
// lacks, and takes them again from h's samples, so nothing is counted
// twice; windows the snapshot lacks (a new rule's) load their older buckets
// from h.Buckets as RebuildHistory does, or from samples without it. A
// sample newer than its device's last evaluation goes through the rules,
// from the alert states the snapshot holds, so alerts, `for`, `clear_for`
// and cooldowns go on as if the engine had not stopped.
//
// A snapshot without samples, or older than MaxSnapshotGap, is set aside:
// the engine forgets it and runs RebuildHistory, saying why in the report's
// Fallback.
func (e *Engine) RebuildSince(ctx context.Context, h History, info SnapshotInfo, end time.Time) (RebuildReport, error) {
	tol := max(info.Tolerance, e.opts.LateTolerance)
	from := minTime(info.Time, info.Taken).Add(-tol)
	var why error
	switch {
	case info.Time.IsZero():
		why = fmt.Errorf("%w: it holds no samples", ErrSnapshotStale)
	case end.Sub(from) > e.MaxSnapshotGap():
		why = fmt.Errorf("%w: %v old, more than %v", ErrSnapshotStale, end.Sub(info.Time).Round(time.Second), e.MaxSnapshotGap())
	}
	if why != nil {
		e.reset()
		rep, err := e.RebuildHistory(ctx, h, end)
		rep.Fallback = errors.Join(why, rep.Fallback)
		return rep, err
	}

	e.mu.Lock()
	set := e.set
	e.mu.Unlock()
	l := set.layout
	restored := func(ws int) bool { return ws < len(info.restored) && info.restored[ws] }

	// Each window takes the samples from the bucket holding from on; a
	// window the snapshot lacks, the aggregates of the buckets before it.
	since := make([]int64, len(l.windowKeys))
	cut := make([]int64, len(l.windowKeys))
	var reqs []BucketRequest
	for ws, k := range l.windowKeys {
		width, _ := geometry(k.length)
		cut[ws] = floorDiv(from.UnixNano(), width)
		since[ws] = cut[ws] * width
		if !restored(ws) {
			reqs = append(reqs, BucketRequest{Metric: l.metricNames[k.metric], Length: k.length,
				From: time.Unix(0, (cut[ws]-Buckets)*width).UTC(), To: time.Unix(0, since[ws]).UTC()})
		}
	}
	for _, sh := range e.shards {
		sh.mu.Lock()
		for _, d := range sh.ev.devices {
			for ws, w := range d.windows {
				if w != nil && restored(ws) {
					w.truncate(cut[ws])
				}
			}
		}
		sh.mu.Unlock()
	}

	rep := RebuildReport{From: from, Tail: end.Sub(from)}
	if len(reqs) > 0 {
		err := errors.New("no bucket source")
		if h.Buckets != nil {
			newest := map[proactive.DeviceID][]int64{}
			err = h.Buckets(ctx, reqs, func(a BucketAggregate) error {
				sh := e.shards[e.shardOf(a.Device)]
				sh.mu.Lock()
				merged := sh.ev.mergeKeepLatest(a, newest)
				sh.mu.Unlock()
				if merged {
					rep.Buckets++
				}
				return nil
			})
		}
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return rep, fmt.Errorf("rebuild rule windows: load aggregates: %w", ctxErr)
			}
			// The new windows take every sample of their span instead,
			// after dropping what they merged.
			rep.Fallback = fmt.Errorf("load aggregates: %w", err)
			for _, sh := range e.shards {
				sh.mu.Lock()
				for _, d := range sh.ev.devices {
					for ws := range d.windows {
						if !restored(ws) {
							d.windows[ws] = nil
						}
					}
				}
				sh.mu.Unlock()
			}
			for _, r := range reqs {
				for ws, k := range l.windowKeys {
					if !restored(ws) && k.length == r.Length && l.metricNames[k.metric] == r.Metric {
						since[ws] = r.From.UnixNano()
					}
				}
			}
		} else {
			rep.Aggregated = true
		}
	}

	first := int64(math.MaxInt64)
	for _, s := range since {
		first = min(first, s)
	}
	if len(since) == 0 {
		return rep, nil
	}
	rep.From = minTime(rep.From, time.Unix(0, first).UTC())
	// The events of the gap: those the snapshot holds already count once
	// (an event is its code and time).
	gap := info.Time.Add(-e.opts.LateTolerance)
	// What each device had evaluated when the snapshot was taken: a sample
	// or event at or before it was evaluated then.
	evaluated := map[proactive.DeviceID]time.Time{}
	for _, sh := range e.shards {
		sh.mu.Lock()
		for id, d := range sh.ev.devices {
			evaluated[id] = d.lastEval
		}
		sh.mu.Unlock()
	}
	seen := func(id proactive.DeviceID, t time.Time) bool {
		at, ok := evaluated[id]
		return ok && !t.After(at)
	}
	q, err := e.signals(ctx, h, gap, end)
	if err != nil {
		return rep, fmt.Errorf("rebuild rule windows: load events and maintenance: %w", err)
	}
	err = h.Samples(time.Unix(0, first).UTC(), end)(ctx, func(s proactive.Sample) error {
		e.feedSignals(q, s.Time, gap, seen)
		sh := e.shards[e.shardOf(s.Device)]
		sh.mu.Lock()
		ev := sh.ev
		d := ev.device(&s)
		// A sample at or before the device's last evaluation at the
		// snapshot was evaluated before it (or would have been skipped).
		evaluate := !seen(s.Device, s.Time)
		ev.add(d, &s, since)
		if evaluate {
			ev.out = ev.out[:0]
			ev.evaluate(d, d.lastSeen, false)
		}
		sh.mu.Unlock()
		rep.Samples++
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("rebuild rule windows: replay the gap since the snapshot: %w", err)
	}
	e.feedSignals(q, end, gap, seen)
	return rep, nil
}

// mergeKeepLatest is merge for a device that may hold latest values from a
// snapshot, which are newer than any aggregate: it keeps them.
func (ev *Evaluator) mergeKeepLatest(a BucketAggregate, newest map[proactive.DeviceID][]int64) bool {
	if _, ok := newest[a.Device]; !ok {
		if d := ev.devices[a.Device]; d != nil {
			at := make([]int64, len(ev.set.layout.metricNames))
			for i := range at {
				at[i] = math.MinInt64
				if i < len(d.latest) && !math.IsNaN(d.latest[i]) {
					at[i] = math.MaxInt64
				}
			}
			newest[a.Device] = at
		}
	}
	return ev.merge(a, newest)
}

// truncate drops the buckets from k on, as if their samples had never come,
// for a rebuild to add them again.
func (w *Window) truncate(k int64) {
	if !w.hasData || k > w.head {
		return
	}
	w.cache.have = 0
	if k <= w.head-Buckets {
		w.ring = [ringSize]bucket{}
		w.hasData, w.newest = false, 0
		w.head, w.headStart, w.headSlot = 0, 0, 0
		return
	}
	for j := k; j <= w.head; j++ {
		*w.at(j) = bucket{}
	}
	w.head, w.headStart, w.headSlot = k-1, (k-1)*w.width, int32(w.slot(k-1))
	// Older than any sample the rebuild adds, and in the newest bucket.
	w.newest = k*w.width - 1
}
