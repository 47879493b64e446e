package rules_test

import (
	"context"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// BenchmarkBacktest times one backtest run of the example rules, scored
// against a failure a device: "43200_samples" is one device a minute for 30
// days; "10000_devices_8_days" 10,000 devices every 5 minutes for 8 days
// (23 million samples, made as they are replayed, not held in memory).
func BenchmarkBacktest(b *testing.B) {
	for _, c := range []struct {
		name            string
		devices         int
		step, span      time.Duration
		samplesExpected int
	}{
		{"43200_samples", 1, time.Minute, 30 * 24 * time.Hour, 43_200},
		{"10000_devices_8_days", 10_000, 5 * time.Minute, 8 * 24 * time.Hour, 10_000 * 8 * 24 * 12},
	} {
		b.Run(c.name, func(b *testing.B) {
			set := benchSet(b)
			start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
			end := start.Add(c.span)
			src := func(ctx context.Context, fn func(proactive.Sample) error) error {
				i := 0
				for t := start; t.Before(end); t = t.Add(c.step) {
					for d := range c.devices {
						if err := fn(benchSample(d, t, i)); err != nil {
							return err
						}
					}
					i++
					if i%1024 == 0 && ctx.Err() != nil {
						return ctx.Err()
					}
				}
				return nil
			}
			failures := make([]rules.Failure, c.devices)
			for d := range failures {
				failures[d] = rules.Failure{Device: benchSample(d, end, 0).Device, Time: end.Add(-time.Duration(d%48) * time.Hour), Component: "compressor"}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rep, err := rules.Backtest(b.Context(), set, src, rules.BacktestOptions{From: start, To: end, Failures: failures})
				if err != nil {
					b.Fatal(err)
				}
				if rep.Samples != int64(c.samplesExpected) {
					b.Fatalf("%d samples, want %d", rep.Samples, c.samplesExpected)
				}
			}
			b.ReportMetric(float64(c.samplesExpected)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
		})
	}
}
