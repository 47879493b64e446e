package influx

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// The span of history one query of Samples reads adapts to the data,
// so that one query merges about chunkRows rows of the fleet's series
// whatever the fleet's size and sample rate: it starts at firstChunk
// and after each query is scaled towards chunkRows rows, by at most 4x a
// step, within [minChunk, maxChunk].
const (
	chunkRows  = 50_000
	firstChunk = time.Hour
	minChunk   = time.Minute
	maxChunk   = 7 * 24 * time.Hour
)

// Samples calls fn with the telemetry points (as Write stores them: tag
// device_id and, when known, model; one float field per metric) of
// [from, to), of one device or, when device is empty, all of them, in time
// order and then by device (and model), the same order every time. A zero
// to means the time of the call. It stops at the first error fn returns
// and returns it, and once ctx is done returns ctx's error.
//
// It queries one time chunk at a time, sized to hold about 50,000 rows
// (see nextChunk), with SELECT * and no GROUP BY: InfluxQL merges the
// series into one stream ordered by time, so only the rows of one
// timestamp are held, to be sorted by device. Every numeric column other
// than the tags is a metric; null columns (metrics the device did not send
// then) are left out.
func (s *Store) Samples(ctx context.Context, from, to time.Time, device proactive.DeviceID, fn func(proactive.Sample) error) error {
	return s.chunked(from, to, device, func(start, end time.Time) (int, error) {
		q := "SELECT * FROM " + quoteIdent(MeasurementTelemetry) + " WHERE " + timeRange(start, end) + deviceCond(device)
		var rows int
		tied := sameTime[proactive.Sample]{less: func(a, b proactive.Sample) int {
			return cmp.Or(strings.Compare(string(a.Device), string(b.Device)), strings.Compare(a.Model, b.Model))
		}}
		err := s.influxQL(ctx, q, func(_ int, sr *resultSeries) error {
			timeCol, devCol, modelCol := sr.column("time"), sr.column("device_id"), sr.column("model")
			if timeCol < 0 || devCol < 0 {
				return fmt.Errorf("query influxdb: telemetry result without time or device_id column: %v", sr.Columns)
			}
			metrics := metricCols(sr.Columns)
			for _, row := range sr.Values {
				rows++
				t, ok := epochTime(row[timeCol])
				dev := text(row[devCol])
				if !ok || dev == "" || !t.Before(end) {
					continue
				}
				smp := proactive.Sample{Device: proactive.DeviceID(dev), Time: t, Metrics: make(map[string]float64, len(metrics))}
				if modelCol >= 0 {
					smp.Model = text(row[modelCol])
				}
				for _, c := range metrics {
					if v, ok := number(row[c]); ok {
						smp.Metrics[sr.Columns[c]] = v
					}
				}
				if len(smp.Metrics) == 0 {
					continue
				}
				if err := tied.add(t, smp, fn); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return rows, err
		}
		return rows, tied.flush(fn)
	})
}

// deviceCond is the condition on device_id that narrows a query to device,
// or nothing when device is empty.
func deviceCond(device proactive.DeviceID) string {
	if device == "" {
		return ""
	}
	return " AND " + quoteIdent("device_id") + " = " + quoteString(string(device))
}

// tagColumns are the columns of a telemetry result that are never metrics:
// its time and tags.
var tagColumns = map[string]bool{"time": true, "device_id": true, "model": true}

// metricCols returns the indexes of the columns of a telemetry result that
// may hold metrics.
func metricCols(columns []string) []int {
	var out []int
	for i, c := range columns {
		if !tagColumns[c] && proactive.ValidMetricName(c) {
			out = append(out, i)
		}
	}
	return out
}

// sameTime holds the rows of one timestamp of a stream in time order, and
// hands them to fn sorted by less once the time moves on, so that rows of
// one time come in the same order every time whatever order the server
// merged its series in.
type sameTime[T any] struct {
	less func(a, b T) int
	t    time.Time
	rows []T
}

// add adds a row at t, first flushing the rows of an earlier time. A t
// before the held rows' is an error: the callers promise time order.
func (st *sameTime[T]) add(t time.Time, row T, fn func(T) error) error {
	if len(st.rows) > 0 && !t.Equal(st.t) {
		if t.Before(st.t) {
			return fmt.Errorf("query influxdb: rows out of time order (%s after %s)", t.Format(time.RFC3339Nano), st.t.Format(time.RFC3339Nano))
		}
		if err := st.flush(fn); err != nil {
			return err
		}
	}
	st.t = t
	st.rows = append(st.rows, row)
	return nil
}

// flush hands the held rows to fn in order.
func (st *sameTime[T]) flush(fn func(T) error) error {
	slices.SortStableFunc(st.rows, st.less)
	for _, r := range st.rows {
		if err := fn(r); err != nil {
			return err
		}
	}
	clear(st.rows)
	st.rows = st.rows[:0]
	return nil
}

// chunked runs read over [from, to) (a zero to: now) one time chunk at a
// time, sizing each chunk from the rows the last one returned (nextChunk),
// for device or, when it is empty, every device.
func (s *Store) chunked(from, to time.Time, device proactive.DeviceID, read func(start, end time.Time) (rows int, err error)) error {
	if device != "" && !proactive.ValidDeviceID(string(device)) {
		return fmt.Errorf("device %q is not a device id ([A-Za-z0-9_.-]{1,64})", device)
	}
	stop := to
	if stop.IsZero() {
		stop = time.Now()
	}
	span := firstChunk
	for start := from; start.Before(stop); {
		end := start.Add(span)
		if end.After(stop) {
			end = stop
		}
		rows, err := read(start, end)
		if err != nil {
			return err
		}
		span = nextChunk(span, end.Sub(start), rows)
		start = end
	}
	return nil
}

// nextChunk returns the span of the next query, given that the last one
// covered got and returned rows rows.
func nextChunk(span, got time.Duration, rows int) time.Duration {
	if got < span {
		return span // a short last chunk says nothing about the rate
	}
	next := span * 4
	if rows > 0 {
		next = min(next, time.Duration(float64(span)*chunkRows/float64(rows)))
	}
	return min(max(next, span/4, minChunk), maxChunk)
}

// Values calls fn with every float value of the metrics in [from, to), of
// every device: one series (device, model tag, metric) after another, each
// in time order, the series in no given order. It stops at the first error
// fn returns and returns it, and once ctx is done returns ctx's error.
//
// It reads with one statement grouped by device and model, so the server
// streams one device's series after another without a merge across them,
// and every metric in one pass (a statement per metric was measured about a
// third slower on InfluxDB 1.8). A row holds all the metrics of a time, so
// the values of one (device, model) series are held until it ends and then
// handed to fn metric by metric: the memory is one device's samples over
// [from, to). The rule rebuild builds its window buckets from them
// (rules.StoredHistory); server-side aggregates cannot reproduce the
// float32 accumulation of a live window.
func (s *Store) Values(ctx context.Context, from, to time.Time, metrics []string, fn func(device proactive.DeviceID, model, metric string, t time.Time, v float64) error) error {
	if len(metrics) == 0 {
		return nil
	}
	for _, m := range metrics {
		if !proactive.ValidMetricName(m) {
			return fmt.Errorf("metric %q is not a metric name", m)
		}
	}
	metrics = slices.Clone(metrics)
	slices.Sort(metrics) // the same query every time
	metrics = slices.Compact(metrics)
	fields := make([]string, len(metrics))
	for i, m := range metrics {
		fields[i] = quoteIdent(m)
	}
	q := "SELECT " + strings.Join(fields, ", ") + " FROM " + quoteIdent(MeasurementTelemetry) +
		" WHERE " + timeRange(from, to) + " GROUP BY " + quoteIdent("device_id") + ", " + quoteIdent("model")

	// The series being read, and its values by metric.
	var dev proactive.DeviceID
	var model string
	held := make([][]timedValue, len(metrics))
	flush := func() error {
		for i, vs := range held {
			for _, v := range vs {
				if err := fn(dev, model, metrics[i], time.Unix(0, v.t).UTC(), v.v); err != nil {
					return err
				}
			}
			held[i] = vs[:0]
		}
		return nil
	}
	cols := make([]int, len(metrics))
	err := s.influxQL(ctx, q, func(_ int, sr *resultSeries) error {
		d, m := proactive.DeviceID(sr.Tags["device_id"]), sr.Tags["model"]
		if d != dev || m != model {
			if err := flush(); err != nil {
				return err
			}
			dev, model = d, m
		}
		timeCol := sr.column("time")
		if dev == "" || timeCol < 0 {
			return nil
		}
		for i, m := range metrics {
			cols[i] = sr.column(m)
		}
		for _, row := range sr.Values {
			t, ok := epochTime(row[timeCol])
			if !ok {
				continue
			}
			for i, c := range cols {
				if c < 0 {
					continue
				}
				if v, ok := number(row[c]); ok {
					held[i] = append(held[i], timedValue{t.UnixNano(), v})
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

// timedValue is a value of a series and its time in Unix nanoseconds.
type timedValue struct {
	t int64
	v float64
}
