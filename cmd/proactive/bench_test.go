//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/proactivehq/proactive/internal/testenv"
)

// The shape of the end-to-end ingest benchmark (`make bench`): a burst of
// benchN QoS 1 messages of one point with five fields each, from
// benchDevices devices spread over benchConns MQTT connections.
const (
	benchDevices  = 1000
	benchMessages = 100 // per device
	benchN        = benchDevices * benchMessages
	benchTimeout  = 5 * time.Minute
	// benchPoll is how often the limit run reads the subscriber's count, and
	// the ingest run the platform's /metrics until it knows a rate: the
	// resolution of the measured time. Each scrape costs the platform about
	// 1 ms of CPU (every collector, /proc reads and SQLite queries among
	// them, and gzip): at 100 ms through a whole run that was 1 µs of the
	// CPU charged per message, so the ingest run polls every benchPollEnd
	// only near the end it predicts.
	benchPoll    = 100 * time.Millisecond
	benchPollEnd = 25 * time.Millisecond
)

// benchMosquittoConf is the private Mosquitto's configuration, after the
// README's production notes: the defaults (20 in flight, 1000 queued) would
// throttle and drop. The verbs are the port and max_inflight_messages
// (benchMosquittoInflight).
const benchMosquittoConf = `listener %d 127.0.0.1
allow_anonymous true
max_inflight_messages %d
max_queued_messages 1000000
persistence false
log_dest stderr
log_type error
log_type warning
`

// benchConns is how many publisher connections carry the devices, each
// benchDevices/benchConns of them: 1000, one per device, unless
// BENCH_CONNS (a divisor of benchDevices) says otherwise.
var benchConns = 1000

// benchMosquittoInflight is the private Mosquitto's max_inflight_messages:
// how many messages the ingester may hold unacknowledged, as it acknowledges
// only after the write. BENCH_MOSQUITTO_MAX_INFLIGHT overrides it.
var benchMosquittoInflight = 10000

// benchLimit holds the delivery rate (msgs/s) each broker reached in its
// "limit" sub-benchmark of this run, for the ingest sub-benchmark's ratio.
var benchLimit = map[string]float64{}

