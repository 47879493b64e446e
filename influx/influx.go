// Package influx is the one place that speaks to InfluxDB: it writes
// telemetry batches as line protocol, reads a device's telemetry back for the
// API and the page, and streams stored history for rule rebuilds and
// backtests. Everything else declares the small interface it needs and is
// handed a *Store by cmd/proactive.
//
// Writes go to the v2 write API, encoded with
// github.com/influxdata/line-protocol/v2; reads are InfluxQL over the v1
// /query API. InfluxDB 1.8, 2.x and 3.x serve both, and no read needs Flux,
// which 3.x lacks. Both, and the health check, go through the HTTP service
// of the official client, github.com/influxdata/influxdb-client-go/v2.
package influx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
)

// Measurement names in InfluxDB.
const (
	MeasurementTelemetry = "telemetry"
	MeasurementStatus    = "status"
	MeasurementEvents    = "events"
)

// Options locate the InfluxDB bucket. Writes name it as the bucket; reads
// split it into database and retention policy at its first "/" ("telemetry"
// is database telemetry with its default retention policy). For InfluxDB
// 1.8 the bucket is "database/retention_policy", the token "user:password"
// or empty, and the org is ignored; for 2.x reads need a DBRP mapping of the
// database (and policy) to the bucket; for 3.x the bucket is the database.
// Zero fields get the defaults given on each.
type Options struct {
	URL, Token, Org, Bucket string
	// Timeout bounds one write request, default 10s. A query gets it for
	// its response to start and then for each pause in its streamed
	// result: a rebuild reading a large fleet's history for minutes is not
	// cut short, one that stalls is.
	Timeout time.Duration
	// Compression of write bodies, default CompressAuto.
	Compression Compression
	// LatestLookback is how far back Latest looks for a metric's last value,
	// default 30 days: a metric silent for longer is left out.
	LatestLookback time.Duration
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

// Store reads and writes the telemetry of one bucket. Its methods may be
// called from several goroutines.
type Store struct {
	client   influxdb2.Client
	writeURL string
	queryURL string
	gzip     bool
	lookback time.Duration
	// query is the HTTP client of /query: no overall timeout (see
	// Options.Timeout), authorization added per request.
	query        *http.Client
	queryTimeout time.Duration
	auth         string
	encoders     sync.Pool // *lineprotocol.Encoder, reused batch after batch
	gzips        sync.Pool // *gzipBuffer
}

// New returns a store for the given bucket. It does not connect.
func New(o Options) *Store {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.LatestLookback <= 0 {
		o.LatestLookback = 30 * 24 * time.Hour
	}
	gzip := o.Compression == CompressGzip || o.Compression == CompressAuto && !loopback(o.URL)
	opts := influxdb2.DefaultOptions().
		SetPrecision(time.Millisecond).
		SetHTTPRequestTimeout(uint(max(o.Timeout/time.Second, 1))).
		SetLogLevel(0)
	c := influxdb2.NewClientWithOptions(o.URL, o.Token, opts)
	q := url.Values{"org": {o.Org}, "bucket": {o.Bucket}, "precision": {"ms"}}
	return &Store{
		client:   c,
		writeURL: c.HTTPService().ServerAPIURL() + "write?" + q.Encode(),
		queryURL: queryURL(c.ServerURL(), o.Bucket),
		gzip:     gzip,
		lookback: o.LatestLookback,
		query: &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: o.Timeout, MaxIdleConnsPerHost: 4,
			IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: o.Timeout,
		}},
		queryTimeout: o.Timeout,
		auth:         authorization(o.Token),
	}
}

// authorization is the Authorization header for token: "Token" for 2.x and
// 3.x and for 1.8's "user:password" alike, which 1.8 takes in that form
// too; none without a token.
func authorization(token string) string {
	if token == "" {
		return ""
	}
	return "Token " + token
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

// Close releases idle connections.
func (s *Store) Close() {
	s.client.Close()
	s.query.CloseIdleConnections()
}

// Ping checks that InfluxDB answers.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.client.Ping(ctx)
	if err != nil {
		return fmt.Errorf("influxdb unreachable: %w", err)
	}
	if !ok {
		return errors.New("influxdb unreachable")
	}
	return nil
}
