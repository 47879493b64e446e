package rules

import (
	"context"
	"slices"
	"time"

	"github.com/proactivehq/proactive"
)

// HistoryStore is the stored telemetry that backtests and rebuilds read
// (*influx.Store).
type HistoryStore interface {
	// Samples calls fn with the samples of [from, to), of device or, when
	// device is empty, of every device, in time order across devices and
	// the same order every time; a zero to means now. It stops at the
	// first error fn returns and returns it, and once ctx is done returns
	// ctx's error.
	Samples(ctx context.Context, from, to time.Time, device proactive.DeviceID, fn func(proactive.Sample) error) error
	// Values calls fn with the values of metrics in [from, to) of every
	// device, one series (device, model, metric) after another, each in
	// time order. It may also yield values at to. It stops at the first
	// error fn returns and returns it, and once ctx is done returns ctx's
	// error.
	Values(ctx context.Context, from, to time.Time, metrics []string, fn func(device proactive.DeviceID, model, metric string, t time.Time, v float64) error) error
}

// StoredSamples is the SampleSource of the samples of [from, to) in s, of
// device or, when device is empty, of every device.
func StoredSamples(s HistoryStore, from, to time.Time, device proactive.DeviceID) SampleSource {
	return func(ctx context.Context, fn func(proactive.Sample) error) error {
		return s.Samples(ctx, from, to, device, fn)
	}
}

// StoredHistory is the History of s: its samples, buckets built from its
// series (storedBuckets), and its events when s is also an EventStore.
func StoredHistory(s HistoryStore) History {
	h := History{
		Samples: func(from, to time.Time) SampleSource { return StoredSamples(s, from, to, "") },
		Buckets: storedBuckets(s),
	}
	if es, ok := s.(EventStore); ok {
		h.Events = func(from, to time.Time) EventSource { return StoredEvents(es, from, to, "") }
	}
	return h
}

// storedBuckets is a BucketSource over the series of s. Each value goes into
// the bucket being built for each request that covers it, with the same
// float32 accumulation as Window.Add, so that its aggregates merge into the
// buckets a live window built.
func storedBuckets(s HistoryStore) BucketSource {
	return func(ctx context.Context, reqs []BucketRequest, fn func(BucketAggregate) error) error {
		if len(reqs) == 0 {
			return nil
		}
		byMetric := map[string][]int{}
		from, to := reqs[0].From, reqs[0].To
		for i, r := range reqs {
			byMetric[r.Metric] = append(byMetric[r.Metric], i)
			from, to = minTime(from, r.From), laterOf(to, r.To)
		}
		metrics := make([]string, 0, len(byMetric))
		for m := range byMetric {
			metrics = append(metrics, m)
		}
		slices.Sort(metrics)

		builders := make([]*bucketBuilder, len(reqs))
		for i, r := range reqs {
			builders[i] = newBucketBuilder(r.Length)
		}
		// The current series, and the requests for its metric.
		var dev proactive.DeviceID
		var model, metric string
		var active []int
		started := false
		flush := func() error {
			for _, i := range active {
				if a, ok := builders[i].flush(); ok {
					a.Device, a.Model, a.Metric = dev, model, metric
					if err := fn(a); err != nil {
						return err
					}
				}
			}
			return nil
		}
		err := s.Values(ctx, from, to, metrics, func(d proactive.DeviceID, m, met string, t time.Time, v float64) error {
			if !started || d != dev || m != model || met != metric {
				if err := flush(); err != nil {
					return err
				}
				started = true
				dev, model, metric = d, m, met
				active = byMetric[met]
			}
			ns := t.UnixNano()
			for _, i := range active {
				// To is exclusive.
				if ns < reqs[i].From.UnixNano() || ns >= reqs[i].To.UnixNano() {
					continue
				}
				if a, done := builders[i].add(ns, v); done {
					a.Device, a.Model, a.Metric = dev, model, metric
					if err := fn(a); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return flush()
	}
}