// BenchmarkIngest measures end-to-end ingest: msgs/s from the first publish
// until InfluxDB holds all benchN messages, through a private Mosquitto and
// through the embedded broker, and beside each the rate at which the same
// broker delivers the same burst to a subscriber that discards it (the
// limit). Run it with -benchtime 1x (`make bench`): each sub-benchmark sends
// the whole burst once, whatever b.N. ns/op is the measured interval.
//
// With Mosquitto the ingester is such a subscriber (paho, QoS 1, over TCP),
// so the limit is its ceiling. The embedded broker hands each publish to the
// ingester in process, from the publisher's connection; its limit is a
// subscription inside a plain mochi broker, which mochi calls the same way.
// BENCH_EMBEDDED_LIMIT=tcp measures a paho subscriber over TCP instead: a
// path the embedded ingest does not take (it is slower than the ingest), and
// one that loses messages once the subscriber is 65535 behind.
//
// Every process shares the machine's cores, so each run reports the CPU
// share of each (publishers, broker, platform, influxd) and of whatever else
// ran meanwhile, which skews the figures when it is not near zero.
//
// mosquitto/telegraf runs the same burst through Telegraf's MQTT consumer
// and InfluxDB output when BENCH_TELEGRAF names its binary (make bench
// builds one), for the comparison in one run; it is skipped otherwise.
//
// BENCH_CPUPROFILE=dir writes the platform's CPU profile of each ingest
// sub-benchmark to dir/{mosquitto,embedded}.cpu.prof; BENCH_MEMPROFILE=dir
// its allocations to dir/{mosquitto,embedded}.allocs.prof.
//
// Knobs, for experiments: BENCH_CONNS (publisher connections, default one per
// device), BENCH_MOSQUITTO_MAX_INFLIGHT, and BENCH_PROACTIVE_INFLUX_BATCH_SIZE,
// _QUEUE_SIZE and _FLUSH_INTERVAL, handed to the platform without BENCH_.
func BenchmarkIngest(b *testing.B) {
	if v := os.Getenv("BENCH_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || benchDevices%n != 0 {
			b.Fatalf("BENCH_CONNS=%q: want a divisor of %d", v, benchDevices)
		}
		benchConns = n
	}
	if v := os.Getenv("BENCH_MOSQUITTO_MAX_INFLIGHT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			b.Fatalf("BENCH_MOSQUITTO_MAX_INFLIGHT=%q: want a count, 0 for no limit", v)
		}
		benchMosquittoInflight = n
	}
	b.Run("mosquitto/limit", func(b *testing.B) {
		broker := startBenchMosquitto(b)
		benchLimitRun(b, "mosquitto", broker.url, "bench", broker.cpu(), benchPahoSubscriber(broker.url), nil)
	})
	b.Run("mosquitto/ingest", func(b *testing.B) {
		broker := startBenchMosquitto(b)
		influx := testenv.Influx(b)
		env := baseEnv(b, influx)
		env["PROACTIVE_INGEST_MAX_RATE_PER_DEVICE"] = "0" // the burst outpaces a device's rate limit
		id := strconv.FormatInt(time.Now().UnixNano(), 36)
		env["PROACTIVE_MQTT_URL"] = broker.url
		env["PROACTIVE_MQTT_TOPIC_PREFIX"] = "bench-" + id
		env["PROACTIVE_MQTT_CLIENT_ID"] = "proactive-bench-" + id
		benchIngestRun(b, "mosquitto", broker.url, env, influx, broker.cpu())
	})
	b.Run("mosquitto/telegraf", benchTelegraf)
	b.Run("embedded/limit", func(b *testing.B) {
		if os.Getenv("BENCH_EMBEDDED_LIMIT") == "tcp" {
			url, _, check := startBenchMochi(b, false)
			benchLimitRun(b, "embedded", url, "devices", nil, benchPahoSubscriber(url), check)
			return
		}
		url, server, _ := startBenchMochi(b, true)
		benchLimitRun(b, "embedded", url, "devices", nil, benchInlineSubscriber(server), nil)
	})
	b.Run("embedded/ingest", func(b *testing.B) {
		influx := testenv.Influx(b)
		env := baseEnv(b, influx)
		env["PROACTIVE_INGEST_MAX_RATE_PER_DEVICE"] = "0" // the burst outpaces a device's rate limit
		env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(b)
		benchIngestRun(b, "embedded", "tcp://"+env["PROACTIVE_MQTT_LISTEN"], env, influx, nil)
	})
}

// benchSubscriber subscribes a subscriber that discards what it gets to
// filter (with QoS 1 over a network), calling delivered for each message. It returns what the
// subscriber is, for the log, and a channel that reports a lost connection.
type benchSubscriber func(b *testing.B, filter string, delivered func()) (what string, lost <-chan error)

// benchPahoSubscriber is a paho client with the settings of the ingester's
// own: persistent session, in-order handling, acknowledged once the handler
// returns.
func benchPahoSubscriber(broker string) benchSubscriber {
	return func(b *testing.B, filter string, delivered func()) (string, <-chan error) {
		lost := make(chan error, 1)
		opts := paho.NewClientOptions().AddBroker(broker).SetClientID("bench-sink-" + strconv.FormatInt(time.Now().UnixNano(), 36)).
			SetCleanSession(false).SetOrderMatters(true).SetAutoReconnect(false).SetKeepAlive(30 * time.Second).
			SetConnectionLostHandler(func(_ paho.Client, err error) {
				select {
				case lost <- err:
				default:
				}
			})
		sub := paho.NewClient(opts)
		if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("connect subscriber to %s: %v", broker, tok.Error())
		}
		b.Cleanup(func() { sub.Disconnect(100) })
		handler := func(paho.Client, paho.Message) { delivered() }
		if tok := sub.Subscribe(filter, 1, handler); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("subscribe: %v", tok.Error())
		}
		return "a paho subscriber", lost
	}
}

// benchInlineSubscriber is a subscription inside the broker's process, which
// mochi calls from the publisher's connection as it calls the ingest hook of
// the embedded broker.
func benchInlineSubscriber(server *mqtt.Server) benchSubscriber {
	return func(b *testing.B, filter string, delivered func()) (string, <-chan error) {
		err := server.Subscribe(filter, 1, func(*mqtt.Client, packets.Subscription, packets.Packet) { delivered() })
		if err != nil {
			b.Fatalf("inline subscribe: %v", err)
		}
		return "an in-process subscription", nil
	}
}

