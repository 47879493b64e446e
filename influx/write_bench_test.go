package influx_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/influx"
)

// benchBatch is a batch as the ingester sends it under load: 5000 samples of
// five metrics from 1000 devices.
func benchBatch() []proactive.Sample {
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	out := make([]proactive.Sample, 5000)
	for i := range out {
		out[i] = proactive.Sample{Device: proactive.DeviceID(fmt.Sprintf("fridge-%04d", i%1000)), Model: "fridge-a200",
			Time: at.Add(time.Duration(i) * time.Millisecond), Metrics: map[string]float64{
				"compressor_current": 4 + float64(i%17)/10, "cabinet_temp": 3.5 + float64(i%5)/10, "door_open": float64(i % 2),
				"evaporator_temp": -20.25, "power": 180 + float64(i%31)}}
	}
	return out
}

// BenchmarkWrite measures the writer's CPU per point, encoding and sending a
// batch to a server that discards it, plain and gzipped.
func BenchmarkWrite(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	batch := benchBatch()
	for _, c := range []struct {
		name        string
		compression influx.Compression
	}{{"plain", influx.CompressNone}, {"gzip", influx.CompressGzip}} {
		b.Run(c.name, func(b *testing.B) {
			s := influx.New(influx.Options{URL: srv.URL, Bucket: "b", Compression: c.compression})
			b.Cleanup(s.Close)
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				if err := s.Write(b.Context(), batch, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/point")
			b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N*len(batch)), "cpu-ns/point")
		})
	}
}

// processCPU is the CPU time this process has used, user and system: on a
// shared machine a steadier figure than the elapsed time. The server that
// discards the writes runs in the process too.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWriteEvents measures the writer's CPU per device event, encoding
// and sending batches of 5000 events from 1000 devices to a server that
// discards them, plain: the second half of BenchmarkEventIngest in ingest.
func BenchmarkWriteEvents(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	batch := make([]proactive.Event, 5000)
	for i := range batch {
		batch[i] = proactive.Event{Device: proactive.DeviceID(fmt.Sprintf("fridge-%04d", i%1000)), Model: "fridge-a200",
			Time: at.Add(time.Duration(i) * time.Millisecond), Code: fmt.Sprintf("E%d", 100+i%7), Component: "compressor",
			Severity: "error", Text: "overcurrent trip"}
	}
	s := influx.New(influx.Options{URL: srv.URL, Bucket: "b", Compression: influx.CompressNone})
	b.Cleanup(s.Close)
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		if err := s.Write(b.Context(), nil, nil, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N*len(batch)), "cpu-ns/event")
}
