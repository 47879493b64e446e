package ingest_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
)

// countingWriter stores nothing and counts the samples.
type countingWriter struct{ n atomic.Int64 }

func (w *countingWriter) Write(_ context.Context, s []proactive.Sample, _ []proactive.DeviceStatus, _ []proactive.Event) error {
	w.n.Add(int64(len(s)))
	return nil
}

// BenchmarkKafkaIngest is one instance's intake through Kafka (kfake, in
// process): b.N telemetry records of 10,000 devices, 3 metrics each,
// consumed by the group, decoded, handed to a writer that keeps nothing and
// a sink, committed after both. It reports records per second: the
// instance's ceiling apart from InfluxDB and the rules.
func BenchmarkKafkaIngest(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(12, ingest.DefaultKafkaTopic, ingest.DefaultKafkaEventsTopic))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	for i := range b.N {
		id := fmt.Sprintf("dev-%d", i%10000)
		prod.Produce(b.Context(), &kgo.Record{Topic: ingest.DefaultKafkaTopic, Key: []byte(id),
			Value:   fmt.Appendf(nil, `{"ts": %d, "metrics": {"current": %d.5, "temp": 4.25, "door": true}}`, t0+int64(i), i%7),
			Headers: []kgo.RecordHeader{{Key: "topic", Value: []byte("devices/" + id + "/telemetry")}}}, nil)
	}
	if err := prod.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	w := &countingWriter{}
	var sunk atomic.Int64
	in := ingest.New(ingest.Options{Writer: w, Sink: func(_ context.Context, s []proactive.Sample, _ []proactive.DeviceStatus) { sunk.Add(int64(len(s))) }})
	k, err := ingest.NewKafka(in, ingest.KafkaOptions{Brokers: c.ListenAddrs(), Group: "bench", ClientOptions: fastGroup})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	kctx, kcancel := context.WithCancel(context.Background())
	done, kdone := make(chan struct{}), make(chan struct{})
	b.ResetTimer()
	start := time.Now()
	go func() { defer close(done); _ = in.Run(ctx) }()
	go func() { defer close(kdone); _ = k.Run(kctx) }()
	tick := time.NewTicker(time.Millisecond)
	for sunk.Load() < int64(b.N) {
		<-tick.C
	}
	took := time.Since(start)
	b.StopTimer()
	tick.Stop()
	cancel()
	<-done
	kcancel()
	<-kdone
	b.ReportMetric(float64(b.N)/took.Seconds(), "records/s")
}