// benchLimitRun publishes the burst to broker and stops the clock once a
// subscriber that discards what it gets has received all of it. check, when
// not nil, reports messages the broker dropped.
func benchLimitRun(b *testing.B, name, broker, prefix string, brokerCPU *benchProc, subscribe benchSubscriber, check func() error) {
	b.StopTimer()
	f := newBenchFleet(b, broker, prefix)
	var got atomic.Int64
	all := make(chan struct{})
	what, lost := subscribe(b, prefix+"/+/telemetry", func() {
		if got.Add(1) == benchN {
			close(all)
		}
	})

	self := "publishers+subscriber"
	if brokerCPU == nil {
		self += "+broker" // mochi runs in this process
	}
	cpu := newBenchCPUWatch(self, brokerCPU)
	b.StartTimer()
	start := time.Now()
	f.publish()
	deadline := time.After(benchTimeout)
	tick := time.NewTicker(benchPoll)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-all:
			done = true
		case <-tick.C:
			if check == nil {
				continue
			}
			if err := check(); err != nil {
				// The ingest run goes on, without a ratio.
				b.Fatalf("no limit figure: after %d of %d messages reached the subscriber, %v (it fell 65535 messages behind); CPU %s",
					got.Load(), benchN, err, cpu.shares(time.Since(start)))
			}
		case err := <-lost:
			b.Fatalf("subscriber lost its connection after %d of %d messages: %v", got.Load(), benchN, err)
		case err := <-f.lost:
			b.Fatalf("a publisher lost its connection after %d of %d messages reached the subscriber: %v", got.Load(), benchN, err)
		case <-deadline:
			b.Fatalf("the subscriber received %d of %d messages within %s", got.Load(), benchN, benchTimeout)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	shares := cpu.shares(elapsed)
	f.wait(b)

	rate := float64(benchN) / elapsed.Seconds()
	benchLimit[name] = rate
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(rate, "points/s")
	shares.report(b)
	b.Logf("%s limit: %d msgs delivered to %s that discards them in %.2fs = %.0f msgs/s; CPU %s",
		name, benchN, what, elapsed.Seconds(), rate, shares)
}

