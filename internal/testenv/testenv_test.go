package testenv_test

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
)

// writeV2 posts line protocol the way the platform's client does: the v2 write API,
// bucket telemetry/autogen, millisecond precision, a "user:password" token.
func writeV2(tb testing.TB, s *testenv.InfluxServer, lines ...string) {
	tb.Helper()
	u := s.URL() + "/api/v2/write?" + url.Values{"bucket": {s.Bucket()}, "precision": {"ms"}}.Encode()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, u, strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Token user:password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("write: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		tb.Fatalf("write: %s, want 204", resp.Status)
	}
}

// twoPoints returns line protocol for two points a minute apart, ending a minute ago,
// and the points Points should read back.
func twoPoints() ([]string, []testenv.Point) {
	t1 := time.Now().Add(-2 * time.Minute).Truncate(time.Millisecond).UTC()
	t2 := t1.Add(time.Minute + 7*time.Millisecond)
	lines := []string{
		fmt.Sprintf("telemetry,device_id=fridge-1,model=fridge-a compressor_current=5.2,cabinet_temp=4.1 %d", t1.UnixMilli()),
		fmt.Sprintf("telemetry,device_id=boiler-7 flow_temp=61.5,door_open=true %d", t2.UnixMilli()),
	}
	want := []testenv.Point{
		{Time: t1, Tags: map[string]string{"device_id": "fridge-1", "model": "fridge-a"},
			Fields: map[string]float64{"compressor_current": 5.2, "cabinet_temp": 4.1}},
		{Time: t2, Tags: map[string]string{"device_id": "boiler-7"},
			Fields: map[string]float64{"flow_temp": 61.5, "door_open": 1}},
	}
	return lines, want
}

func checkPoints(tb testing.TB, got, want []testenv.Point) {
	tb.Helper()
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("Points:\n got %+v\nwant %+v", got, want)
	}
}

// TestInflux checks the platform's configuration: v2 writes, reads back through the
// InfluxQL helpers, and Flux off.
func TestInflux(t *testing.T) {
	t.Parallel()
	s := testenv.Influx(t)
	lines, want := twoPoints()
	writeV2(t, s, lines...)

	checkPoints(t, s.Points(t, "telemetry"), want)
	if n := s.Count(t, "telemetry"); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
	if n := s.Count(t, "no_such_measurement"); n != 0 {
		t.Errorf("Count(no_such_measurement) = %d, want 0", n)
	}
	got := s.Query(t, `SELECT compressor_current FROM telemetry WHERE device_id = 'fridge-1'`)
	wantSeries := []testenv.Series{{Name: "telemetry", Columns: []string{"time", "compressor_current"},
		Values: [][]any{{want[0].Time, 5.2}}}}
	if !reflect.DeepEqual(got, wantSeries) {
		t.Errorf("Query:\n got %+v\nwant %+v", got, wantSeries)
	}

	// Flux is off, as InfluxDB 3 has none: the platform reads only in InfluxQL,
	// and a Flux read fails.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/api/v2/query",
		strings.NewReader(`from(bucket:"telemetry/autogen") |> range(start:-1h)`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.flux")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("flux query: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("flux query: %s, want it refused (flux-enabled = false)", resp.Status)
	}
}

