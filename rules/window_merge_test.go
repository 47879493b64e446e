package rules

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// A window loaded with aggregates of its buckets older than a split, built
// from the samples as StoredHistory builds them, and fed the later samples,
// answers every query bit for bit as the window fed every sample.
func TestMergeMatchesAdd(t *testing.T) {
	for _, length := range []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 90 * time.Second} {
		t.Run(length.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, uint64(length)))
			start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			// Irregular steps, about 4 samples a bucket, a rising trend,
			// large values plus noise.
			var ts []time.Time
			var vs []float64
			for at := start; at.Before(start.Add(2 * length)); at = at.Add(time.Duration(rng.Int64N(int64(length/120))) + 1) {
				ts = append(ts, at)
				vs = append(vs, 1e6+float64(at.Sub(start))/float64(length)+rng.NormFloat64())
			}
			live := NewWindow(length, 5*time.Minute)
			for i := range ts {
				live.Add(ts[i], vs[i])
			}
			width, _ := geometry(length)
			for _, frac := range []float64{0.1, 0.5, 0.97} {
				split := floorDiv(ts[int(frac*float64(len(ts)))].UnixNano(), width) * width
				rebuilt := NewWindow(length, 5*time.Minute)
				bb := newBucketBuilder(length)
				merge := func(a BucketAggregate, ok bool) {
					if ok && !rebuilt.Merge(a) {
						t.Fatalf("merge of %+v refused", a)
					}
				}
				i := 0
				for ; i < len(ts) && ts[i].UnixNano() < split; i++ {
					merge(bb.add(ts[i].UnixNano(), vs[i]))
				}
				merge(bb.flush())
				for ; i < len(ts); i++ {
					rebuilt.Add(ts[i], vs[i])
				}
				for _, now := range []time.Time{ts[len(ts)-1], ts[len(ts)-1].Add(length / 3), ts[len(ts)-1].Add(-length / 7)} {
					for name, q := range map[string]func(w *Window) float64{
						"count": func(w *Window) float64 { return w.Count(now) }, "sum": func(w *Window) float64 { return w.Sum(now) },
						"avg": func(w *Window) float64 { return w.Avg(now) }, "min": func(w *Window) float64 { return w.Min(now) },
						"max": func(w *Window) float64 { return w.Max(now) }, "last": func(w *Window) float64 { return w.Last(now) },
						"delta": func(w *Window) float64 { return w.Delta(now) }, "rate": func(w *Window) float64 { return w.Rate(now) },
						"stddev": func(w *Window) float64 { return w.Stddev(now) }, "slope": func(w *Window) float64 { return w.Slope(now) },
						"p90":      func(w *Window) float64 { return w.Percentile(now, 90) },
						"forecast": func(w *Window) float64 { d, _ := w.Forecast(now, 1e6+3); return float64(d) },
					} {
						if got, want := q(rebuilt), q(live); math.Float64bits(got) != math.Float64bits(want) {
							t.Errorf("split at %.0f%%, %s at %v: rebuilt %v, live %v", frac*100, name, now, got, want)
						}
					}
				}
			}
		})
	}
}

// Aggregates of parts of one bucket merge into it: count, extremes and
// the ends exactly, sums to float32 rounding.
func TestMergeCombinesParts(t *testing.T) {
	const length = 24 * time.Hour
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) // a bucket edge
	vals := []float64{5, 7, 3, 9, 4, 6}
	whole := NewWindow(length, 0)
	odd, even := newBucketBuilder(length), newBucketBuilder(length)
	for i, v := range vals {
		ts := at.Add(time.Duration(i) * time.Minute)
		whole.Add(ts, v)
		if i%2 == 0 {
			even.add(ts.UnixNano(), v)
		} else {
			odd.add(ts.UnixNano(), v)
		}
	}
	parts := NewWindow(length, 0)
	for _, bb := range []*bucketBuilder{odd, even} { // later-starting part first
		a, _ := bb.flush()
		if !parts.Merge(a) {
			t.Fatalf("merge of %+v refused", a)
		}
	}
	now := at.Add(10 * time.Minute)
	for _, c := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"count", parts.Count(now), whole.Count(now), 0},
		{"min", parts.Min(now), whole.Min(now), 0},
		{"max", parts.Max(now), whole.Max(now), 0},
		{"delta", parts.Delta(now), whole.Delta(now), 0},
		{"last", parts.Last(now), whole.Last(now), 0},
		{"avg", parts.Avg(now), whole.Avg(now), 1e-6},
		{"stddev", parts.Stddev(now), whole.Stddev(now), 1e-6},
		{"slope", parts.Slope(now), whole.Slope(now), 1e-9},
	} {
		if math.Abs(c.got-c.want) > c.tol*math.Abs(c.want) {
			t.Errorf("%s: merged parts %v, whole %v", c.name, c.got, c.want)
		}
	}
	if parts.Merge(BucketAggregate{Length: length, Count: 1, FirstTime: at.Add(-8 * 24 * time.Hour), LastTime: at.Add(-8 * 24 * time.Hour)}) {
		t.Error("merged a bucket older than the ring holds")
	}
	if parts.Merge(BucketAggregate{Length: length, Count: 2, FirstTime: at, LastTime: at.Add(time.Hour)}) {
		t.Error("merged an aggregate spanning two buckets")
	}
}