// benchIngestRun starts the platform with env, publishes the burst to broker
// and stops the clock once the platform reports every point written, which
// it does only after InfluxDB acknowledged the write.
func benchIngestRun(b *testing.B, name, broker string, env map[string]string, influx *testenv.InfluxServer, brokerCPU *benchProc) {
	b.StopTimer()
	// Tuning knobs, for trying settings without editing the benchmark.
	for _, k := range []string{"PROACTIVE_INFLUX_BATCH_SIZE", "PROACTIVE_INFLUX_QUEUE_SIZE", "PROACTIVE_INFLUX_FLUSH_INTERVAL"} {
		if v := os.Getenv("BENCH_" + k); v != "" {
			env[k] = v
			b.Logf("%s=%s", k, v)
		}
	}
	profile := ""
	if dir := os.Getenv("BENCH_CPUPROFILE"); dir != "" {
		profile = filepath.Join(dir, name+".cpu.prof")
		env["PROACTIVE_TEST_CPUPROFILE"] = profile
	}
	if dir := os.Getenv("BENCH_MEMPROFILE"); dir != "" {
		// Sampling allocations costs the platform CPU: a run of its own.
		env["PROACTIVE_TEST_MEMPROFILE"] = filepath.Join(dir, name+".allocs.prof")
	}
	p := startChild(b, env)
	p.waitReady(b)
	prefix := env["PROACTIVE_MQTT_TOPIC_PREFIX"]
	if prefix == "" {
		prefix = "devices"
	}
	f := newBenchFleet(b, broker, prefix)
	// A scrape that times out under load is retried at the next poll.
	var scrapeErr error
	written := func() int {
		n, err := benchPointsWritten(p.http)
		if err != nil {
			scrapeErr = err
			return 0
		}
		return n
	}
	if n := written(); n != 0 || scrapeErr != nil {
		b.Fatalf("%d points written before the first publish (%v)", n, scrapeErr)
	}

	cpu := newBenchCPUWatch("publishers", brokerCPU, &benchProc{"proactive", p.cmd.Process.Pid}, benchInfluxd(b))
	b.StartTimer()
	start := time.Now()
	f.publish()
	// Each scrape costs the platform CPU that is charged to the messages, so
	// the run scrapes seldom while far from the end (half the time the rate
	// so far predicts is left) and every benchPollEnd near it: the
	// resolution of the measured time.
	deadline := time.After(benchTimeout)
	scrapes := 0
	for n := 0; n < benchN; n = written() {
		wait := benchPoll
		if n > 0 {
			left := time.Duration(float64(time.Since(start)) * float64(benchN-n) / float64(n))
			wait = max(benchPollEnd, min(left/2, time.Second))
		}
		t := time.NewTimer(wait)
		select {
		case err := <-f.lost:
			b.Fatalf("a publisher lost its connection with %d of %d points written: %v; logs:\n%s", n, benchN, err, tail(p.logs.String(), 3000))
		case <-deadline:
			b.Fatalf("%d of %d points written within %s (last scrape error: %v); logs:\n%s",
				n, benchN, benchTimeout, scrapeErr, tail(p.logs.String(), 3000))
		case <-t.C:
		}
		scrapes++
	}
	elapsed := time.Since(start)
	b.StopTimer()
	shares := cpu.shares(elapsed)
	f.wait(b)
	if stored := influx.Count(b, "telemetry"); stored != benchN {
		b.Fatalf("InfluxDB holds %d points, want %d", stored, benchN)
	}
	rssMB := benchPeakRSS(b, p.cmd.Process.Pid)
	batches := benchBatchStats(b, p.http)

	if profile != "" {
		p.terminate(b)
		b.Logf("CPU profile of the platform: %s", profile)
	}

	rate, pct := benchRate(b, name, elapsed, shares)
	b.ReportMetric(rate, "points/s")
	b.ReportMetric(rssMB, "peak-RSS-MB")
	b.Logf("%s ingest: %d msgs in %.2fs = %.0f msgs/s (%s), peak RSS %.0f MB; %s; %d scrapes of /metrics; CPU %s",
		name, benchN, elapsed.Seconds(), rate, pct, rssMB, batches, scrapes, shares)
}

// benchRate reports a run's msgs/s, its share of broker's limit measured
// in this run, and the CPU shares, and returns the rate and the share for
// the log.
func benchRate(b *testing.B, broker string, elapsed time.Duration, shares benchCPUShares) (rate float64, pct string) {
	rate = float64(benchN) / elapsed.Seconds()
	b.ReportMetric(rate, "msgs/s")
	pct = "no limit measured in this run"
	if limit, ok := benchLimit[broker]; ok {
		b.ReportMetric(100*rate/limit, "pct-of-limit")
		pct = fmt.Sprintf("%.0f%% of limit %.0f msgs/s", 100*rate/limit, limit)
	}
	shares.report(b)
	return rate, pct
}

// benchPointsWritten reads proactive_ingest_points_written_total, which the
// ingester advances once InfluxDB acknowledged a write.
func benchPointsWritten(addr string) (int, error) {
	const series = "proactive_ingest_points_written_total "
	code, body := get(addr, "/metrics")
	if code != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %d %s", code, body)
	}
	i := strings.Index(body, "\n"+series)
	if i < 0 {
		return 0, fmt.Errorf("%s not in /metrics", series)
	}
	line, _, _ := strings.Cut(body[i+1+len(series):], "\n")
	v, err := strconv.ParseFloat(line, 64)
	return int(v), err
}

// benchBatchStats summarises the platform's InfluxDB writes from /metrics.
func benchBatchStats(b *testing.B, addr string) string {
	b.Helper()
	writes := metric(b, addr, "proactive_ingest_write_seconds_count")
	secs := metric(b, addr, "proactive_ingest_write_seconds_sum")
	batches := metric(b, addr, "proactive_ingest_batch_points_count")
	points := metric(b, addr, "proactive_ingest_batch_points_sum")
	if writes == 0 || batches == 0 {
		return "no writes"
	}
	return fmt.Sprintf("%.0f batches of %.0f points on average, %.0f ms a write on average (%.1fs writing in all)",
		batches, points/batches, 1000*secs/writes, secs)
}