// TestInfluxRestart stops and restarts a server on the same port and data, and reads
// a result larger than one chunk.
func TestInfluxRestart(t *testing.T) {
	t.Parallel()
	s := testenv.Influx(t)
	lines, want := twoPoints()
	writeV2(t, s, lines...)
	checkPoints(t, s.Points(t, "telemetry"), want)

	base := s.URL()
	s.Stop(t)
	if resp, err := http.Get(base + "/ping"); err == nil {
		resp.Body.Close()
		t.Fatalf("GET /ping after Stop: %s, want connection refused", resp.Status)
	}
	s.Stop(t) // stopping twice is harmless
	s.Start(t)
	if s.URL() != base {
		t.Errorf("URL after restart = %s, want %s", s.URL(), base)
	}
	checkPoints(t, s.Points(t, "telemetry"), want)

	third := want[1].Time.Add(time.Second)
	s.Write(t, fmt.Sprintf("telemetry,device_id=fridge-1 compressor_current=5.3 %d", third.UnixMilli()))
	want = append(want, testenv.Point{Time: third, Tags: map[string]string{"device_id": "fridge-1"},
		Fields: map[string]float64{"compressor_current": 5.3}})
	checkPoints(t, s.Points(t, "telemetry"), want)

	// 25,000 points span three response chunks of 10,000 rows.
	const n = 25000
	var b strings.Builder
	start := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range n {
		fmt.Fprintf(&b, "bulk,device_id=d%d v=%d %d\n", i%3, i, start.Add(time.Duration(i)*time.Millisecond).UnixMilli())
	}
	s.Write(t, b.String())
	if got := s.Count(t, "bulk"); got != n {
		t.Errorf("Count(bulk) = %d, want %d", got, n)
	}
	pts := s.Points(t, "bulk")
	if len(pts) != n {
		t.Fatalf("len(Points(bulk)) = %d, want %d", len(pts), n)
	}
	for i, p := range pts {
		if p.Fields["v"] != float64(i) || p.Tags["device_id"] != fmt.Sprintf("d%d", i%3) {
			t.Fatalf("Points(bulk)[%d] = %+v, want v=%d device_id=d%d", i, p, i, i%3)
		}
	}
	series := s.Query(t, `SELECT v FROM bulk WHERE device_id = 'd0'`)
	if len(series) != 1 || len(series[0].Values) != (n+2)/3 {
		t.Errorf("Query(bulk d0): %d series, want 1 with %d rows", len(series), (n+2)/3)
	}
}

// recordingTB stands in for a testing.TB to observe Fatalf and Skipf without
// stopping the test.
type recordingTB struct {
	testing.TB
	fatal, skip string
}

func (r *recordingTB) Helper()                        {}
func (r *recordingTB) Fatalf(format string, a ...any) { r.fatal = fmt.Sprintf(format, a...) }
func (r *recordingTB) Skipf(format string, a ...any)  { r.skip = fmt.Sprintf(format, a...) }

// TestMissingService checks that an absent service fails under CI=true and skips
// otherwise, with the message saying what to do.
func TestMissingService(t *testing.T) {
	closed := testenv.FreeAddr(t) // nothing listens there
	for _, ci := range []string{"true", ""} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			t.Setenv("PROACTIVE_INFLUXD", "/nonexistent/influxd")
			t.Setenv("PROACTIVE_TEST_MOSQUITTO", closed)
			for _, c := range []struct {
				name, want string
				use        func(testing.TB)
			}{
				{"influx", "influxd not found at /nonexistent/influxd: run `make bin/influxd`",
					func(tb testing.TB) { testenv.Influx(tb) }},
				{"mosquitto", "no MQTT broker at " + closed,
					func(tb testing.TB) { testenv.Mosquitto(tb) }},
			} {
				rec := &recordingTB{TB: t}
				c.use(rec)
				got, other := rec.skip, rec.fatal
				if ci == "true" {
					got, other = rec.fatal, rec.skip
				}
				if !strings.Contains(got, c.want) || other != "" {
					t.Errorf("%s: fatal %q, skip %q; want the other one empty and this one to contain %q",
						c.name, rec.fatal, rec.skip, c.want)
				}
			}
		})
	}
}

// TestMosquitto connects to the local broker.
func TestMosquitto(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testenv.Mosquitto(t))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", u.Host, err)
	}
	conn.Close()
}

// TestMosquittoOverride checks the forms PROACTIVE_TEST_MOSQUITTO takes.
func TestMosquittoOverride(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	for env, want := range map[string]string{
		addr:                  "tcp://" + addr,
		"tcp://" + addr:       "tcp://" + addr,
		"mqtt://" + addr:      "mqtt://" + addr,
		"mqtt://user@" + addr: "mqtt://user@" + addr,
	} {
		t.Setenv("PROACTIVE_TEST_MOSQUITTO", env)
		if got := testenv.Mosquitto(t); got != want {
			t.Errorf("PROACTIVE_TEST_MOSQUITTO=%s: Mosquitto = %q, want %q", env, got, want)
		}
	}
}

func TestFreeAddr(t *testing.T) {
	addr := testenv.FreeAddr(t)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on FreeAddr %s: %v", addr, err)
	}
	l.Close()
}
