package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/proactivehq/proactive/internal/testenv"
)

// TestMain lets a test start the platform as a child process (the test binary
// itself), so that it can be killed with SIGKILL mid-stream.
func TestMain(m *testing.M) {
	if os.Getenv("PROACTIVE_TEST_SUBPROCESS") == "main" {
		os.Args = append([]string{"proactive"}, strings.Fields(os.Getenv("PROACTIVE_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	if os.Getenv("PROACTIVE_TEST_SUBPROCESS") == "simulate" {
		args := append([]string{"proactive", "simulate"}, strings.Fields(os.Getenv("PROACTIVE_TEST_ARGS"))...)
		if err := run(context.Background(), args, os.Getenv, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "simulate:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv("PROACTIVE_TEST_SUBPROCESS") == "serve" {
		// BenchmarkIngest's BENCH_CPUPROFILE: the profile is written once
		// serve returns (on SIGTERM).
		if path := os.Getenv("PROACTIVE_TEST_CPUPROFILE"); path != "" {
			f, err := os.Create(path)
			if err == nil {
				err = pprof.StartCPUProfile(f)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "cpu profile:", err)
				os.Exit(1)
			}
			defer pprof.StopCPUProfile()
		}
		// And its allocations, sampled every 4 KiB, written at the end too.
		memPath := os.Getenv("PROACTIVE_TEST_MEMPROFILE")
		if memPath != "" {
			runtime.MemProfileRate = 4096
		}
		err := run(context.Background(), []string{"proactive", "serve"}, os.Getenv, os.Stdout, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			pprof.StopCPUProfile()
			os.Exit(1)
		}
		pprof.StopCPUProfile()
		if memPath != "" {
			if f, err := os.Create(memPath); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// platform is a running `proactive serve`, in process or as a child.
type platform struct {
	http string
	logs *testenv.Buffer
	// in process
	cancel context.CancelFunc
	done   chan error
	// child
	cmd *exec.Cmd
}

func baseEnv(t testing.TB, influx *testenv.InfluxServer) map[string]string {
	return map[string]string{
		"PROACTIVE_INFLUX_URL":    influx.URL(),
		"PROACTIVE_INFLUX_BUCKET": influx.Bucket(),
		"PROACTIVE_HTTP_ADDR":     testenv.FreeAddr(t),
		"PROACTIVE_LOG_FORMAT":    "json",
		"PROACTIVE_LOG_LEVEL":     "info",
		"PROACTIVE_DB":            t.TempDir() + "/proactive.db",
		// Not the default data/ in the package directory, shared by tests.
		"PROACTIVE_RULES_SNAPSHOT_PATH": t.TempDir() + "/rules.snapshot",
		// Offers at once: the tests of notify.group_wait set it.
		"PROACTIVE_NOTIFY_GROUP_WAIT": "0s",
	}
}

// startServe runs `proactive serve` in this process and waits for /healthz.
func startServe(t *testing.T, env map[string]string) *platform {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &platform{http: env["PROACTIVE_HTTP_ADDR"], logs: &testenv.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		p.done <- run(ctx, []string{"proactive", "serve"}, func(k string) string { return env[k] }, io.Discard, p.logs)
	}()
	t.Cleanup(func() { p.stop(t) })
	p.waitHealthy(t)
	return p
}

// stop ends an in-process platform and returns run's error.
func (p *platform) stop(t *testing.T) error {
	t.Helper()
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop within 30s; logs:\n%s", p.logs.String())
		return nil
	}
}

// startChild runs `proactive serve` as a child process.
func startChild(t testing.TB, env map[string]string) *platform {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PROACTIVE_TEST_SUBPROCESS=serve")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &platform{http: env["PROACTIVE_HTTP_ADDR"], logs: &testenv.Buffer{}, cmd: cmd}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	p.waitHealthy(t)
	return p
}

func (p *platform) waitHealthy(t testing.TB) {
	t.Helper()
	testenv.Eventually(t, 0, func() error {
		if code, body := get(p.http, "/healthz"); code != http.StatusOK {
			return fmt.Errorf("/healthz answered %d %s; logs:\n%s", code, body, p.logs.String())
		}
		return nil
	})
}

func (p *platform) waitReady(t testing.TB) {
	t.Helper()
	testenv.Eventually(t, 0, func() error {
		if code, body := get(p.http, "/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz answered %d %s; logs:\n%s", code, body, p.logs.String())
		}
		return nil
	})
}

func get(addr, path string) (int, string) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric reads one sample from /metrics, such as
// `proactive_ingest_dead_letters_total{reason="not_json"}`.
func metric(t testing.TB, addr, series string) float64 {
	t.Helper()
	code, body := get(addr, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not in /metrics", series)
	return 0
}

// kill ends a child with SIGKILL: nothing is flushed or acknowledged.
func (p *platform) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// terminate sends SIGTERM and waits for a clean exit.
func (p *platform) terminate(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM; logs:\n%s", err, p.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not exit within 30s of SIGTERM; logs:\n%s", p.logs.String())
	}
}

// device is an MQTT client standing for a device, or for a fleet of them.
func device(t *testing.T, broker, clientID string, persistent bool) paho.Client {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetCleanSession(!persistent).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(500 * time.Millisecond).
		SetWriteTimeout(5 * time.Second).SetOrderMatters(false)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s to %s: %v", clientID, broker, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c paho.Client, topic string, payload string) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("publish to %s: %v", topic, tok.Error())
	}
}

// want is a point the test expects in InfluxDB, keyed by device and time.
type want map[string]map[string]float64

func pointKey(dev string, ts time.Time) string { return dev + "@" + ts.UTC().Format(time.RFC3339Nano) }

// fixture publishes good and bad telemetry for three devices and returns the
// points that must be stored and the dead letters expected by reason.
func fixture(t *testing.T, c paho.Client, prefix string) (want, map[string]float64) {
	t.Helper()
	w := want{}
	base := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for d := range 3 {
		dev := fmt.Sprintf("fridge-%03d", d)
		topic := prefix + "/" + dev + "/telemetry"
		for i := range 10 {
			ts := base.Add(time.Duration(d*100+i) * time.Second)
			cur, temp := 5+float64(d)+float64(i)/8, -18.25+float64(i)*0.5
			switch i % 3 {
			case 0: // Unix milliseconds
				publish(t, c, topic, fmt.Sprintf(`{"ts": %d, "metrics": {"compressor_current": %g, "cabinet_temp": %g}}`, ts.UnixMilli(), cur, temp))
			case 1: // RFC 3339 with an offset, and a boolean
				publish(t, c, topic, fmt.Sprintf(`{"ts": %q, "metrics": {"compressor_current": %g, "cabinet_temp": %g, "door_open": true}}`,
					ts.In(time.FixedZone("CET", 3600)).Format(time.RFC3339Nano), cur, temp))
			case 2: // an array whose second entry is bad: the others are kept
				publish(t, c, topic, fmt.Sprintf(`[{"ts": %d, "metrics": {"compressor_current": %g, "cabinet_temp": %g}},
					{"ts": %d, "metrics": {"Bad-Name": 1}},
					{"ts": %d, "metrics": {"compressor_current": %g, "cabinet_temp": %g}}]`,
					ts.UnixMilli(), cur, temp, ts.Add(time.Millisecond).UnixMilli(), ts.Add(2*time.Millisecond).UnixMilli(), cur+1, temp+1))
				w[pointKey(dev, ts.Add(2*time.Millisecond))] = map[string]float64{"compressor_current": cur + 1, "cabinet_temp": temp + 1}
			}
			fields := map[string]float64{"compressor_current": cur, "cabinet_temp": temp}
			if i%3 == 1 {
				fields["door_open"] = 1
			}
			w[pointKey(dev, ts)] = fields
		}
	}
	bad := prefix + "/fridge-000/telemetry"
	publish(t, c, bad, `not json`)
	publish(t, c, bad, `{"metrics": {"compressor_current": "NaN"}}`)
	publish(t, c, bad, `{"metrics": {"compressor_current": "high"}}`)
	publish(t, c, bad, `{"ts": "yesterday", "metrics": {"compressor_current": 1}}`)
	publish(t, c, bad, `{"metrics": {}}`)
	// Over the 64 KiB payload limit, under the embedded broker's packet
	// limit (which drops the connection rather than dead-letter).
	publish(t, c, bad, `{"metrics": {"x": 1}, "pad": "`+strings.Repeat("x", 64<<10)+`"}`)
	publish(t, c, prefix+"/bad device!/telemetry", `{"metrics": {"x": 1}}`)
	return w, map[string]float64{
		"bad_metric_name": 9, "not_json": 1, "non_finite": 1, "wrong_type": 1,
		"bad_timestamp": 1, "no_metrics": 1, "too_large": 1, "bad_topic": 1,
	}
}

// checkStored compares every value and timestamp InfluxDB holds with w.
func checkStored(t *testing.T, influx *testenv.InfluxServer, w want) {
	t.Helper()
	got := influx.Points(t, "telemetry")
	if len(got) != len(w) {
		t.Errorf("InfluxDB holds %d points, want %d", len(got), len(w))
	}
	for _, p := range got {
		k := pointKey(p.Tags["device_id"], p.Time)
		fields, ok := w[k]
		if !ok {
			t.Errorf("unexpected point %s %v", k, p.Fields)
			continue
		}
		if len(fields) != len(p.Fields) {
			t.Errorf("point %s: fields %v, want %v", k, p.Fields, fields)
		}
		for name, v := range fields {
			if g, ok := p.Fields[name]; !ok || math.Abs(g-v) > 1e-9 {
				t.Errorf("point %s field %s = %v, want %v", k, name, p.Fields[name], v)
			}
		}
	}
}

func waitCount(t *testing.T, influx *testenv.InfluxServer, n int, within time.Duration, logs *testenv.Buffer) {
	t.Helper()
	testenv.Eventually(t, within, func() error {
		if got := influx.Count(t, "telemetry"); got < n {
			return fmt.Errorf("InfluxDB holds %d points, want %d; logs:\n%s", got, n, tail(logs.String(), 3000))
		}
		return nil
	})
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func checkDeadLetters(t *testing.T, addr string, wantDL map[string]float64) {
	t.Helper()
	for reason, n := range wantDL {
		if got := metric(t, addr, `proactive_ingest_dead_letters_total{reason="`+reason+`"}`); got != n {
			t.Errorf("dead letters %s = %v, want %v", reason, got, n)
		}
	}
}

func TestIngestThroughEmbeddedBroker(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	p := startServe(t, env)
	p.waitReady(t)

	c := device(t, "tcp://"+env["PROACTIVE_MQTT_LISTEN"], "fleet-gateway", false)
	w, wantDL := fixture(t, c, "devices")
	// The embedded broker acknowledges a QoS 1 publish only once it is
	// stored, so everything is in InfluxDB already.
	checkStored(t, influx, w)
	checkDeadLetters(t, p.http, wantDL)

	// Status messages land in their own measurement.
	publish(t, c, "devices/fridge-001/status", `{"online": false}`)
	if st := influx.Points(t, "status"); len(st) != 1 || st[0].Fields["online"] != 0 || st[0].Tags["device_id"] != "fridge-001" {
		t.Errorf("status points = %+v", st)
	}
	if code, _ := get(p.http, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after bad input = %d", code)
	}
	if err := p.stop(t); err != nil {
		t.Errorf("serve returned %v", err)
	}
}

func TestIngestThroughMosquitto(t *testing.T) {
	t.Parallel()
	broker, influx, env, prefix, clientID := mosquittoSetup(t)
	p := startServe(t, env)
	p.waitReady(t)

	c := device(t, broker, clientID+"-pub", false)
	w, wantDL := fixture(t, c, prefix)
	waitCount(t, influx, len(w), 20*time.Second, p.logs)
	checkStored(t, influx, w)
	// Dead letters are counted as they arrive, possibly after the last good
	// point is stored.
	testenv.Eventually(t, 0, func() error {
		if metric(t, p.http, `proactive_ingest_dead_letters_total{reason="bad_topic"}`) < 1 {
			return fmt.Errorf("no bad_topic dead letter counted")
		}
		return nil
	})
	checkDeadLetters(t, p.http, wantDL)
}

// mosquittoSetup gives a test the shared Mosquitto, a throwaway influxd and
// the platform's environment for them, with a session of the test's own.
func mosquittoSetup(t *testing.T) (broker string, influx *testenv.InfluxServer, env map[string]string, prefix, clientID string) {
	t.Helper()
	broker = testenv.Mosquitto(t)
	influx = testenv.Influx(t)
	env = baseEnv(t, influx)
	prefix, clientID = uniqueSession(t, broker)
	env["PROACTIVE_MQTT_URL"] = broker
	env["PROACTIVE_MQTT_TOPIC_PREFIX"] = prefix
	env["PROACTIVE_MQTT_CLIENT_ID"] = clientID
	return broker, influx, env, prefix, clientID
}

// uniqueSession returns a topic prefix and an ingest client id of this test
// alone, so that runs sharing a Mosquitto do not see each other's messages,
// and removes the persistent session from the broker afterwards.
func uniqueSession(t *testing.T, broker string) (prefix, clientID string) {
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	prefix, clientID = "test-"+id, "proactive-test-"+id
	t.Cleanup(func() {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(true))
		if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			c.Disconnect(50)
		}
	})
	return prefix, clientID
}

// series publishes n readings for each device from its own goroutine, with
// pause between messages, and returns the expected points. It returns once
// every publish was handed to the client; wait on the tokens for acks.
func series(c paho.Client, prefix string, devices, n int, pause time.Duration) (want, []paho.Token) {
	w := want{}
	var mu sync.Mutex
	var toks []paho.Token
	base := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for d := range devices {
		dev := fmt.Sprintf("pump-%04d", d)
		for i := range n {
			ts := base.Add(time.Duration(i) * time.Second)
			w[pointKey(dev, ts)] = map[string]float64{"vibration": float64(d) + float64(i)/1000, "seq": float64(i)}
		}
		wg.Go(func() {
			for i := range n {
				ts := base.Add(time.Duration(i) * time.Second)
				tok := c.Publish(prefix+"/"+dev+"/telemetry", 1, false,
					fmt.Sprintf(`{"ts": %d, "metrics": {"vibration": %g, "seq": %d}}`, ts.UnixMilli(), float64(d)+float64(i)/1000, i))
				mu.Lock()
				toks = append(toks, tok)
				mu.Unlock()
				if pause > 0 {
					time.Sleep(pause) // pacing a stream, not waiting: the caller wants it spread over time
				}
			}
		})
	}
	wg.Wait()
	return w, toks
}

func waitTokens(t *testing.T, toks []paho.Token, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for i, tok := range toks {
		if !tok.WaitTimeout(time.Until(deadline)) {
			t.Fatalf("publish %d of %d not acknowledged within %s", i, len(toks), within)
		}
		if tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
}

// Kill the ingester with SIGKILL while telemetry flows through an external
// broker; after a restart under the same client id every point is stored.
func TestCrashWithExternalBrokerLosesNothing(t *testing.T) {
	t.Parallel()
	broker, influx, env, prefix, clientID := mosquittoSetup(t)
	env["PROACTIVE_INFLUX_FLUSH_INTERVAL"] = crashFlush
	env["PROACTIVE_INGEST_MAX_RATE_PER_DEVICE"] = "0" // the stream outpaces a device's rate limit
	p := startChild(t, env)
	p.waitReady(t)

	// Under 1000 messages in all: a default Mosquitto queues at most 1000 for
	// an offline session and drops the rest (see README, production notes).
	const devices, n = 6, 150
	c := device(t, broker, clientID+"-pub", false)
	var w want
	var toks []paho.Token
	p2 := crashMidStream(t, p, env, influx, devices*n, func() { w, toks = series(c, prefix, devices, n, crashPause) })
	waitTokens(t, toks, 30*time.Second)
	waitCount(t, influx, devices*n, 30*time.Second, p2.logs)
	checkStored(t, influx, w)
	p2.terminate(t)
}

// The crash tests stream for about a second (150 messages a device, one
// every crashPause) with batches flushed every crashFlush, so that the kill
// lands mid-stream however fast ingest is: with the default 1 s flush the
// whole stream could land in the first batch.
const (
	crashPause = 6 * time.Millisecond
	crashFlush = "50ms"
)

// crashMidStream runs publish in the background, kills p with SIGKILL once
// some but not all of the total points are stored, starts the platform
// again, and returns it once publish has returned.
func crashMidStream(t *testing.T, p *platform, env map[string]string, influx *testenv.InfluxServer, total int, publish func()) *platform {
	t.Helper()
	published := make(chan struct{})
	go func() {
		publish()
		close(published)
	}()
	waitCount(t, influx, 100, 20*time.Second, p.logs)
	p.kill(t)
	before := influx.Count(t, "telemetry")
	if before >= total {
		t.Fatalf("all %d points were stored before the kill: the test did not kill mid-stream", before)
	}
	t.Logf("killed with %d of %d points stored", before, total)
	p2 := startChild(t, env)
	<-published
	return p2
}

// The same through the embedded broker: the broker dies with the ingester,
// and a device that keeps its session resends what was not acknowledged.
func TestCrashWithEmbeddedBrokerLosesNothing(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_INFLUX_FLUSH_INTERVAL"] = crashFlush
	env["PROACTIVE_INGEST_MAX_RATE_PER_DEVICE"] = "0" // the stream outpaces a device's rate limit
	p := startChild(t, env)
	p.waitReady(t)

	const devices, n = 6, 150
	c := device(t, "tcp://"+env["PROACTIVE_MQTT_LISTEN"], "gateway-7", true)
	var w want
	p2 := crashMidStream(t, p, env, influx, devices*n, func() { w, _ = series(c, "devices", devices, n, crashPause) })
	// paho completes the tokens of resent messages early (it replaces them
	// on reconnect), so InfluxDB itself is the witness.
	waitCount(t, influx, devices*n, 60*time.Second, p2.logs)
	checkStored(t, influx, w)
	p2.terminate(t)
}

// InfluxDB stops while telemetry flows, until the devices have published
// all of it (about 35 s): /readyz turns 503, intake stays within the queue
// bound, and once InfluxDB is back every point is stored.
func TestInfluxOutageLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("takes over 30 s")
	}
	t.Parallel()
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	// Messages held are bounded by the queue, the batch being retried, and
	// one waiting to be queued per connection.
	const queue, batch = 20, 10
	env["PROACTIVE_INFLUX_QUEUE_SIZE"] = strconv.Itoa(queue)
	env["PROACTIVE_INFLUX_BATCH_SIZE"] = strconv.Itoa(batch)
	p := startServe(t, env)
	p.waitReady(t)

	const devices, n = 8, 70 // 8 devices, 2 messages a second each, for 35 s
	var mu sync.Mutex
	w := want{}
	var wg sync.WaitGroup
	for d := range devices {
		dev := fmt.Sprintf("boiler-%02d", d)
		c := device(t, "tcp://"+env["PROACTIVE_MQTT_LISTEN"], dev, true)
		wg.Go(func() {
			base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
			for i := range n {
				ts := base.Add(time.Duration(i) * time.Minute)
				c.Publish("devices/"+dev+"/telemetry", 1, false, fmt.Sprintf(`{"ts": %d, "metrics": {"flow_temp": %d}}`, ts.UnixMilli(), 40+i))
				mu.Lock()
				w[pointKey(dev, ts)] = map[string]float64{"flow_temp": float64(40 + i)}
				mu.Unlock()
				time.Sleep(500 * time.Millisecond) // pacing, not waiting: the stream must outlast the outage's start
			}
		})
	}
	published := make(chan struct{})
	go func() {
		wg.Wait()
		close(published)
	}()
	waitCount(t, influx, devices, 20*time.Second, p.logs) // telemetry flows
	influx.Stop(t)

	// The outage lasts until every device has published all it has.
	sawNotReady, maxPending := false, 0.0
	var body string
	for outage := true; outage; {
		select {
		case <-published:
			outage = false
		case <-time.After(250 * time.Millisecond):
		}
		var code int
		if code, body = get(p.http, "/readyz"); code == http.StatusServiceUnavailable {
			sawNotReady = true
		} else if code == http.StatusOK {
			t.Errorf("/readyz answered 200 while InfluxDB was down")
		}
		maxPending = max(maxPending, metric(t, p.http, "proactive_ingest_pending_messages"))
	}
	if !sawNotReady || !strings.Contains(body, "influxdb") {
		t.Errorf("/readyz never said 503 with the reason; last body %s", body)
	}
	if maxPending > queue+batch+devices {
		t.Errorf("pending messages reached %v, above the bound %d", maxPending, queue+batch+devices)
	}
	influx.Start(t)
	wg.Wait()
	waitCount(t, influx, devices*n, 60*time.Second, p.logs)
	p.waitReady(t)
	checkStored(t, influx, w)
	t.Logf("max pending during the outage: %v", maxPending)
}