// benchFleet is the publishing side: benchConns paho connections, each carrying
// some of the devices, with every payload built before the clock starts.
type benchFleet struct {
	conns []benchPublisher
	lost  chan error
	stop  chan struct{} // closed when the run ends early
	sent  sync.WaitGroup
	toks  [][]paho.Token // per connection, complete once sent is done
}

type benchPublisher struct {
	client paho.Client
	topics []string
	// payloads[i][d] is message i of device d of this connection.
	payloads [][][]byte
}

func newBenchFleet(b *testing.B, broker, prefix string) *benchFleet {
	b.Helper()
	load, _ := os.ReadFile("/proc/loadavg")
	b.Logf("publishers: %d devices x %d QoS 1 messages of 5 metrics = %d, over %d connections (%d device(s) each); %d CPUs; load average %s",
		benchDevices, benchMessages, benchN, benchConns, benchDevices/benchConns, runtime.NumCPU(), bytes.TrimSpace(load))
	f := &benchFleet{conns: make([]benchPublisher, benchConns), lost: make(chan error, 1), stop: make(chan struct{}), toks: make([][]paho.Token, benchConns)}
	base := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	per := benchDevices / benchConns
	for c := range f.conns {
		fc := &f.conns[c]
		for d := range per {
			fc.topics = append(fc.topics, fmt.Sprintf("%s/fridge-%04d/telemetry", prefix, c*per+d))
		}
		fc.payloads = make([][][]byte, benchMessages)
		for i := range benchMessages {
			fc.payloads[i] = make([][]byte, per)
			for d := range per {
				dev := c*per + d
				ts := base.Add(time.Duration(i) * 10 * time.Second) // distinct per device: one point each
				fc.payloads[i][d] = fmt.Appendf(nil,
					`{"ts": %d, "metrics": {"compressor_current": %.2f, "cabinet_temp": %.2f, "ambient_temp": %.1f, "door_open": %t, "power_w": %.1f}}`,
					ts.UnixMilli(), 4.5+float64(dev%50)/20+float64(i%7)/10, 3.5+float64(i%13)/10, 21+float64(dev%9)/2, i%17 == 0, 120+float64((dev+i)%40))
			}
		}
	}

	// Connect in parallel, a few at a time, outside the clock.
	var wg sync.WaitGroup
	errs := make(chan error, benchConns)
	sem := make(chan struct{}, 32)
	for c := range f.conns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			opts := paho.NewClientOptions().AddBroker(broker).
				SetClientID(fmt.Sprintf("bench-pub-%04d-%d", c, time.Now().UnixNano())).
				SetCleanSession(true).SetAutoReconnect(false).SetKeepAlive(60 * time.Second).
				// Long enough that backpressure (acks held until the write)
				// never reads as a dead connection.
				SetWriteTimeout(benchTimeout).SetOrderMatters(false).
				SetConnectionLostHandler(func(_ paho.Client, err error) {
					select {
					case f.lost <- err:
					default:
					}
				})
			cl := paho.NewClient(opts)
			if tok := cl.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
				errs <- fmt.Errorf("connect publisher %d to %s: %v", c, broker, tok.Error())
				return
			}
			f.conns[c].client = cl
		})
	}
	wg.Wait()
	close(errs)
	b.Cleanup(func() {
		close(f.stop)
		var wg sync.WaitGroup
		for _, fc := range f.conns {
			if fc.client != nil {
				wg.Go(func() { fc.client.Disconnect(50) })
			}
		}
		wg.Wait()
	})
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return f
}

// publish sends every message from one goroutine per connection, without
// waiting for acknowledgements, and returns at once.
func (f *benchFleet) publish() {
	for c := range f.conns {
		fc := &f.conns[c]
		f.toks[c] = make([]paho.Token, 0, benchMessages*len(fc.topics))
		f.sent.Go(func() {
			for i := range benchMessages {
				select {
				case <-f.stop:
					return
				default:
				}
				for d, topic := range fc.topics {
					f.toks[c] = append(f.toks[c], fc.client.Publish(topic, 1, false, fc.payloads[i][d]))
				}
			}
		})
	}
}

