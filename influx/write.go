package influx

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/proactivehq/proactive"
)

// ErrRejected marks a write error that a retry of the same batch cannot fix:
// InfluxDB refused the batch for its content (400, 413 or 422), or a point
// could not be encoded as line protocol. Errors wrapping it report
// Permanent() true, which is how a consumer that does not import this
// package (ingest) tells them apart.
var ErrRejected error = rejected{}

type rejected struct{}

func (rejected) Error() string   { return "rejected by influxdb" }
func (rejected) Permanent() bool { return true }

// Write stores a batch: samples go to the telemetry measurement with the
// device_id tag (and model when known), one field per metric; statuses to
// the status measurement; events to the events measurement (see
// encodeEvent); timestamps in milliseconds. The batch is sent in
// one request, without retries: those are the caller's (ingest's), so
// nothing is held or dropped in between. An error wrapping ErrRejected
// means a retry cannot help; any other may succeed later. Writing the same
// batch again is harmless (InfluxDB overwrites identical points).
//
// The encoded body goes through the client's HTTP service (its transport,
// authorization and error parsing) rather than WriteAPIBlocking, whose
// WriteRecord takes the body as a string (a copy of every batch) and gzips
// each batch with a new writer at the default level on a goroutine of its
// own. In BenchmarkWrite (5000 points of five fields a batch) WriteRecord
// cost about 1,100 CPU ns a point plain and 3,400-4,800 gzipped; this path
// about 590 and 860.
func (s *Store) Write(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus, events []proactive.Event) error {
	if len(samples) == 0 && len(statuses) == 0 && len(events) == 0 {
		return nil
	}
	enc, _ := s.encoders.Get().(*lineprotocol.Encoder)
	if enc == nil {
		enc = new(lineprotocol.Encoder)
		enc.SetPrecision(lineprotocol.Millisecond)
		// Device ids and metric names are checked by ingest, models by
		// devices: checking every key and tag again costs half as much
		// again as the encoding.
		enc.SetLax(true)
	}
	defer s.encoders.Put(enc)
	enc.Reset()
	if err := encode(enc, samples, statuses, events); err != nil {
		return fmt.Errorf("write to influxdb: %w: %v", ErrRejected, err)
	}
	body := enc.Bytes()
	if s.gzip {
		gz, _ := s.gzips.Get().(*gzipBuffer)
		if gz == nil {
			gz = new(gzipBuffer)
			gz.w, _ = gzip.NewWriterLevel(&gz.buf, gzip.BestSpeed)
		}
		defer s.gzips.Put(gz)
		gz.buf.Reset()
		gz.w.Reset(&gz.buf)
		_, _ = gz.w.Write(body)
		_ = gz.w.Close()
		body = gz.buf.Bytes()
	}
	herr := s.client.HTTPService().DoPostRequest(ctx, s.writeURL, bytes.NewReader(body), func(req *http.Request) {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		if s.gzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
	}, func(resp *http.Response) error {
		_, _ = io.Copy(io.Discard, resp.Body) // lets the connection be reused
		return resp.Body.Close()
	})
	if herr != nil {
		return classify(herr)
	}
	return nil
}

// gzipBuffer is a gzip writer at BestSpeed (a batch of telemetry is
// repetitive enough that higher levels gain little for their CPU) and the
// buffer it writes to, reused batch after batch.
type gzipBuffer struct {
	buf bytes.Buffer
	w   *gzip.Writer
}

// encode appends the line protocol of the samples, statuses and events to enc,
// tags in key order and an empty model left out (line protocol has no empty
// tag values). It returns the first point that could not be encoded (a
// model with control characters, say); the others are encoded all the same.
func encode(enc *lineprotocol.Encoder, samples []proactive.Sample, statuses []proactive.DeviceStatus, events []proactive.Event) error {
	for _, smp := range samples {
		enc.StartLine(MeasurementTelemetry)
		addTags(enc, smp.Device, smp.Model)
		for k, v := range smp.Metrics {
			fv, ok := lineprotocol.FloatValue(v)
			if !ok {
				return fmt.Errorf("%s of %s at %s is %v", k, smp.Device, smp.Time, v)
			}
			enc.AddField(k, fv)
		}
		enc.EndLine(smp.Time)
	}
	for _, st := range statuses {
		enc.StartLine(MeasurementStatus)
		addTags(enc, st.Device, st.Model)
		enc.AddField("online", lineprotocol.BoolValue(st.Online))
		enc.EndLine(st.Time)
	}
	for _, ev := range events {
		if err := encodeEvent(enc, ev); err != nil {
			return err
		}
	}
	return enc.Err()
}

// encodeEvent appends one event to the events measurement: tags code,
// component (when given), device_id and model (when known), in key order;
// fields n=1i, so that a sum counts events, and text and severity when
// given. Two events of a device with the same code and component in the
// same millisecond are one point. Newlines, tabs and carriage returns in the
// text are stored as spaces: InfluxDB reads no escape for them, and the
// encoder's \n would be stored as a backslash and an n, the same as a text
// that holds those two characters.
func encodeEvent(enc *lineprotocol.Encoder, ev proactive.Event) error {
	enc.StartLine(MeasurementEvents)
	enc.AddTag("code", ev.Code)
	if ev.Component != "" {
		enc.AddTag("component", ev.Component)
	}
	addTags(enc, ev.Device, ev.Model)
	enc.AddField("n", lineprotocol.IntValue(1))
	if ev.Severity != "" {
		v, ok := lineprotocol.StringValue(string(ev.Severity))
		if !ok {
			return fmt.Errorf("severity of %s's event %s at %s is not valid UTF-8", ev.Device, ev.Code, ev.Time)
		}
		enc.AddField("severity", v)
	}
	if ev.Text != "" {
		v, ok := lineprotocol.StringValue(lineBreaks.Replace(ev.Text))
		if !ok {
			return fmt.Errorf("text of %s's event %s at %s is not valid UTF-8", ev.Device, ev.Code, ev.Time)
		}
		enc.AddField("text", v)
	}
	enc.EndLine(ev.Time)
	return nil
}

// lineBreaks turns the white space line protocol cannot carry in a string
// field into spaces.
var lineBreaks = strings.NewReplacer("\n", " ", "\t", " ", "\r", " ")

func addTags(enc *lineprotocol.Encoder, device proactive.DeviceID, model string) {
	enc.AddTag("device_id", string(device))
	if model != "" {
		enc.AddTag("model", model)
	}
}

// classify marks the errors a retry cannot fix. 401, 403 and 404 stay
// retryable: they come from configuration (a token, a missing database) that
// an operator fixes while the data waits.
func classify(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		// The request URL carries no secret but is long.
		return fmt.Errorf("write to influxdb: %w", ue.Err)
	}
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
