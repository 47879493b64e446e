package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
)

// BenchmarkEventIngest measures the ingest side of device events, one event
// per message as devices send them: "decode" is DecodeEvents alone;
// "pipeline" is Handle through batching to a writer that discards the batch
// and the ack, and reports messages per second and CPU per event. The
// line-protocol encoding and the write are influx's (BenchmarkWrite/events).
func BenchmarkEventIngest(b *testing.B) {
	payload := []byte(`{"ts": 1763791200000, "code": "E101", "component": "compressor", "severity": "error", "text": "overcurrent trip"}`)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		received := time.Now()
		cpu0 := processCPU(b)
		for b.Loop() {
			if _, errs := ingest.DecodeEvents(payload, received); errs != nil {
				b.Fatal(errs)
			}
		}
		b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/event")
	})
	b.Run("pipeline", func(b *testing.B) {
		benchHandle(b, ingest.Options{EventSink: func(context.Context, []proactive.Event) {}},
			func(int) string { return "devices/fridge-0001/events" }, payload, "cpu-ns/event")
	})
}

// processCPU is the CPU time this process has used, user and system: on a
// shared machine a steadier figure than the elapsed time.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTelemetryIngest is BenchmarkEventIngest for telemetry: one
// reading of five metrics per message, from 1000 devices in turn, Handle
// through batching to a writer that discards the batch, and the ack. It is
// the ingester's share of BenchmarkIngest (cmd/proactive) without the MQTT
// client, the line protocol and the HTTP write.
func BenchmarkTelemetryIngest(b *testing.B) {
	const devices = 1000
	topics := make([]string, devices)
	for d := range topics {
		topics[d] = fmt.Sprintf("devices/fridge-%04d/telemetry", d)
	}
	payload := []byte(`{"ts": 1763791200000, "metrics": {"compressor_current": 4.52, "cabinet_temp": 3.61, "ambient_temp": 21.5, "door_open": false, "power_w": 131.0}}`)
	benchHandle(b, ingest.Options{Sink: func(context.Context, []proactive.Sample, []proactive.DeviceStatus) {}},
		func(i int) string { return topics[i%devices] }, payload, "cpu-ns/msg")
}

// benchHandle runs an ingester with opts and a writer that discards, hands
// it one message of payload per iteration on topic(i), waits for every ack,
// and reports messages per second and CPU per message under unit.
func benchHandle(b *testing.B, opts ingest.Options, topic func(int) string, payload []byte, unit string) {
	opts.Writer = batchWriterFunc(func(context.Context, []proactive.Sample, []proactive.DeviceStatus, []proactive.Event) error {
		return nil
	})
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.Metrics = ingest.NewMetrics(prometheus.NewRegistry())
	in := ingest.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	var acked sync.WaitGroup
	ack := func() { acked.Done() }
	b.ReportAllocs()
	cpu0 := processCPU(b)
	i := 0
	for b.Loop() {
		acked.Add(1)
		msg := ingest.Message{Topic: topic(i), Payload: payload, Ack: ack, Nack: ack}
		i++
		if err := in.Handle(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	acked.Wait()
	cpu := processCPU(b) - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), unit)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