// SIGTERM stops the platform cleanly: it exits 0, writes what it holds, and
// every publish it acknowledged is in InfluxDB.
func TestGracefulShutdownFlushes(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_INGEST_MAX_RATE_PER_DEVICE"] = "0" // the stream outpaces a device's rate limit
	p := startChild(t, env)
	p.waitReady(t)

	c := device(t, "tcp://"+env["PROACTIVE_MQTT_LISTEN"], "gateway-term", false)
	published := make(chan struct{})
	var toks []paho.Token
	go func() {
		_, toks = series(c, "devices", 4, 200, time.Millisecond)
		close(published)
	}()
	waitCount(t, influx, 50, 20*time.Second, p.logs)
	p.terminate(t)
	<-published

	acked := 0
	for _, tok := range toks {
		if tok.WaitTimeout(0) && tok.Error() == nil {
			acked++
		}
	}
	stored := influx.Count(t, "telemetry")
	if stored < acked {
		t.Errorf("%d publishes were acknowledged but only %d points stored", acked, stored)
	}
	m := regexp.MustCompile(`"msg":"stopped","points_written":(\d+)`).FindStringSubmatch(p.logs.String())
	if m == nil {
		t.Fatalf("no clean stop in the logs:\n%s", tail(p.logs.String(), 2000))
	}
	if written, _ := strconv.Atoi(m[1]); written != stored {
		t.Errorf("serve reported %d points written, InfluxDB holds %d", written, stored)
	}
	if strings.Contains(p.logs.String(), "not written before shutdown") {
		t.Errorf("a batch was left unwritten at shutdown:\n%s", tail(p.logs.String(), 2000))
	}
	t.Logf("SIGTERM after %d acknowledged publishes, %d points stored", acked, stored)
}