// wait checks that every publish was handed over and acknowledged without
// error.
func (f *benchFleet) wait(b *testing.B) {
	b.Helper()
	sent := make(chan struct{})
	go func() { f.sent.Wait(); close(sent) }()
	select {
	case <-sent:
	case <-time.After(time.Minute):
		b.Fatalf("publishers still sending a minute after the end")
	}
	deadline := time.Now().Add(time.Minute)
	for c, toks := range f.toks {
		for i, tok := range toks {
			if !tok.WaitTimeout(time.Until(deadline)) {
				b.Fatalf("publish %d of connection %d not acknowledged within a minute of the end", i, c)
			}
			if err := tok.Error(); err != nil {
				b.Fatalf("publish %d of connection %d: %v", i, c, err)
			}
		}
	}
}

// benchMosquitto is a private Mosquitto started by startBenchMosquitto.
type benchMosquitto struct {
	url string
	cmd *exec.Cmd
}

func (m *benchMosquitto) cpu() *benchProc { return &benchProc{"mosquitto", m.cmd.Process.Pid} }

// startBenchMosquitto runs `mosquitto -c` with benchMosquittoConf on a free port
// and stops it when b ends. The binary comes from PATH, or /usr/sbin where
// Debian puts it; without it the benchmark is skipped (failed under CI=true).
func startBenchMosquitto(b *testing.B) *benchMosquitto {
	b.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			testenv.RequireService(b, "mosquitto", "no mosquitto binary on PATH or in /usr/sbin: apt-get install mosquitto")
			return nil
		}
		bin = "/usr/sbin/mosquitto"
	}
	dir := b.TempDir()
	// A free port can be taken before mosquitto binds it: try another.
	for attempt := 1; ; attempt++ {
		m, logs, err := tryBenchMosquitto(b, bin, dir)
		if err == nil {
			return m
		}
		if attempt == 3 || !strings.Contains(logs, "in use") {
			b.Fatalf("start mosquitto: %v\n%s", err, logs)
		}
	}
}

func tryBenchMosquitto(b *testing.B, bin, dir string) (*benchMosquitto, string, error) {
	port := testenv.FreePort(b)
	conf := fmt.Sprintf(benchMosquittoConf, port, benchMosquittoInflight)
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, "", err
	}
	logs := &testenv.Buffer{}
	cmd := exec.Command(bin, "-c", confPath)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan if the benchmark dies
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			b.Cleanup(stop)
			b.Logf("private mosquitto %s: %s", bin, strings.ReplaceAll(strings.TrimSpace(conf), "\n", "; "))
			return &benchMosquitto{url: "tcp://" + addr, cmd: cmd}, "", nil
		}
		select {
		case <-exited:
			return nil, logs.String(), errors.New("mosquitto exited at startup")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, logs.String(), fmt.Errorf("mosquitto did not listen on %s within 10s", addr)
		}
	}
}

// startBenchMochi runs a plain mochi-mqtt broker, as the embedded broker is
// built on, with default capabilities and every client allowed. It returns
// its URL, the server, and a check for messages it dropped.
//
// With inline, the server takes in-process subscriptions. Without, it is for
// a subscriber over TCP, and two capabilities are raised so that it drops as
// little as it can: mochi acknowledges a publisher at once, so the whole
// burst can queue for the one subscriber, and by default it drops what
// exceeds 8192 unacknowledged messages or 8192 pending writes for a client.
// 65535 unacknowledged (the MQTT packet id space) is its ceiling: a
// subscriber that falls further behind, as it does on a busy machine, loses
// messages, and the run has no limit figure.
func startBenchMochi(b *testing.B, inline bool) (url string, server *mqtt.Server, check func() error) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	caps := mqtt.NewDefaultServerCapabilities()
	if !inline {
		caps.MaximumInflight = math.MaxUint16
		caps.MaximumClientWritesPending = 2 * benchN
	}
	server = mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Capabilities: caps, InlineClient: inline})
	if err := server.AddHook(new(auth.AllowHook), nil); err != nil {
		b.Fatal(err)
	}
	if err := server.AddListener(listeners.NewNet("bench", ln)); err != nil {
		b.Fatal(err)
	}
	if err := server.Serve(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		// mochi v2.7.9's Close can deadlock while clients disconnect
		// (mochi-mqtt/server#488): the next sub-benchmark goes on regardless.
		closed := make(chan struct{})
		go func() { _ = server.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			b.Logf("mochi did not close within 5s (mochi-mqtt/server#488); going on")
		}
	})
	check = func() error {
		info := server.Info.Clone()
		if n := info.MessagesDropped + info.InflightDropped; n > 0 {
			return fmt.Errorf("mochi dropped %d messages for a slow subscriber (%d dropped, %d in-flight dropped)",
				n, info.MessagesDropped, info.InflightDropped)
		}
		return nil
	}
	return "tcp://" + ln.Addr().String(), server, check
}

