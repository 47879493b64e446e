package testenv

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	influxDatabase = "telemetry"
	influxBucket   = influxDatabase + "/autogen"

	// influxStartTimeout is generous because `go test ./...` may start many influxd
	// at once on a loaded machine.
	influxStartTimeout = 60 * time.Second
	influxStopTimeout  = 10 * time.Second
)

// InfluxOptions tunes the influxd that InfluxWith starts. The zero value is the
// configuration of scripts/influxdb.sh, which the platform runs against.
//
// Flux is off in every influxd started here (flux-enabled = false), as in
// scripts/influxdb.sh: the platform reads only in InfluxQL, which InfluxDB 1.8, 2.x
// and 3.x all serve, so a read that still needed Flux fails its tests.
type InfluxOptions struct {
	// Deprecated: Flux is always off; DisableFlux changes nothing.
	DisableFlux bool
}

// InfluxServer is a throwaway InfluxDB OSS 1.8 started by Influx or InfluxWith, with
// database "telemetry" created, listening on 127.0.0.1 only, with auth off (the v2
// API takes an empty token or any "user:password").
//
// URL, Bucket, Write, Query, Points and Count may be called from several goroutines;
// Stop and Start may not run concurrently with anything else.
type InfluxServer struct {
	bin     string
	dir     string // config, data, wal, meta and influxd.log
	port    int
	opts    InfluxOptions
	client  *http.Client
	running *influxProcess // nil when stopped
}

// influxProcess is one run of influxd.
type influxProcess struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait has returned
}

// Influx starts influxd with the platform's configuration (Flux off) in tb.TempDir()
// on a free port, waits until it answers /ping, creates database "telemetry" and
// registers a cleanup that stops it. The binary is $PROACTIVE_INFLUXD or
// <repo root>/bin/influxd; if it is missing, Influx calls RequireService.
func Influx(tb testing.TB) *InfluxServer {
	tb.Helper()
	return InfluxWith(tb, InfluxOptions{})
}

