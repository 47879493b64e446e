package rules

import (
	"context"
	"fmt"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	"github.com/influxdata/influxdb-client-go/v2/api/query"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/flux"
)

// The span of history one query of InfluxSource reads adapts to the data,
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

// InfluxSource is a SampleSource reading the telemetry measurement (as
// ingest stores it: tag device_id and, when known, model; one float field
// per metric) from bucket in [from, to), for one device or, when device is
// empty, all of them. A zero to means the time of the call.
//
// It queries with Flux one time chunk at a time, pivoting each point's
// fields into one row and sorting the chunk by time and device, so the
// samples arrive in time order, and in the same order every time. Rows
// stream from each response; chunks are sized to hold about 50,000 rows,
// which bounds the memory of influxd's sort. Every float column of a row
// other than Flux's own (_time, _start, ...) is a metric; null columns
// (metrics the device did not send then) are left out. It works with
// InfluxDB 2.x and with 1.8 with flux-enabled (org is then ignored and
// bucket is "database/retention_policy").
func InfluxSource(client influxdb2.Client, org, bucket string, from, to time.Time, device string) SampleSource {
	return func(ctx context.Context, fn func(proactive.Sample) error) error {
		if device != "" && !proactive.ValidDeviceID(device) {
			return fmt.Errorf("device %q is not a device id ([A-Za-z0-9_.-]{1,64})", device)
		}
		stop := to
		if stop.IsZero() {
			stop = time.Now()
		}
		q := client.QueryAPI(org)
		span := firstChunk
		for start := from; start.Before(stop); {
			end := start.Add(span)
			if end.After(stop) {
				end = stop
			}
			rows, err := influxChunk(ctx, q, fluxTelemetry(bucket, start, end, device), end, fn)
			if err != nil {
				return err
			}
			span = nextChunk(span, end.Sub(start), rows)
			start = end
		}
		return nil
	}
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
		filter += ` and r.device_id == ` + flux.String(device)
	}
	return fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => %s)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["_time", "device_id"])`,
		flux.String(bucket), start.UTC().Format(time.RFC3339Nano), stop.UTC().Format(time.RFC3339Nano), filter)
}
