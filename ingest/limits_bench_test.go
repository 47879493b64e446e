package ingest_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
)

// slowWriter stores nothing and takes the time a store takes: a
// millisecond a write and perPoint a point, so that the store, as InfluxDB
// is in production, is what a flood competes for.
type slowWriter struct {
	perPoint time.Duration
	points   atomic.Int64
}

func (w *slowWriter) Write(_ context.Context, samples []proactive.Sample, statuses []proactive.DeviceStatus, events []proactive.Event) error {
	n := len(samples) + len(statuses) + len(events)
	w.points.Add(int64(n))
	time.Sleep(time.Millisecond + time.Duration(n)*w.perPoint) // the store's cost, modelled
	return nil
}

// BenchmarkIngestWhileAnotherFloods measures the ingest rate of a
// well-behaved fleet (b.N QoS 1 messages over one connection, spread over
// devices so that none exceeds its burst) through the embedded broker,
// alone and while one device floods QoS 0 messages on a connection of its
// own, with and without the per-device rate limit (10/s, burst 100). The
// store takes 100µs a point (10,000 points/s at most), so that it, not the
// CPU, is what the flood competes for:
//
//	go test -run '^$' -bench BenchmarkIngestWhileAnotherFloods -benchtime 10000x ./ingest/
func BenchmarkIngestWhileAnotherFloods(b *testing.B) {
	for _, bc := range []struct {
		name  string
		flood bool
		rate  float64
	}{
		{"alone", false, 10},
		{"flood/limited", true, 10},
		{"flood/unlimited", true, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &slowWriter{perPoint: 100 * time.Microsecond}
			in, m := newIngester(b, ingest.Options{Writer: w, MaxRatePerDevice: bc.rate, RateBurst: 100})
			mustRun(b, in)
			br := startBenchBroker(b, in)
			good := benchClient(b, br, "fleet")
			stop := make(chan struct{})
			var flooded sync.WaitGroup
			if bc.flood {
				flooder := benchClient(b, br, "flood")
				flooded.Go(func() {
					payload := []byte(`{"metrics": {"a": 1}}`)
					for {
						select {
						case <-stop:
							return
						default:
						}
						flooder.Publish("devices/flood/telemetry", 0, false, payload)
					}
				})
			}
			devices := max(1000, b.N/50)
			floodBefore := messagesOf(b, m)
			b.ResetTimer()
			start := time.Now()
			toks := make([]paho.Token, 0, b.N)
			for i := range b.N {
				toks = append(toks, good.Publish(fmt.Sprintf("devices/dev-%05d/telemetry", i%devices), 1, false, fmt.Sprintf(`{"metrics": {"a": %d}}`, i)))
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
					b.Fatalf("publish: %v", tok.Error())
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			close(stop)
			flooded.Wait()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "good-msgs/s")
			b.ReportMetric((messagesOf(b, m)-floodBefore-float64(b.N))/elapsed.Seconds(), "flood-msgs/s")
			b.ReportMetric(deadLetterCount(b, m, ingest.ReasonRateLimited)/elapsed.Seconds(), "rate-limited/s")
		})
	}
}

func messagesOf(tb testing.TB, m *ingest.Metrics) float64 {
	return value(tb, m.Messages.WithLabelValues("telemetry"))
}

func startBenchBroker(tb testing.TB, in *ingest.Ingester) string {
	tb.Helper()
	br, err := ingest.NewBroker(in, ingest.BrokerOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	for br.Ready() != nil {
		time.Sleep(time.Millisecond) // a benchmark's setup, polling until the broker serves
	}
	return br.Addr().String()
}

func benchClient(tb testing.TB, addr, id string) paho.Client {
	tb.Helper()
	c, err := mqttConnect(addr, id)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Disconnect(50) })
	return c
}