// benchProc names a process whose CPU time is accounted.
type benchProc struct {
	name string
	pid  int
}

// benchCPUWatch samples CPU time of the processes of a run and of the machine.
type benchCPUWatch struct {
	procs       []benchProc
	start       []time.Duration
	busy, total int64
}

// newBenchCPUWatch starts accounting for this process, under the name self,
// and the non-nil others.
func newBenchCPUWatch(self string, others ...*benchProc) *benchCPUWatch {
	w := &benchCPUWatch{procs: []benchProc{{self, os.Getpid()}}}
	for _, p := range others {
		if p != nil {
			w.procs = append(w.procs, *p)
		}
	}
	for _, p := range w.procs {
		w.start = append(w.start, benchProcTime(p.pid))
	}
	w.busy, w.total = benchMachineTicks()
	return w
}

// benchCPUShares are the shares of the machine's CPU capacity (all cores) the
// processes took over a run.
type benchCPUShares struct {
	names  []string
	pct    []float64
	usMsg  []float64 // CPU µs per message
	ours   float64
	others float64 // whatever else ran on the machine meanwhile
	total  float64
}

func (w *benchCPUWatch) shares(elapsed time.Duration) benchCPUShares {
	var s benchCPUShares
	capacity := elapsed.Seconds() * float64(runtime.NumCPU())
	for i, p := range w.procs {
		used := benchProcTime(p.pid) - w.start[i]
		pct := 100 * used.Seconds() / capacity
		s.names = append(s.names, p.name)
		s.pct = append(s.pct, pct)
		s.usMsg = append(s.usMsg, float64(used.Microseconds())/benchN)
		s.ours += pct
	}
	busy, total := benchMachineTicks()
	if total > w.total {
		s.total = 100 * float64(busy-w.busy) / float64(total-w.total)
	}
	s.others = max(0, s.total-s.ours)
	return s
}

func (s benchCPUShares) report(b *testing.B) {
	for i, n := range s.names {
		b.ReportMetric(s.pct[i], "cpu-%-"+n)
	}
	b.ReportMetric(s.total, "cpu-%-machine")
}

func (s benchCPUShares) String() string {
	var parts []string
	for i, n := range s.names {
		parts = append(parts, fmt.Sprintf("%s %.0f%% (%.1f µs/msg)", n, s.pct[i], s.usMsg[i]))
	}
	return fmt.Sprintf("of %d cores: %s, other processes %.0f%%, machine busy %.0f%%",
		runtime.NumCPU(), strings.Join(parts, ", "), s.others, s.total)
}

// benchClockTick is USER_HZ, 100 on every Linux the benchmark runs on.
const benchClockTick = 100

// benchProcTime returns the user+system CPU time of pid, 0 if it is gone.
func benchProcTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command, which may hold spaces: state is field 3,
	// utime 14 and stime 15.
	_, rest, _ := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / benchClockTick
}

// benchMachineTicks returns busy and total ticks of all CPUs from /proc/stat.
func benchMachineTicks() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// benchInfluxd finds the influxd that testenv started as a child of this
// process.
func benchInfluxd(b *testing.B) *benchProc {
	b.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || !bytes.Contains(stat, []byte("(influxd)")) {
			continue
		}
		_, rest, _ := bytes.Cut(stat, []byte(") "))
		if f := strings.Fields(string(rest)); len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			return &benchProc{"influxd", pid}
		}
	}
	b.Logf("influxd child not found: its CPU is not accounted")
	return nil
}

// benchPeakRSS returns the peak resident set (VmHWM) of pid in MB.
func benchPeakRSS(b *testing.B, pid int) float64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("peak RSS: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatalf("peak RSS: %q: %v", sc.Text(), err)
			}
			return kb / 1024
		}
	}
	b.Fatal(errors.New("peak RSS: no VmHWM in /proc/pid/status"))
	return 0
}