// With mqtt.device_topics, the embedded broker holds each device to its own
// topics: it cannot forge another device's telemetry nor read the fleet's.
func TestEmbeddedBrokerHoldsDevicesToTheirTopics(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_MQTT_DEVICE_TOPICS"] = "true"
	p := startServe(t, env)
	p.waitReady(t)
	broker := "tcp://" + env["PROACTIVE_MQTT_LISTEN"]

	own := device(t, broker, "pump-1", false)
	publish(t, own, "devices/pump-1/telemetry", `{"ts": 1763791200000, "metrics": {"pressure": 2.5}}`)

	tok := own.Subscribe("devices/#", 1, func(paho.Client, paho.Message) {})
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("subscribe not answered")
	}
	if res := tok.(*paho.SubscribeToken).Result()["devices/#"]; res != 0x80 {
		t.Errorf("subscription to devices/# granted with QoS %d, want refused (0x80)", res)
	}

	forger := device(t, broker, "pump-2", false)
	ftok := forger.Publish("devices/pump-1/telemetry", 1, false, `{"ts": 1763791260000, "metrics": {"pressure": 99}}`)
	ftok.WaitTimeout(2 * time.Second) // the broker disconnects the forger instead of acknowledging

	publish(t, own, "devices/pump-1/telemetry", `{"ts": 1763791320000, "metrics": {"pressure": 2.6}}`)
	pts := influx.Points(t, "telemetry")
	if len(pts) != 2 {
		t.Fatalf("stored %d points, want the device's own 2: %+v", len(pts), pts)
	}
	for _, pt := range pts {
		if pt.Fields["pressure"] == 99 {
			t.Errorf("forged point stored: %+v", pt)
		}
	}
}
