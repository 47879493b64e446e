package rules_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/proactivehq/proactive/rules"
)

// BenchmarkSnapshot measures Engine.Snapshot and Engine.Restore with the
// example rule set for 10,000 and 100,000 devices of 3 or 4 metrics (half
// fridges, half heat pumps, as in BenchmarkRuleEvaluations), every window
// full: each bucket holds the samples of one every 10 minutes (one for
// buckets of 10 minutes or less), loaded through RebuildHistory from
// aggregates made up in memory. It reports the snapshot's size and the
// time to write it to memory and restore it. Run it with -benchtime 1x.
func BenchmarkSnapshot(b *testing.B) {
	specs, probs := rules.LoadFiles([]string{"examples/*.yaml"})
	if probs != nil {
		b.Fatal(probs)
	}
	end := time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC)
	for _, devices := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("devices=%d", devices), func(b *testing.B) {
			metricsOf := make([]map[string]float64, 2)
			for d := range 2 {
				metricsOf[d] = benchSample(d, end, 0).Metrics
			}
			h := rules.History{
				Samples: func(from, to time.Time) rules.SampleSource { return rules.SliceSource(nil) },
				Buckets: func(ctx context.Context, reqs []rules.BucketRequest, fn func(rules.BucketAggregate) error) error {
					for _, r := range reqs {
						width := (r.Length + rules.Buckets - 1) / rules.Buckets
						n := max(1, int(width/(10*time.Minute)))
						for d := range devices {
							if _, ok := metricsOf[d%2][r.Metric]; !ok {
								continue
							}
							s := benchSample(d, end, 0)
							for start := r.From; start.Before(r.To); start = start.Add(width) {
								a := rules.BucketAggregate{Device: s.Device, Model: s.Model, Metric: r.Metric, Length: r.Length,
									Start: start, Count: uint32(n), First: 4, Last: 4.1, Min: 3.9, Max: 4.2,
									FirstTime: start, LastTime: start.Add(time.Duration(n-1) * width / time.Duration(n))}
								if n > 1 {
									a.S1, a.S2, a.T1, a.T2, a.TV = 0.3, 0.05, 1e4, 1e8, 20
								}
								if err := fn(a); err != nil {
									return err
								}
							}
						}
					}
					return nil
				},
			}
			e := rules.New(rules.Options{})
			if probs := e.Load(specs); probs != nil {
				b.Fatal(probs)
			}
			if _, err := e.RebuildHistory(b.Context(), h, end); err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			var info rules.SnapshotInfo
			var write, restore time.Duration
			for b.Loop() {
				buf.Reset()
				start := time.Now()
				var err error
				if info, err = e.Snapshot(&buf); err != nil {
					b.Fatal(err)
				}
				write += time.Since(start)
				r := rules.New(rules.Options{})
				if probs := r.Load(specs); probs != nil {
					b.Fatal(probs)
				}
				start = time.Now()
				got, err := r.Restore(bytes.NewReader(buf.Bytes()))
				if err != nil || got.Devices != devices {
					b.Fatal(err, got.Devices)
				}
				restore += time.Since(start)
			}
			b.ReportMetric(float64(info.Bytes)/1e6, "MB")
			b.ReportMetric(float64(info.Bytes)/float64(devices), "bytes/device")
			b.ReportMetric(float64(info.Windows)/float64(devices), "windows/device")
			b.ReportMetric(write.Seconds()/float64(b.N), "write-s")
			b.ReportMetric(restore.Seconds()/float64(b.N), "restore-s")
		})
	}
}
