package rules

import (
	"context"
	"slices"
	"time"

	"github.com/proactivehq/proactive"
)

// EventSource yields device events in time order across devices, calling fn
// for each; it stops at the first error fn returns and returns it, and once
// ctx is done returns ctx's error.
type EventSource func(ctx context.Context, fn func(proactive.Event) error) error

// EventStore is what a HistoryStore that also keeps device events offers
// (*influx.Store, from InfluxDB's measurement events).
// StoredHistory reads events from a store that implements it, so that
// rebuilds see them; without it, rebuilds see no events.
type EventStore interface {
	// Events calls fn with the events of [from, to), of device or, when
	// device is empty, of every device, in time order across devices. It
	// stops at the first error fn returns and returns it, and once ctx is
	// done returns ctx's error.
	Events(ctx context.Context, from, to time.Time, device proactive.DeviceID, fn func(proactive.Event) error) error
}

// StoredEvents is the EventSource of the events of [from, to) in s, of
// device or, when device is empty, of every device.
func StoredEvents(s EventStore, from, to time.Time, device proactive.DeviceID) EventSource {
	return func(ctx context.Context, fn func(proactive.Event) error) error {
		return s.Events(ctx, from, to, device, fn)
	}
}

// SliceEvents is an EventSource over events in memory, in any order: it
// yields them in time order.
func SliceEvents(events []proactive.Event) EventSource {
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b proactive.Event) int { return a.Time.Compare(b.Time) })
	return func(ctx context.Context, fn func(proactive.Event) error) error {
		for _, e := range sorted {
			if err := fn(e); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
}

// ReadMaintenance reads every record of src, page by page.
func ReadMaintenance(ctx context.Context, src MaintenanceSource) ([]proactive.Maintenance, error) {
	var out []proactive.Maintenance
	var after int64
	for {
		page, err := src.MaintenanceAfter(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return out, nil
		}
		for _, m := range page {
			after = max(after, m.ID)
		}
		out = append(out, page...)
	}
}

// signalQueue holds events and maintenance records in time order, to be
// fed between samples: those at or before a sample's time go in before it.
type signalQueue struct {
	events []proactive.Event
	maint  []proactive.Maintenance
}

// newSignalQueue reads events from src (nil: none) and sorts both.
func newSignalQueue(ctx context.Context, src EventSource, maint []proactive.Maintenance) (*signalQueue, error) {
	q := &signalQueue{maint: slices.Clone(maint)}
	if src != nil {
		if err := src(ctx, func(e proactive.Event) error {
			q.events = append(q.events, e)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(q.events, func(a, b proactive.Event) int { return a.Time.Compare(b.Time) })
	slices.SortStableFunc(q.maint, func(a, b proactive.Maintenance) int { return a.Time.Compare(b.Time) })
	return q, nil
}

// upTo calls maint and event for the entries at or before t (all of them
// when t is zero) in time order, maintenance first at equal times, and
// drops them from q.
func (q *signalQueue) upTo(t time.Time, maint func(proactive.Maintenance), event func(proactive.Event)) {
	if q == nil {
		return
	}
	for {
		me := len(q.maint) > 0 && (t.IsZero() || !q.maint[0].Time.After(t))
		ee := len(q.events) > 0 && (t.IsZero() || !q.events[0].Time.After(t))
		switch {
		case me && (!ee || !q.maint[0].Time.After(q.events[0].Time)):
			maint(q.maint[0])
			q.maint = q.maint[1:]
		case ee:
			event(q.events[0])
			q.events = q.events[1:]
		default:
			return
		}
	}
}

// recordEvent adds an event to its device's history without evaluating,
// as a rebuild does before the span it evaluates.
func (ev *Evaluator) recordEvent(e proactive.Event) *device {
	d := ev.deviceByID(e.Device, "")
	if d.events == nil {
		d.events = &eventLog{}
	}
	keep := ev.set.layout.eventWindow
	if keep > 0 {
		keep += ev.tolerance
	}
	d.events.add(e.Code, e.Time.UnixNano(), keep)
	return d
}

// eventSpan is how far back a rebuild reads events: the longest events()
// window and the late tolerance.
func (e *Engine) eventSpan() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.set.layout.eventWindow + e.opts.LateTolerance
}

// signals loads what h has of events in [from, end) and of maintenance.
func (e *Engine) signals(ctx context.Context, h History, from, end time.Time) (*signalQueue, error) {
	if h.Events == nil && h.Maintenance == nil {
		return nil, nil
	}
	var maint []proactive.Maintenance
	if h.Maintenance != nil {
		var err error
		if maint, err = ReadMaintenance(ctx, h.Maintenance); err != nil {
			return nil, err
		}
	}
	var src EventSource
	if h.Events != nil {
		src = h.Events(from, end)
	}
	return newSignalQueue(ctx, src, maint)
}

// feedSignals feeds q's entries up to t to the shards. An event before
// evalFrom, or one that seen says its device evaluated already (before a
// snapshot), is only recorded; the others evaluate as live.
func (e *Engine) feedSignals(q *signalQueue, t, evalFrom time.Time, seen func(proactive.DeviceID, time.Time) bool) {
	q.upTo(t, func(m proactive.Maintenance) {
		sh := e.shards[e.shardOf(m.Device)]
		sh.mu.Lock()
		sh.ev.ObserveMaintenance(m)
		sh.mu.Unlock()
	}, func(ev proactive.Event) {
		sh := e.shards[e.shardOf(ev.Device)]
		sh.mu.Lock()
		if ev.Time.Before(evalFrom) || seen != nil && seen(ev.Device, ev.Time) {
			sh.ev.recordEvent(ev)
		} else {
			sh.ev.ObserveEvent(ev)
		}
		sh.mu.Unlock()
	})
}
