package rules

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/flux"
)

// InfluxHistory is the History of the telemetry measurement in bucket, as
// InfluxSource and InfluxBuckets read it.
func InfluxHistory(client influxdb2.Client, org, bucket string) History {
	return History{
		Samples: func(from, to time.Time) SampleSource { return InfluxSource(client, org, bucket, from, to, "") },
		Buckets: InfluxBuckets(client, org, bucket),
	}
}

// InfluxBuckets is a BucketSource over the telemetry measurement in bucket
// (see InfluxSource for the schema and the InfluxDB versions).
//
// It reads the values of the requested metrics with one Flux query that
// neither pivots nor sorts: the server streams each series (device, model
// tag, metric) in time order, and each value goes into the bucket being
// built for each request that covers it, with the same float32
// accumulation as Window.Add, so that its aggregates merge into the
// buckets a live window built. Flux's own windowed aggregates were
// measured slower on InfluxDB 1.8 (window() costs ~150 µs a table, one
// table per bucket, and reduce() ~10 µs a row) and cannot reproduce
// that accumulation.
func InfluxBuckets(client influxdb2.Client, org, bucket string) BucketSource {
	return func(ctx context.Context, reqs []BucketRequest, fn func(BucketAggregate) error) error {
		if len(reqs) == 0 {
			return nil
		}
		byMetric := map[string][]int{}
		from, to := reqs[0].From, reqs[0].To
		for i, r := range reqs {
			if !proactive.ValidMetricName(r.Metric) {
				return fmt.Errorf("metric %q is not a metric name", r.Metric)
			}
			byMetric[r.Metric] = append(byMetric[r.Metric], i)
			from, to = minTime(from, r.From), laterOf(to, r.To)
		}
		res, err := client.QueryAPI(org).Query(ctx, fluxValues(bucket, from, to, byMetric))
		if err != nil {
			return fmt.Errorf("query influxdb: %w", err)
		}
		defer res.Close()

		builders := make([]*bucketBuilder, len(reqs))
		for i, r := range reqs {
			builders[i] = newBucketBuilder(r.Length)
		}
		// The series of the current table, and the requests for its metric.
		var dev proactive.DeviceID
		var model, metric string
		var active []int
		table := -1
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
		for res.Next() {
			rec := res.Record()
			if rec.Table() != table || res.TableChanged() {
				if err := flush(); err != nil {
					return err
				}
				table = rec.Table()
				d, _ := rec.ValueByKey("device_id").(string)
				dev = proactive.DeviceID(d)
				model, _ = rec.ValueByKey("model").(string)
				metric = rec.Field()
				active = byMetric[metric]
				if dev == "" {
					active = nil
				}
			}
			v, ok := rec.Value().(float64)
			if !ok {
				continue
			}
			ns := rec.Time().UnixNano()
			for _, i := range active {
				// To is exclusive (InfluxDB 1.8 returns the rows at the
				// query's stop too).
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
		}
		if err := res.Err(); err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return fmt.Errorf("read influxdb query result: %w", err)
		}
		return flush()
	}
}

// fluxValues is the query of InfluxBuckets: the values of the metrics in
// [start, stop), one table per series in time order, without pivot or sort.
func fluxValues(bucket string, start, stop time.Time, metrics map[string][]int) string {
	fields := make([]string, 0, len(metrics))
	for m := range metrics {
		fields = append(fields, `r._field == `+flux.String(m))
	}
	slices.Sort(fields) // the same query every time
	return fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == "telemetry" and (%s))
  |> keep(columns: ["_time", "_value", "_field", "device_id", "model"])`,
		flux.String(bucket), start.UTC().Format(time.RFC3339Nano), stop.UTC().Format(time.RFC3339Nano), strings.Join(fields, " or "))
}
