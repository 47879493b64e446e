//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
)

// benchTelegrafConf is Telegraf's configuration for the comparison: its
// MQTT consumer with the settings of ours (persistent session, QoS 1, a
// window of unacknowledged messages as large as Mosquitto's), the device id
// from the topic, the payload's timestamp and metrics, and InfluxDB's v2
// write API as we use it. Verbs: broker URL, prefix, client id, in-flight
// window, InfluxDB URL, bucket.
const benchTelegrafConf = `[agent]
  interval = "10s"
  flush_interval = "100ms"
  flush_jitter = "0s"
  metric_batch_size = 5000
  metric_buffer_limit = 1000000
  omit_hostname = true
  debug = true

[[inputs.mqtt_consumer]]
  servers = [%q]
  topics = ["%s/+/telemetry"]
  qos = 1
  persistent_session = true
  client_id = %q
  max_undelivered_messages = %d
  data_format = "json_v2"
  [[inputs.mqtt_consumer.topic_parsing]]
    topic = "+/+/telemetry"
    tags = "_/device/_"
  [[inputs.mqtt_consumer.json_v2]]
    measurement_name = "telemetry"
    timestamp_path = "ts"
    timestamp_format = "unix_ms"
    [[inputs.mqtt_consumer.json_v2.object]]
      path = "metrics"

[[outputs.influxdb_v2]]
  urls = [%q]
  token = "bench"
  organization = "bench"
  bucket = %q
`

// benchTelegraf runs, when BENCH_TELEGRAF names a Telegraf binary (`make
// bin/telegraf` builds one with only the plugins needed), the same burst
// through the same kind of private Mosquitto into Telegraf's MQTT consumer
// and InfluxDB output, for a side-by-side figure in one run. The clock
// stops once Telegraf's log reports every point written.
func benchTelegraf(b *testing.B) {
	bin := os.Getenv("BENCH_TELEGRAF")
	if bin == "" {
		b.Skip("BENCH_TELEGRAF not set: no Telegraf to compare with (make bin/telegraf)")
	}
	b.StopTimer()
	broker := startBenchMosquitto(b)
	influx := testenv.Influx(b)
	prefix := "tg-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	dir := b.TempDir()
	conf := filepath.Join(dir, "telegraf.conf")
	text := fmt.Sprintf(benchTelegrafConf, broker.url, prefix, prefix+"-consumer", benchMosquittoInflight, influx.URL(), influx.Bucket())
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", conf)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start telegraf: %v", err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var written, subscribed atomic.Int64
	var logTail atomic.Value
	logTail.Store("")
	wrote := regexp.MustCompile(`Wrote batch of (\d+) metrics`)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			logTail.Store(line)
			if m := wrote.FindStringSubmatch(line); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				written.Add(n)
			}
			if strings.Contains(line, "Connected") || strings.Contains(line, "Subscribed") {
				subscribed.Store(1)
			}
		}
	}()
	testenv.Eventually(b, 0, func() error {
		if subscribed.Load() == 0 {
			return fmt.Errorf("telegraf not connected yet; last log line: %s", logTail.Load())
		}
		return nil
	})
	f := newBenchFleet(b, broker.url, prefix)
	cpu := newBenchCPUWatch("publishers", broker.cpu(), &benchProc{"telegraf", cmd.Process.Pid}, benchInfluxd(b))
	b.StartTimer()
	start := time.Now()
	f.publish()
	deadline := time.After(benchTimeout)
	for written.Load() < benchN {
		select {
		case err := <-f.lost:
			b.Fatalf("a publisher lost its connection: %v", err)
		case <-deadline:
			b.Fatalf("telegraf wrote %d of %d points within %s; last log line: %s", written.Load(), benchN, benchTimeout, logTail.Load())
		case <-time.After(benchPollEnd):
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	shares := cpu.shares(elapsed)
	f.wait(b)
	if stored := influx.Count(b, "telemetry"); stored != benchN {
		b.Fatalf("InfluxDB holds %d points, want %d", stored, benchN)
	}
	rate, pct := benchRate(b, "mosquitto", elapsed, shares)
	b.Logf("telegraf (%s) ingest: %d msgs in %.2fs = %.0f msgs/s (%s), peak RSS %.0f MB; CPU %s",
		filepath.Base(bin), benchN, elapsed.Seconds(), rate, pct, benchPeakRSS(b, cmd.Process.Pid), shares)
}