// InfluxWith is Influx with options.
func InfluxWith(tb testing.TB, opts InfluxOptions) *InfluxServer {
	tb.Helper()
	bin, err := influxdPath()
	if err != nil {
		tb.Fatalf("locate influxd: %v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		RequireService(tb, "influxd", fmt.Sprintf("influxd not found at %s: run `make bin/influxd`", bin))
		return nil
	}
	s := &InfluxServer{
		bin:    bin,
		dir:    tb.TempDir(), // registered before the stop cleanup, so removed after it
		opts:   opts,
		client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
	tb.Cleanup(func() {
		if err := s.stop(); err != nil {
			tb.Errorf("stop influxd: %v", err)
		}
		if tb.Failed() {
			// The temp dir, log included, is about to be removed.
			tb.Logf("last lines of influxd.log:\n%s", s.logTail(30))
		}
	})

	// FreePort races with every other process picking ports, parallel test binaries
	// starting their own influxd included; on a lost race pick another port.
	const attempts = 3
	for i := 1; ; i++ {
		s.port = FreePort(tb)
		took, err := s.start()
		if err == nil {
			tb.Logf("influxd ready at %s in %v", s.URL(), took.Round(time.Millisecond))
			break
		}
		if i == attempts || !errors.Is(err, errPortTaken) {
			tb.Fatalf("start influxd: %v\n%s", err, s.logTail(20))
		}
	}
	s.exec(tb, "CREATE DATABASE "+influxDatabase)
	return s
}

// URL returns the base URL of the HTTP API, such as "http://127.0.0.1:41234".
func (s *InfluxServer) URL() string {
	return "http://127.0.0.1:" + strconv.Itoa(s.port)
}

// Bucket returns the v2 API bucket of the telemetry database: "telemetry/autogen".
func (s *InfluxServer) Bucket() string {
	return influxBucket
}

// Stop stops influxd (SIGTERM, then SIGKILL after 10 s) and keeps its data, so that
// Start can bring the same server back. Stopping a stopped server does nothing.
func (s *InfluxServer) Stop(tb testing.TB) {
	tb.Helper()
	if err := s.stop(); err != nil {
		tb.Fatalf("stop influxd: %v", err)
	}
}

// Start starts a stopped server again on the same port and data, and waits until it
// answers /ping. It fails the test if the server is running or cannot start (for
// example because another process took the port meanwhile).
func (s *InfluxServer) Start(tb testing.TB) {
	tb.Helper()
	if s.running != nil {
		tb.Fatalf("start influxd: already running at %s", s.URL())
	}
	took, err := s.start()
	if err != nil {
		tb.Fatalf("start influxd again: %v\n%s", err, s.logTail(20))
	}
	tb.Logf("influxd ready again at %s in %v", s.URL(), took.Round(time.Millisecond))
}

// Write writes line protocol with millisecond timestamps to the telemetry bucket
// through the v2 write API, as the platform does, and fails the test unless
// InfluxDB accepts every line.
func (s *InfluxServer) Write(tb testing.TB, lineProtocol string) {
	tb.Helper()
	u := s.URL() + "/api/v2/write?" + url.Values{"bucket": {influxBucket}, "precision": {"ms"}}.Encode()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, u, strings.NewReader(lineProtocol))
	if err != nil {
		tb.Fatalf("write to influx: %v", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := s.client.Do(req)
	if err != nil {
		tb.Fatalf("write to influx: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		body, _ := io.ReadAll(resp.Body)
		tb.Fatalf("write to influx: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
}

// Series is one series of an InfluxQL result.
type Series struct {
	Name    string
	Tags    map[string]string // set with GROUP BY
	Columns []string
	// Values holds the rows. In the "time" column a value is a time.Time (UTC,
	// millisecond precision); elsewhere numbers are float64, and strings, bools and
	// nil (no value) are as InfluxDB sent them.
	Values [][]any
}

// Query runs InfluxQL statements against database "telemetry" and returns the series
// of all of them, in order. It reads the response in chunks, so results of millions
// of rows are fine, and fails the test on any error InfluxDB reports.
func (s *InfluxServer) Query(tb testing.TB, influxQL string) []Series {
	tb.Helper()
	var out []Series
	lastStmt := -1
	s.stream(tb, influxQL, func(stmt int, rs *rawSeries) {
		// Chunking splits a long series over several chunks: join them again.
		if n := len(out); n > 0 && stmt == lastStmt && out[n-1].Name == rs.Name &&
			maps.Equal(out[n-1].Tags, rs.Tags) && slices.Equal(out[n-1].Columns, rs.Columns) {
			out[n-1].Values = append(out[n-1].Values, convertRows(rs)...)
			return
		}
		lastStmt = stmt
		out = append(out, Series{Name: rs.Name, Tags: rs.Tags, Columns: rs.Columns, Values: convertRows(rs)})
	})
	return out
}

// Point is one stored point of a measurement: its timestamp, tag set and fields.
type Point struct {
	Time   time.Time // UTC, millisecond precision
	Tags   map[string]string
	Fields map[string]float64 // booleans read as 1 and 0
}

// Points returns every point of measurement (at any time), ordered by time and then
// by tag set, so a test can compare each value and timestamp with what it sent. It
// streams `SELECT * FROM measurement GROUP BY *`, which handles 100k+ points, and
// fails the test if a field holds a string.
func (s *InfluxServer) Points(tb testing.TB, measurement string) []Point {
	tb.Helper()
	type keyed struct {
		Point
		key string // series key, for a stable order within one timestamp
	}
	var pts []keyed
	s.stream(tb, selectAll(measurement), func(_ int, rs *rawSeries) {
		tags := make(map[string]string, len(rs.Tags))
		for k, v := range rs.Tags {
			if v != "" { // GROUP BY * reports keys absent from this series as ""
				tags[k] = v
			}
		}
		key := seriesKey(tags)
		for _, row := range rs.Values {
			p := keyed{key: key, Point: Point{Tags: maps.Clone(tags), Fields: make(map[string]float64, len(row)-1)}}
			for i, v := range row {
				col := rs.Columns[i]
				if col == "time" {
					p.Time = msTime(tb, v)
					continue
				}
				switch v := v.(type) {
				case nil: // the field has no value at this timestamp
				case json.Number:
					f, err := v.Float64()
					if err != nil {
						tb.Fatalf("%s field %s: %v", measurement, col, err)
					}
					p.Fields[col] = f
				case bool:
					p.Fields[col] = 0
					if v {
						p.Fields[col] = 1
					}
				default:
					tb.Fatalf("%s field %s holds %T %v, want a number", measurement, col, v, v)
				}
			}
			pts = append(pts, p)
		}
	})
	slices.SortStableFunc(pts, func(a, b keyed) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.key, b.key))
	})
	out := make([]Point, len(pts))
	for i, p := range pts {
		out[i] = p.Point
	}
	return out
}

// Count returns how many points measurement holds: rows of distinct tag set and
// timestamp, which is what InfluxDB stores one write of a device's metrics as. Unlike
// `SELECT count(*)`, which counts per field, it does not depend on which fields each
// point has. It streams the data, so it costs about as much as Points without the
// memory.
func (s *InfluxServer) Count(tb testing.TB, measurement string) int {
	tb.Helper()
	n := 0
	s.stream(tb, selectAll(measurement), func(_ int, rs *rawSeries) {
		n += len(rs.Values)
	})
	return n
}

// errPortTaken means influxd exited at startup because its HTTP port was in use.
var errPortTaken = errors.New("port taken")

// start writes the configuration for s.port, starts influxd and waits for /ping. It
// returns how long influxd took to answer.
func (s *InfluxServer) start() (time.Duration, error) {
	conf := filepath.Join(s.dir, "influxd.conf")
	if err := os.WriteFile(conf, []byte(s.config()), 0o644); err != nil {
		return 0, err
	}
	logFile, err := os.OpenFile(filepath.Join(s.dir, "influxd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logFile.Close() // influxd has its own copy

	cmd := exec.Command(s.bin, "run", "-config", conf)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// INFLUXDB_* variables override the config file; keep the test hermetic.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INFLUXDB_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	setProcAttr(cmd)
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	p := &influxProcess{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // the exit status says nothing the log doesn't
		close(p.exited)
	}()
	s.running = p

	ping := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(influxStartTimeout)
	for {
		resp, err := ping.Get(s.URL() + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return time.Since(began), nil
			}
		}
		select {
		case <-p.exited:
			s.running = nil
			if strings.Contains(s.logTail(5), "address already in use") {
				return 0, fmt.Errorf("influxd exited: %w", errPortTaken)
			}
			return 0, errors.New("influxd exited during startup")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			err := fmt.Errorf("influxd did not answer %s/ping within %v", s.URL(), influxStartTimeout)
			return 0, errors.Join(err, s.stop())
		}
	}
}

// stop ends the running influxd, if any, and waits for it to exit.
func (s *InfluxServer) stop() error {
	p := s.running
	if p == nil {
		return nil
	}
	s.running = nil
	// Connections kept alive to this process are dead after it; a POST on one would
	// fail instead of being retried.
	defer s.client.CloseIdleConnections()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(influxStopTimeout):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.exited
	return fmt.Errorf("influxd ignored SIGTERM for %v and was killed", influxStopTimeout)
}

// config returns the influxd configuration: the choices of scripts/influxdb.sh, in
// s.dir and on s.port.
func (s *InfluxServer) config() string {
	q := strconv.Quote
	return fmt.Sprintf(`reporting-disabled = true
# The RPC (backup) service cannot be turned off; let the kernel pick its port.
bind-address = "127.0.0.1:0"

[meta]
  dir = %s

[data]
  dir = %s
  wal-dir = %s
  query-log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[http]
  bind-address = "127.0.0.1:%d"
  flux-enabled = false
  log-enabled = false

[logging]
  suppress-logo = true
`, q(filepath.Join(s.dir, "meta")), q(filepath.Join(s.dir, "data")), q(filepath.Join(s.dir, "wal")),
		s.port)
}

// logTail returns the last n lines of influxd.log, for failure messages.
func (s *InfluxServer) logTail(n int) string {
	b, err := os.ReadFile(filepath.Join(s.dir, "influxd.log"))
	if err != nil {
		return "(no influxd.log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// exec runs an InfluxQL statement that returns no rows, such as CREATE DATABASE.
func (s *InfluxServer) exec(tb testing.TB, stmt string) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, s.URL()+"/query",
		strings.NewReader(url.Values{"q": {stmt}}.Encode()))
	if err != nil {
		tb.Fatalf("influx %s: %v", stmt, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		tb.Fatalf("influx %s: %v", stmt, err)
	}
	defer resp.Body.Close()
	var r queryResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		tb.Fatalf("influx %s: %s: %v", stmt, resp.Status, err)
	}
	if err := r.err(); err != nil {
		tb.Fatalf("influx %s: %v", stmt, err)
	}
}

// queryResponse is one JSON object of a /query response; a chunked response is a
// stream of them.
type queryResponse struct {
	Results []struct {
		StatementID int         `json:"statement_id"`
		Series      []rawSeries `json:"series"`
		Error       string      `json:"error"`
	} `json:"results"`
	Error string `json:"error"`
}

func (r *queryResponse) err() error {
	if r.Error != "" {
		return errors.New(r.Error)
	}
	for _, res := range r.Results {
		if res.Error != "" {
			return fmt.Errorf("statement %d: %s", res.StatementID, res.Error)
		}
	}
	return nil
}

// rawSeries is a series as decoded with json.Decoder.UseNumber.
type rawSeries struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// stream runs a query with chunked results and calls fn for each piece of a series,
// in order, without holding the whole result in memory.
func (s *InfluxServer) stream(tb testing.TB, influxQL string, fn func(stmt int, rs *rawSeries)) {
	tb.Helper()
	params := url.Values{
		"db": {influxDatabase}, "q": {influxQL}, "epoch": {"ms"},
		"chunked": {"true"}, "chunk_size": {"10000"},
	}
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, s.URL()+"/query?"+params.Encode(), nil)
	if err != nil {
		tb.Fatalf("influx query %q: %v", influxQL, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		tb.Fatalf("influx query %q: %v", influxQL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		tb.Fatalf("influx query %q: %s: %s", influxQL, resp.Status, bytes.TrimSpace(body))
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber() // keep millisecond timestamps and integers exact
	for {
		var r queryResponse
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			tb.Fatalf("influx query %q: decode response: %v", influxQL, err)
		}
		if err := r.err(); err != nil {
			tb.Fatalf("influx query %q: %v", influxQL, err)
		}
		for _, res := range r.Results {
			for i := range res.Series {
				fn(res.StatementID, &res.Series[i])
			}
		}
	}
}

// convertRows turns decoded rows into the values Series documents.
func convertRows(rs *rawSeries) [][]any {
	rows := make([][]any, len(rs.Values))
	for i, row := range rs.Values {
		out := make([]any, len(row))
		for j, v := range row {
			n, ok := v.(json.Number)
			switch {
			case !ok:
				out[j] = v
			case rs.Columns[j] == "time":
				if ms, err := n.Int64(); err == nil {
					out[j] = time.UnixMilli(ms).UTC()
				} else {
					out[j] = v
				}
			default:
				if f, err := n.Float64(); err == nil {
					out[j] = f
				} else {
					out[j] = v
				}
			}
		}
		rows[i] = out
	}
	return rows
}

// msTime converts a time column value of an epoch=ms result.
func msTime(tb testing.TB, v any) time.Time {
	tb.Helper()
	n, ok := v.(json.Number)
	if !ok {
		tb.Fatalf("influx time column holds %T %v, want milliseconds", v, v)
	}
	ms, err := n.Int64()
	if err != nil {
		tb.Fatalf("influx time column: %v", err)
	}
	return time.UnixMilli(ms).UTC()
}

// selectAll returns the query behind Points and Count.
func selectAll(measurement string) string {
	return "SELECT * FROM " + quoteIdent(measurement) + " GROUP BY *"
}

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// seriesKey renders a tag set in a canonical order.
func seriesKey(tags map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(tags[k])
		b.WriteByte(',')
	}
	return b.String()
}

// influxdPath returns $PROACTIVE_INFLUXD or <repo root>/bin/influxd.
func influxdPath() (string, error) {
	if p := os.Getenv("PROACTIVE_INFLUXD"); p != "" {
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "influxd"), nil
}
