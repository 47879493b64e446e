package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"

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
	// Compression of write bodies, default CompressAuto.
	Compression Compression
}

// Compression says whether write bodies are gzipped.
type Compression int

// The compressions of write bodies.
const (
	// CompressAuto sends plain bodies to a loopback address, where bytes
	// cost nothing and gzip only costs CPU on both sides, and gzips them
	// otherwise.
	CompressAuto Compression = iota
	// CompressNone never gzips.
	CompressNone
	// CompressGzip always gzips, at the fastest level: a batch of telemetry
	// is repetitive enough that higher levels gain little for their CPU.
	CompressGzip
)

// Influx writes batches over InfluxDB's v2 write API (which InfluxDB 1.8
// serves too), encoding line protocol itself: the batching and retries are
// the Ingester's, so nothing is held or dropped in between. Queries and
// health checks go through the official client.
type Influx struct {
	client   influxdb2.Client
	http     *http.Client
	writeURL string
	auth     string
	gzip     bool
	bufs     sync.Pool // *bytes.Buffer
	gzips    sync.Pool // *gzip.Writer
}

// NewInflux returns a writer for the given bucket. It does not connect.
func NewInflux(o InfluxOptions) *Influx {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	opts := influxdb2.DefaultOptions().
		SetPrecision(time.Millisecond).
		SetHTTPRequestTimeout(uint(o.Timeout / time.Second)).
		SetLogLevel(0)
	c := influxdb2.NewClientWithOptions(o.URL, o.Token, opts)
	q := url.Values{"org": {o.Org}, "bucket": {o.Bucket}, "precision": {"ms"}}
	w := &Influx{
		client:   c,
		http:     &http.Client{Timeout: o.Timeout},
		writeURL: strings.TrimSuffix(o.URL, "/") + "/api/v2/write?" + q.Encode(),
		gzip:     o.Compression == CompressGzip || o.Compression == CompressAuto && !loopback(o.URL),
	}
	if o.Token != "" {
		w.auth = "Token " + o.Token
	}
	return w
}

// loopback reports whether rawURL names this machine.
func loopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// Client returns the underlying client, for queries.
func (w *Influx) Client() influxdb2.Client { return w.client }

// Close releases idle connections.
func (w *Influx) Close() {
	w.http.CloseIdleConnections()
	w.client.Close()
}

// Write implements Writer: samples go to the telemetry measurement with the
// device_id tag (and model when known), one field per metric; statuses to the
// status measurement. It may be called from several goroutines.
func (w *Influx) Write(ctx context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus) error {
	lp, _ := w.bufs.Get().(*bytes.Buffer)
	if lp == nil {
		lp = new(bytes.Buffer)
	}
	defer w.bufs.Put(lp)
	lp.Reset()
	lp.Write(appendLines(lp.AvailableBuffer(), samples, statuses))
	body := lp
	if w.gzip {
		gz, _ := w.bufs.Get().(*bytes.Buffer)
		if gz == nil {
			gz = new(bytes.Buffer)
		}
		defer w.bufs.Put(gz)
		gz.Reset()
		zw, _ := w.gzips.Get().(*gzip.Writer)
		if zw == nil {
			zw, _ = gzip.NewWriterLevel(gz, gzip.BestSpeed)
		} else {
			zw.Reset(gz)
		}
		_, _ = zw.Write(lp.Bytes())
		_ = zw.Close()
		w.gzips.Put(zw)
		body = gz
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.writeURL, bytes.NewReader(body.Bytes()))
	if err != nil {
		return fmt.Errorf("write to influxdb: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if w.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if w.auth != "" {
		req.Header.Set("Authorization", w.auth)
	}
	resp, err := w.http.Do(req)
	if err != nil {
		return fmt.Errorf("write to influxdb: %w", redactURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, resp.Body) // lets the connection be reused
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return classify(&ihttp.Error{StatusCode: resp.StatusCode, Code: "HTTP " + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(msg))})
}

// redactURLError keeps the request URL, which carries no secret but is
// long, out of transport errors.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// appendLines appends the line protocol of the samples and statuses to b,
// with millisecond timestamps.
func appendLines(b []byte, samples []proactive.Sample, statuses []proactive.DeviceStatus) []byte {
	for _, s := range samples {
		b = append(b, MeasurementTelemetry...)
		b = appendTags(b, s.Device, s.Model)
		sep := byte(' ')
		for k, v := range s.Metrics {
			b = append(b, sep)
			b = appendEscaped(b, k)
			b = append(b, '=')
			b = strconv.AppendFloat(b, v, 'f', -1, 64)
			sep = ','
		}
		b = append(b, ' ')
		b = strconv.AppendInt(b, s.Time.UnixMilli(), 10)
		b = append(b, '\n')
	}
	for _, s := range statuses {
		b = append(b, MeasurementStatus...)
		b = appendTags(b, s.Device, s.Model)
		b = append(b, " online="...)
		b = strconv.AppendBool(b, s.Online)
		b = append(b, ' ')
		b = strconv.AppendInt(b, s.Time.UnixMilli(), 10)
		b = append(b, '\n')
	}
	return b
}

// appendTags appends the tags in key order, leaving out an empty model
// (line protocol has no empty tag values).
func appendTags(b []byte, device proactive.DeviceID, model string) []byte {
	b = append(b, ",device_id="...)
	b = appendEscaped(b, string(device))
	if model != "" {
		b = append(b, ",model="...)
		b = appendEscaped(b, model)
	}
	return b
}

// appendEscaped appends a tag key, tag value or field key with the
// characters line protocol gives a meaning escaped, as the official client
// does. Device ids and metric names never need it; models may.
func appendEscaped(b []byte, s string) []byte {
	if !strings.ContainsAny(s, lineEscapes) {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\t':
			b = append(b, `\t`...)
		case '\n':
			b = append(b, `\n`...)
		case '\f':
			b = append(b, `\f`...)
		case '\r':
			b = append(b, `\r`...)
		case ',', ' ', '=':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return b
}

const lineEscapes = "\t\n\f\r ,="

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
