package influx

import (
	"context"
	"fmt"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api"

	"github.com/proactivehq/proactive"
)

// Events calls fn with the device events (as Write stores them in the
// events measurement) of [from, to), of one device or, when device is
// empty, all of them, in time order and then by device, code and
// component, the same order every time. A zero to means the time of the
// call. It stops at the first error fn returns and returns it, and once ctx
// is done returns ctx's error. It is what rules.EventStore asks for, so
// that rebuilds and backtests see the events the live engine saw.
//
// Like Samples it queries one time chunk at a time, sized to hold about
// 50,000 rows, and streams each response's rows into fn.
func (s *Store) Events(ctx context.Context, from, to time.Time, device proactive.DeviceID, fn func(proactive.Event) error) error {
	return s.chunked(from, to, device, func(q api.QueryAPI, start, end time.Time) (int, error) {
		return eventChunk(ctx, q, fluxEvents(s.bucket, start, end, string(device)), end, fn)
	})
}

// eventChunk runs one chunk's query and streams its events before stop
// into fn; the rows at stop, which InfluxDB 1.8 returns too
// (influxdata/influxdb#19966), are the next chunk's.
func eventChunk(ctx context.Context, q api.QueryAPI, flux string, stop time.Time, fn func(proactive.Event) error) (rows int, err error) {
	res, err := q.Query(ctx, flux)
	if err != nil {
		return 0, fmt.Errorf("query influxdb: %w", err)
	}
	defer res.Close()
	for res.Next() {
		rows++
		rec := res.Record()
		dev, _ := rec.ValueByKey("device_id").(string)
		code, _ := rec.ValueByKey("code").(string)
		if dev == "" || code == "" || !rec.Time().Before(stop) {
			continue
		}
		ev := proactive.Event{Device: proactive.DeviceID(dev), Time: rec.Time(), Code: code}
		ev.Component, _ = rec.ValueByKey("component").(string)
		ev.Model, _ = rec.ValueByKey("model").(string)
		ev.Text, _ = rec.ValueByKey("text").(string)
		sev, _ := rec.ValueByKey("severity").(string)
		ev.Severity = proactive.Severity(sev)
		if err := fn(ev); err != nil {
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

// fluxEvents is the query of one chunk of Events: the events of
// [start, stop), fields pivoted into columns, all in one table sorted by
// time, device, code and component, so that a replay is deterministic.
func fluxEvents(bucket string, start, stop time.Time, device string) string {
	filter := `r._measurement == "events"`
	if device != "" {
		filter += ` and r.device_id == ` + fluxString(device)
	}
	return fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => %s)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["_time", "device_id", "code", "component"])`,
		fluxString(bucket), start.UTC().Format(time.RFC3339Nano), stop.UTC().Format(time.RFC3339Nano), filter)
}
