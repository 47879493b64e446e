package influx

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// MetricValue is a metric's value at a time.
type MetricValue struct {
	Metric string    `json:"metric"`
	Value  float64   `json:"value"`
	Time   time.Time `json:"time"`
}

// SeriesPoint is one value of a series.
type SeriesPoint struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// MetricSeries is one metric's points, oldest first.
type MetricSeries struct {
	Metric string        `json:"metric"`
	Points []SeriesPoint `json:"points"`
}

// Latest returns the last value of every metric device sent within the
// lookback, by metric name. A device with no telemetry gets an empty slice.
func (s *Store) Latest(ctx context.Context, device proactive.DeviceID) ([]MetricValue, error) {
	if !proactive.ValidDeviceID(string(device)) {
		return nil, proactive.Errorf(proactive.EInvalid, "device %q is not a device id ([A-Za-z0-9_.-]{1,64})", device)
	}
	// Grouping by field alone merges the series of one device that differ
	// in their model tag (a device re-registered under another model).
	flux := fmt.Sprintf(`from(bucket: %s)
  |> range(start: -%ds)
  |> filter(fn: (r) => r._measurement == %s and r.device_id == %s)
  |> group(columns: ["_field"])
  |> last()`,
		fluxString(s.bucket), int64(s.lookback/time.Second), fluxString(MeasurementTelemetry), fluxString(string(device)))
	out := []MetricValue{}
	err := s.query(ctx, flux, func(field string, t time.Time, v float64) {
		out = append(out, MetricValue{Metric: field, Value: v, Time: t})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b MetricValue) int { return strings.Compare(a.Metric, b.Metric) })
	return out, nil
}

// Range returns device's metrics (all of them when metrics is empty) in
// [from, to), at most maxPoints per metric: the span is cut into equal
// windows of every (a whole number of seconds, at least 1s), and each point
// is the mean of one window, stamped with the window's start. Windows
// without data give no point. Metrics without data in the range are left out.
func (s *Store) Range(ctx context.Context, device proactive.DeviceID, metrics []string, from, to time.Time, maxPoints int) (series []MetricSeries, every time.Duration, err error) {
	if !proactive.ValidDeviceID(string(device)) {
		return nil, 0, proactive.Errorf(proactive.EInvalid, "device %q is not a device id ([A-Za-z0-9_.-]{1,64})", device)
	}
	for _, m := range metrics {
		if !proactive.ValidMetricName(m) {
			return nil, 0, proactive.Errorf(proactive.EInvalid, "metric %q is not a metric name ([a-z][a-z0-9_]{0,63})", m)
		}
	}
	if !from.Before(to) {
		return nil, 0, proactive.Errorf(proactive.EInvalid, "from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if maxPoints <= 0 {
		return nil, 0, proactive.Errorf(proactive.EInvalid, "maxPoints must be positive")
	}
	every = RangeEvery(to.Sub(from), maxPoints)
	filter := fmt.Sprintf(`r._measurement == %s and r.device_id == %s`, fluxString(MeasurementTelemetry), fluxString(string(device)))
	if len(metrics) > 0 {
		alts := make([]string, len(metrics))
		for i, m := range metrics {
			alts[i] = `r._field == ` + fluxString(m)
		}
		filter += ` and (` + strings.Join(alts, " or ") + `)`
	}
	// InfluxDB 1.8 treats range's stop as inclusive
	// (influxdata/influxdb#19966), hence the filter on _time. Windows are
	// aligned to the epoch: shifting the times by from's offset into its
	// window, and back after, makes the first window start at from, so
	// that there are no more windows than maxPoints.
	stop := to.UTC().Format(time.RFC3339Nano)
	offset := time.Duration(from.UnixNano() % int64(every))
	flux := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => %s and r._time < %s)
  |> group(columns: ["_field"])
  |> timeShift(duration: -%dns)
  |> aggregateWindow(every: %ds, fn: mean, createEmpty: false, timeSrc: "_start")
  |> timeShift(duration: %dns)`,
		fluxString(s.bucket), from.UTC().Format(time.RFC3339Nano), stop, filter, stop,
		int64(offset), int64(every/time.Second), int64(offset))
	byMetric := map[string]*MetricSeries{}
	err = s.query(ctx, flux, func(field string, t time.Time, v float64) {
		s := byMetric[field]
		if s == nil {
			s = &MetricSeries{Metric: field}
			byMetric[field] = s
		}
		s.Points = append(s.Points, SeriesPoint{Time: t, Value: v})
	})
	if err != nil {
		return nil, 0, err
	}
	series = make([]MetricSeries, 0, len(byMetric))
	for _, s := range byMetric {
		slices.SortFunc(s.Points, func(a, b SeriesPoint) int { return a.Time.Compare(b.Time) })
		series = append(series, *s)
	}
	slices.SortFunc(series, func(a, b MetricSeries) int { return strings.Compare(a.Metric, b.Metric) })
	return series, every, nil
}

// RangeEvery returns the window that splits span into at most maxPoints windows:
// span/maxPoints rounded up to a whole second, and at least one second.
func RangeEvery(span time.Duration, maxPoints int) time.Duration {
	if maxPoints <= 0 {
		maxPoints = 1
	}
	every := (span + time.Duration(maxPoints) - 1) / time.Duration(maxPoints)
	return max(time.Second, (every + time.Second - 1).Truncate(time.Second))
}

// query runs flux and hands each numeric row's field, time and value to fn.
func (s *Store) query(ctx context.Context, flux string, fn func(field string, t time.Time, v float64)) error {
	res, err := s.client.QueryAPI(s.org).Query(ctx, flux)
	if err != nil {
		return fmt.Errorf("query influxdb: %w", err)
	}
	defer res.Close()
	for res.Next() {
		rec := res.Record()
		var v float64
		switch x := rec.Value().(type) {
		case float64:
			v = x
		case int64:
			v = float64(x)
		case uint64:
			v = float64(x)
		case bool:
			if x {
				v = 1
			}
		default:
			continue
		}
		fn(rec.Field(), rec.Time().UTC(), v)
	}
	if err := res.Err(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("read influxdb query result: %w", err)
	}
	return nil
}
