package rules_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// BenchmarkPartitionRestore moves one partition holding 10k or 100k
// devices (one metric, windows of 1h and 7d, a week of samples) between
// two engines: the old owner's revoke (snapshot written to disk) and the
// new owner's assignment (snapshot read, gap replayed: none here) are the
// rebalance time the partition adds. It reports both and the snapshot's
// bytes per device (BenchmarkFleetMemory gives the heap per device).
func BenchmarkPartitionRestore(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			end := t0.Add(7 * 24 * time.Hour)
			now := func() time.Time { return end }
			empty := rules.History{Samples: func(from, to time.Time) rules.SampleSource {
				return func(context.Context, func(proactive.Sample) error) error { return nil }
			}}
			dir := b.TempDir()
			opts := rules.PartitionOptions{Dir: dir, History: empty, Now: now}
			all := func(proactive.DeviceID) int32 { return 0 }
			var log partAlerts
			a := runPartEngine(b, &log, now)
			pa := rules.NewPartitions(a, opts)
			ctx := context.Background()
			pa.Assign(ctx, []int32{0}, all)
			for ts := t0; ts.Before(end); ts = ts.Add(6 * time.Hour) {
				batch := make([]proactive.Sample, 0, n)
				for d := range n {
					batch = append(batch, proactive.Sample{Device: proactive.DeviceID(fmt.Sprintf("device-%d", d)), Time: ts,
						Metrics: map[string]float64{"current": 1 + float64(d%5)/8}})
				}
				a.Consume(ctx, batch, nil)
			}
			if err := a.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			var revoke, assign time.Duration
			for range b.N {
				start := time.Now()
				pa.Revoke(ctx, []int32{0}, all)
				revoke += time.Since(start)
				c := runPartEngine(b, &log, now)
				pc := rules.NewPartitions(c, opts)
				start = time.Now()
				pc.Assign(ctx, []int32{0}, all)
				assign += time.Since(start)
				pa.Assign(ctx, []int32{0}, all) // back to a
			}
			st, err := os.Stat(filepath.Join(dir, "partition-0.snap"))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(revoke.Milliseconds())/float64(b.N), "ms-revoke")
			b.ReportMetric(float64(assign.Milliseconds())/float64(b.N), "ms-assign")
			b.ReportMetric(float64(st.Size())/float64(n), "snapshot-B/device")
		})
	}
}
