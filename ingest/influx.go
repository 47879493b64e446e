package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/proactivehq/proactive"
)

// Measurement names in InfluxDB.
const (
	MeasurementTelemetry = "telemetry"
	MeasurementStatus    = "status"
)

// InfluxOptions locate the InfluxDB bucket. For InfluxDB 1.8 the bucket is
// "database/retention_policy" and the token "user:password" or empty.
type InfluxOptions struct {
	URL, Token, Org, Bucket string
	// Timeout bounds one HTTP request, default 10s.
	Timeout time.Duration
}

// Influx writes batches with the client's blocking API: the batching and
// retries are the Ingester's, so nothing is held or dropped inside the client.
type Influx struct {
	client influxdb2.Client
	write  api.WriteAPIBlocking
}

// NewInflux returns a writer for the given bucket. It does not connect.
func NewInflux(o InfluxOptions) *Influx {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	opts := influxdb2.DefaultOptions().
		SetPrecision(time.Millisecond).
		SetUseGZip(true).
		SetHTTPRequestTimeout(uint(o.Timeout / time.Second)).
		SetLogLevel(0)
	c := influxdb2.NewClientWithOptions(o.URL, o.Token, opts)
	return &Influx{client: c, write: c.WriteAPIBlocking(o.Org, o.Bucket)}
}

// Client returns the underlying client, for queries.
func (w *Influx) Client() influxdb2.Client { return w.client }

// Close releases idle connections.
func (w *Influx) Close() { w.client.Close() }

// Write implements Writer: samples go to the telemetry measurement with the
// device_id tag (and model when known), one field per metric; statuses to the
// status measurement.
func (w *Influx) Write(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus) error {
	points := make([]*write.Point, 0, len(samples)+len(statuses))
	for _, s := range samples {
		p := write.NewPointWithMeasurement(MeasurementTelemetry).AddTag("device_id", string(s.Device)).SetTime(s.Time)
		if s.Model != "" {
			p.AddTag("model", s.Model)
		}
		for k, v := range s.Metrics {
			p.AddField(k, v)
		}
		points = append(points, p)
	}
	for _, s := range statuses {
		p := write.NewPointWithMeasurement(MeasurementStatus).AddTag("device_id", string(s.Device)).
			AddField("online", s.Online).SetTime(s.Time)
		if s.Model != "" {
			p.AddTag("model", s.Model)
		}
		points = append(points, p)
	}
	if err := w.write.WritePoint(ctx, points...); err != nil {
		return classify(err)
	}
	return nil
}

// classify marks the errors a retry cannot fix. 401, 403 and 404 stay
// retryable: they come from configuration (a token, a missing database) that
// an operator fixes while the data waits.
func classify(err error) error {
	var he *ihttp.Error
	if errors.As(err, &he) {
		switch he.StatusCode {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			return fmt.Errorf("write to influxdb: %w: %s", ErrRejected, he.Error())
		}
		return fmt.Errorf("write to influxdb: %s", he.Error())
	}
	return fmt.Errorf("write to influxdb: %w", err)
}

// Ping checks that InfluxDB answers.
func (w *Influx) Ping(ctx context.Context) error {
	ok, err := w.client.Ping(ctx)
	if err != nil {
		return fmt.Errorf("influxdb unreachable: %w", err)
	}
	if !ok {
		return errors.New("influxdb unreachable")
	}
	return nil
}
