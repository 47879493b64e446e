package influx

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api"
	"github.com/influxdata/influxdb-client-go/v2/api/query"

	"github.com/proactivehq/proactive"
)

// The span of history one query of Samples reads adapts to the data,
// so that the server sorts, and the client holds, about chunkRows rows at a
// time whatever the fleet's size and sample rate: it starts at firstChunk
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
// order and then by device, the same order every time. A zero to means the
// time of the call. It stops at the first error fn returns and returns it,
// and once ctx is done returns ctx's error.
//
// It queries with Flux one time chunk at a time, pivoting each point's
// fields into one row and sorting the chunk by time and device. Rows
// stream from each response; chunks are sized to hold about 50,000 rows,
// which bounds the memory of influxd's sort. Every float column of a row
// other than Flux's own (_time, _start, ...) is a metric; null columns
// (metrics the device did not send then) are left out.
func (s *Store) Samples(ctx context.Context, from, to time.Time, device proactive.DeviceID, fn func(proactive.Sample) error) error {
	return s.chunked(from, to, device, func(q api.QueryAPI, start, end time.Time) (int, error) {
		return influxChunk(ctx, q, fluxTelemetry(s.bucket, start, end, string(device)), end, fn)
	})
}

// chunked runs read over [from, to) (a zero to: now) one time chunk at a
// time, sizing each chunk from the rows the last one returned (nextChunk),
// for device or, when it is empty, every device.
func (s *Store) chunked(from, to time.Time, device proactive.DeviceID, read func(q api.QueryAPI, start, end time.Time) (rows int, err error)) error {
	if device != "" && !proactive.ValidDeviceID(string(device)) {
		return fmt.Errorf("device %q is not a device id ([A-Za-z0-9_.-]{1,64})", device)
	}
	stop := to
	if stop.IsZero() {
		stop = time.Now()
	}
	q := s.client.QueryAPI(s.org)
	span := firstChunk
	for start := from; start.Before(stop); {
		end := start.Add(span)
		if end.After(stop) {
			end = stop
		}
		rows, err := read(q, start, end)
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

// influxChunk runs one chunk's query and streams its rows before stop into
// fn. InfluxDB 1.8's storage treats range's stop as inclusive
// (influxdata/influxdb#19966), so the rows at stop, which the next chunk
// reads, are dropped here.
func influxChunk(ctx context.Context, q api.QueryAPI, flux string, stop time.Time, fn func(proactive.Sample) error) (rows int, err error) {
	res, err := q.Query(ctx, flux)
	if err != nil {
		return 0, fmt.Errorf("query influxdb: %w", err)
	}
	defer res.Close()
	var metrics []string // float columns of the current table that are metrics
	for res.Next() {
		if res.TableChanged() || metrics == nil {
			metrics = metricColumns(res.TableMetadata())
		}
		rows++
		rec := res.Record()
		dev, _ := rec.ValueByKey("device_id").(string)
		if dev == "" || !rec.Time().Before(stop) {
			continue
		}
		s := proactive.Sample{Device: proactive.DeviceID(dev), Time: rec.Time(), Metrics: make(map[string]float64, len(metrics))}
		s.Model, _ = rec.ValueByKey("model").(string)
		for _, m := range metrics {
			if v, ok := rec.ValueByKey(m).(float64); ok {
				s.Metrics[m] = v
			}
		}
		if len(s.Metrics) == 0 {
			continue
		}
		if err := fn(s); err != nil {
			return rows, err
		}
	}
	if err := res.Err(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return rows, ctxErr
		}
		return rows, fmt.Errorf("read influxdb query result: %w", err)
	}
	return rows, nil
}

// fluxColumns are the columns of a Flux result that are never metrics.
var fluxColumns = map[string]bool{"result": true, "table": true, "device_id": true, "model": true}

// metricColumns returns the float columns of a table that are metrics.
func metricColumns(t *query.FluxTableMetadata) []string {
	ms := []string{}
	if t == nil {
		return ms
	}
	for _, c := range t.Columns() {
		name := c.Name()
		if c.DataType() == "double" && !fluxColumns[name] && !strings.HasPrefix(name, "_") && proactive.ValidMetricName(name) {
			ms = append(ms, name)
		}
	}
	return ms
}

// fluxTelemetry is the query of one chunk: the telemetry points of
// [start, stop), fields pivoted into columns, all devices in one table
// sorted by time and then device, so that a replay is deterministic.
func fluxTelemetry(bucket string, start, stop time.Time, device string) string {
	filter := `r._measurement == "telemetry"`
	if device != "" {
		filter += ` and r.device_id == ` + fluxString(device)
	}
	return fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => %s)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["_time", "device_id"])`,
		fluxString(bucket), start.UTC().Format(time.RFC3339Nano), stop.UTC().Format(time.RFC3339Nano), filter)
}

// Values calls fn with every float value of the metrics in [from, to), of
// every device: one series (device, model tag, metric) after another, each
// in time order, the series in no given order. It stops at the first error
// fn returns and returns it, and once ctx is done returns ctx's error.
//
// It reads with one Flux query that neither pivots nor sorts, so the server
// streams each series as it stores it; the rule rebuild builds its window
// buckets from them (rules.StoredHistory). Flux's own windowed aggregates
// were measured slower on InfluxDB 1.8 (window() costs ~150 µs a table, one
// table per bucket, and reduce() ~10 µs a row) and cannot reproduce the
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
	res, err := s.client.QueryAPI(s.org).Query(ctx, fluxValues(s.bucket, from, to, metrics))
	if err != nil {
		return fmt.Errorf("query influxdb: %w", err)
	}
	defer res.Close()
	// The series of the current table.
	var dev proactive.DeviceID
	var model, metric string
	table := -1
	for res.Next() {
		rec := res.Record()
		if rec.Table() != table || res.TableChanged() {
			table = rec.Table()
			d, _ := rec.ValueByKey("device_id").(string)
			dev = proactive.DeviceID(d)
			model, _ = rec.ValueByKey("model").(string)
			metric = rec.Field()
		}
		v, ok := rec.Value().(float64)
		if !ok || dev == "" {
			continue
		}
		if err := fn(dev, model, metric, rec.Time(), v); err != nil {
			return err
		}
	}
	if err := res.Err(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("read influxdb query result: %w", err)
	}
	return nil
}

// fluxValues is the query of Values: the values of the metrics in
// [start, stop), one table per series in time order, without pivot or sort.
// InfluxDB 1.8 returns the rows at stop too (influxdata/influxdb#19966):
// the caller, which filters by its own bounds anyway, drops them.
func fluxValues(bucket string, start, stop time.Time, metrics []string) string {
	fields := make([]string, 0, len(metrics))
	for _, m := range metrics {
		fields = append(fields, `r._field == `+fluxString(m))
	}
	slices.Sort(fields) // the same query every time
	fields = slices.Compact(fields)
	return fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == "telemetry" and (%s))
  |> keep(columns: ["_time", "_value", "_field", "device_id", "model"])`,
		fluxString(bucket), start.UTC().Format(time.RFC3339Nano), stop.UTC().Format(time.RFC3339Nano), strings.Join(fields, " or "))
}
