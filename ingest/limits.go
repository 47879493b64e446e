package ingest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/proactivehq/proactive"
)

// DefaultMaxMetricsPerDevice is the default of Options.MaxMetricsPerDevice.
const DefaultMaxMetricsPerDevice = 200

// deviceLimits is what the ingester keeps of a device to hold it to its
// limits: its message rate and its distinct metric names. Each device has
// its own, so that one device's excess never waits on another's.
type deviceLimits struct {
	// rate is nil when messages are not limited.
	rate *rate.Limiter
	// limited is set while the device is over its rate, so that an
	// episode is logged once; capped once it has had a metric over the
	// limit, logged then.
	limited, capped atomic.Bool

	mu sync.Mutex
	// names are the device's metric names, sorted.
	names []string
}

// deviceLimits returns the limits of device id, creating them. A map under
// a read lock: sync.Map boxed the id into an interface and walked its trie,
// a third of a microsecond a message in the ingest profile.
func (in *Ingester) deviceLimits(id proactive.DeviceID) *deviceLimits {
	in.limitsMu.RLock()
	l := in.limits[id]
	in.limitsMu.RUnlock()
	if l != nil {
		return l
	}
	in.limitsMu.Lock()
	defer in.limitsMu.Unlock()
	if l := in.limits[id]; l != nil {
		return l
	}
	l = &deviceLimits{}
	if in.opts.MaxRatePerDevice > 0 {
		l.rate = rate.NewLimiter(rate.Limit(in.opts.MaxRatePerDevice), in.opts.RateBurst)
	}
	in.limits[id] = l
	return l
}

// allow takes a token for a message received at t, and reports whether
// there was one.
func (l *deviceLimits) allow(t time.Time) bool {
	if l.rate == nil {
		return true
	}
	ok := l.rate.AllowN(t, 1)
	if ok && l.limited.Load() {
		l.limited.Store(false)
	}
	return ok
}

// rateLimited dead-letters a message over its device's rate. Every one is
// counted; the log and the recent dead letters get the first of each
// episode only, so that a flood neither floods the log nor pushes every
// other device's dead letters out.
func (in *Ingester) rateLimited(m Message, id proactive.DeviceID, l *deviceLimits) {
	if l.limited.Swap(true) {
		in.m.DeadLetters.WithLabelValues(string(ReasonRateLimited)).Inc()
		return
	}
	e := EntryError{-1, ReasonRateLimited, fmt.Sprintf(
		"device sends more than %g messages per second (burst %d): its messages are dropped until it slows down, and counted in proactive_ingest_dead_letters_total{reason=\"rate_limited\"}",
		in.opts.MaxRatePerDevice, in.opts.RateBurst)}
	in.recordDeadLetter(m, id, e)
	in.log.Warn("device over its message rate; its excess messages are dead-lettered", "device_id", id,
		"max_rate_per_device", in.opts.MaxRatePerDevice, "burst", in.opts.RateBurst)
}

// capMetrics holds a device to MaxMetricsPerDevice distinct metric names:
// a reading's names beyond the limit are taken out of it and dead-lettered
// (too_many_metrics), its other metrics kept. It returns the readings that
// still have metrics. errs are the decoder's, which say which entries the
// readings came from.
func (in *Ingester) capMetrics(m Message, id proactive.DeviceID, l *deviceLimits, readings []Reading, errs []EntryError) []Reading {
	var idx []int
	kept := readings[:0]
	for i, r := range readings {
		dropped := l.admit(r.Metrics, in.opts.MaxMetricsPerDevice)
		if len(dropped) > 0 {
			if idx == nil {
				idx = entryIndexes(m.Payload, len(readings), errs)
			}
			first := !l.capped.Swap(true)
			e := EntryError{idx[i], ReasonTooManyMetrics, fmt.Sprintf("metrics %s not stored: the device has %d distinct metric names, the limit",
				truncate(strings.Join(dropped, ", "), 200), in.opts.MaxMetricsPerDevice)}
			if first {
				in.deadLetter(m, id, e)
			} else {
				in.recordDeadLetter(m, id, e)
			}
		}
		if len(r.Metrics) > 0 {
			kept = append(kept, r)
		}
	}
	return kept
}

// admit records the names of metrics as the device's while it has fewer
// than limit, deletes from metrics the names past it and returns them,
// sorted.
func (l *deviceLimits) admit(metrics map[string]float64, limit int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var unknown []string
	for name := range metrics {
		if _, found := slices.BinarySearch(l.names, name); !found {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	// In name order, so that which names fit does not depend on map order.
	slices.Sort(unknown)
	var dropped []string
	for _, name := range unknown {
		if len(l.names) >= limit {
			dropped = append(dropped, name)
			delete(metrics, name)
			continue
		}
		i, _ := slices.BinarySearch(l.names, name)
		l.names = slices.Insert(l.names, i, name)
	}
	return dropped
}

// entryIndexes returns the entry of the payload each of n readings came
// from: -1 for a payload that is one object, else the indexes of the array
// that errs (in entry order) does not name.
func entryIndexes(payload []byte, n int, errs []EntryError) []int {
	idx := make([]int, 0, n)
	if t := bytes.TrimSpace(payload); len(t) > 0 && t[0] == '{' {
		for range n {
			idx = append(idx, -1)
		}
		return idx
	}
	e := 0
	for i := 0; len(idx) < n; i++ {
		if e < len(errs) && errs[e].Entry == i {
			e++
			continue
		}
		idx = append(idx, i)
	}
	return idx
}
