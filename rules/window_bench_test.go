package rules

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

const benchWeek = 7 * 24 * time.Hour

// benchWindow returns a 7d window filled with a week of 1-minute samples
// (168 a bucket) of a noisy, slowly rising metric, and the time of the last.
func benchWindow(tb testing.TB) (*Window, time.Time) {
	tb.Helper()
	return benchWindowOf(tb, benchWeek)
}

// benchWindowOf returns a window of the given length filled, like
// benchWindow, with length's worth of 1-minute samples.
func benchWindowOf(tb testing.TB, length time.Duration) (*Window, time.Time) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	w := NewWindow(length, time.Minute)
	at := winBase
	for i := range int(length / time.Minute) {
		if !w.Add(at, 4+float64(i)/10080+rng.NormFloat64()*0.2) {
			tb.Fatal("Add refused")
		}
		at = at.Add(time.Minute)
	}
	return w, at.Add(-time.Minute)
}

// BenchmarkWindowAdd adds 1-minute samples to a full 7d window: each op
// adds one, and every 168th opens a bucket and clears the oldest.
func BenchmarkWindowAdd(b *testing.B) {
	w, at := benchWindow(b)
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Minute)
		w.Add(at, 4.5)
	}
}

func benchmarkQuery(b *testing.B, f func(w *Window, now time.Time) float64) {
	w, now := benchWindow(b)
	b.ReportAllocs()
	var sink float64
	for b.Loop() {
		sink += f(w, now)
	}
	_ = sink
}

// BenchmarkWindowAvg measures Avg over a full 7d window.
func BenchmarkWindowAvg(b *testing.B) { benchmarkQuery(b, (*Window).Avg) }

// BenchmarkWindowSlope measures Slope over a full 7d window.
func BenchmarkWindowSlope(b *testing.B) { benchmarkQuery(b, (*Window).Slope) }

// BenchmarkWindowStddev measures Stddev over a full 7d window.
func BenchmarkWindowStddev(b *testing.B) { benchmarkQuery(b, (*Window).Stddev) }

// BenchmarkWindowPercentile measures the 90th percentile over a full 7d
// window, the estimate that searches the buckets.
func BenchmarkWindowPercentile(b *testing.B) {
	benchmarkQuery(b, func(w *Window, now time.Time) float64 { return w.Percentile(now, 90) })
}

// BenchmarkWindowForecast measures Forecast over a full 7d window.
func BenchmarkWindowForecast(b *testing.B) {
	benchmarkQuery(b, func(w *Window, now time.Time) float64 {
		d, _ := w.Forecast(now, 9)
		return d.Seconds()
	})
}

// BenchmarkWindowAddThenQuery measures what the rule engine does for each
// sample: add the next 1-minute sample to a full window, then query at the
// sample's time. The Add case is the Add alone, to subtract.
//
// On 7d (168 samples a bucket) a bucket closes every 168th op and the next
// query recomputes the aggregates of the closed buckets; on 1h (one sample
// a bucket) every op closes one, the case with nothing to amortise.
func BenchmarkWindowAddThenQuery(b *testing.B) {
	forecast := func(w *Window, now time.Time) float64 {
		d, _ := w.Forecast(now, 9)
		return d.Seconds()
	}
	queries := []struct {
		name string
		f    func(w *Window, now time.Time) float64
	}{
		{"Add", func(*Window, time.Time) float64 { return 0 }},
		{"Avg", (*Window).Avg},
		{"Stddev", (*Window).Stddev},
		{"Slope", (*Window).Slope},
		{"Forecast", forecast},
		{"Avg+Slope+Stddev", func(w *Window, now time.Time) float64 {
			return w.Avg(now) + w.Slope(now) + w.Stddev(now)
		}},
	}
	for _, length := range []struct {
		name string
		d    time.Duration
	}{{"7d", benchWeek}, {"1h", time.Hour}} {
		for _, q := range queries {
			b.Run(length.name+"/"+q.name, func(b *testing.B) {
				w, at := benchWindowOf(b, length.d)
				b.ReportAllocs()
				var sink float64
				for i := 0; b.Loop(); i++ {
					at = at.Add(time.Minute)
					w.Add(at, 4+0.2*math.Sin(float64(i)))
					sink += q.f(w, at)
				}
				_ = sink
			})
		}
	}
}

// BenchmarkWindowMemory allocates 10,000 7d windows, fills each with a week
// of 1-minute samples and reports the heap they hold per window, as
// runtime.MemStats counts it (the allocation's size class included).
func BenchmarkWindowMemory(b *testing.B) {
	const windows = 10_000
	var perWindow float64
	var size int
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ws := make([]*Window, windows)
		for i := range ws {
			w := NewWindow(benchWeek, time.Minute)
			at := winBase
			for j := range int(benchWeek / time.Minute) {
				w.Add(at, float64(i+j%100))
				at = at.Add(time.Minute)
			}
			ws[i] = w
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		// The slice of pointers is the caller's, not the windows'.
		held := int64(after.HeapAlloc) - int64(before.HeapAlloc) - int64(windows*8)
		perWindow = float64(held) / windows
		size = ws[0].SizeBytes()
		runtime.KeepAlive(ws)
	}
	b.ReportMetric(perWindow, "bytes/window")
	b.ReportMetric(float64(size), "SizeBytes/window")
}
