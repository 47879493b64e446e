package rules

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// winBase is on a whole minute, so it starts a bucket of every window whose
// bucket width divides a minute (1h: 60 s buckets).
var winBase = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// winSample is a sample at winBase+at.
type winSample struct {
	at time.Duration
	v  float64
}

func mustFillWindow(tb testing.TB, w *Window, samples []winSample) {
	tb.Helper()
	for _, s := range samples {
		if !w.Add(winBase.Add(s.at), s.v) {
			tb.Fatalf("Add(%v, %v) refused", s.at, s.v)
		}
	}
}

// sameFloat reports whether got is want within rel relative error (absolute
// below 1), NaN matching NaN.
func sameFloat(got, want, rel float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	return math.Abs(got-want) <= rel*max(math.Abs(want), 1)
}

// winFuncs are the aggregate functions taking only now, by name.
var winFuncs = []struct {
	name string
	f    func(*Window, time.Time) float64
}{
	{"Count", (*Window).Count},
	{"Sum", (*Window).Sum},
	{"Avg", (*Window).Avg},
	{"Min", (*Window).Min},
	{"Max", (*Window).Max},
	{"Last", (*Window).Last},
	{"Delta", (*Window).Delta},
	{"Rate", (*Window).Rate},
	{"Slope", (*Window).Slope},
	{"Stddev", (*Window).Stddev},
}

// winWant holds expected results in the order of winFuncs.
type winWant [10]float64

func checkWindow(t *testing.T, w *Window, now time.Time, want winWant, rel float64) {
	t.Helper()
	for i, fn := range winFuncs {
		if got := fn.f(w, now); !sameFloat(got, want[i], rel) {
			t.Errorf("%s = %v, want %v", fn.name, got, want[i])
		}
	}
}

var nan = math.NaN()

func TestWindowGeometry(t *testing.T) {
	tests := []struct {
		length   time.Duration
		width    int64
		shift    uint8
		tickNano int64
	}{
		{time.Hour, 60e9, 4, 16},
		{7 * 24 * time.Hour, 10080e9, 12, 4096},
		{10 * time.Second, 166666667, 0, 1}, // 10 s / 60 rounded up
		{4*time.Minute + 17*time.Second, 4283333334, 0, 1},
		{30 * time.Nanosecond, 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.length.String(), func(t *testing.T) {
			w := NewWindow(tt.length, 0)
			if w.Length() != tt.length || w.width != tt.width || w.shift != tt.shift || int64(1)<<w.shift != tt.tickNano {
				t.Fatalf("length %v width %d shift %d, want %v %d %d", w.Length(), w.width, w.shift, tt.length, tt.width, tt.shift)
			}
			// Buckets start at multiples of the width since the epoch.
			at := winBase.Add(1234567891011 * time.Nanosecond)
			w.Add(at, 1)
			start := w.head * w.width
			if ns := at.UnixNano(); start > ns || ns >= start+w.width || start%w.width != 0 {
				t.Errorf("sample at %d in bucket starting %d", ns, start)
			}
		})
	}
	if w := NewWindow(7*24*time.Hour, time.Hour); w.SizeBytes() > 4096 {
		t.Errorf("SizeBytes = %d, want at most 4096", w.SizeBytes())
	}
	defer func() {
		if recover() == nil {
			t.Error("NewWindow(0, 0) did not panic")
		}
	}()
	NewWindow(0, 0)
}

func TestWindowEmpty(t *testing.T) {
	w := NewWindow(time.Hour, time.Minute)
	check := func(t *testing.T) {
		checkWindow(t, w, winBase, winWant{0, 0, nan, nan, nan, nan, nan, nan, nan, nan}, 0)
		for _, p := range []float64{0, 50, 100} {
			if got := w.Percentile(winBase, p); !math.IsNaN(got) {
				t.Errorf("Percentile(%v) = %v, want NaN", p, got)
			}
		}
		if d, ok := w.Forecast(winBase, 1); ok {
			t.Errorf("Forecast = %v, true; want false", d)
		}
	}
	t.Run("new", func(t *testing.T) {
		check(t)
		if !w.LastTime().IsZero() {
			t.Errorf("LastTime = %v, want zero", w.LastTime())
		}
	})
	t.Run("all expired", func(t *testing.T) {
		w.Add(winBase.Add(-2*time.Hour), 7)
		check(t)
	})
}

func TestWindowAggregates(t *testing.T) {
	tests := []struct {
		name    string
		samples []winSample
		now     time.Duration
		// Count, Sum, Avg, Min, Max, Last, Delta, Rate, Slope, Stddev.
		want winWant
	}{
		{
			name:    "one sample",
			samples: []winSample{{10 * time.Second, 5}},
			now:     10 * time.Second,
			want:    winWant{1, 5, 5, 5, 5, 5, 0, nan, nan, 0},
		},
		{
			name:    "one bucket",
			samples: []winSample{{10 * time.Second, 1}, {20 * time.Second, 2}, {30 * time.Second, 4}},
			now:     30 * time.Second,
			// t 10,20,30 → Sxx 200, Sxy 30; deviations -4/3,-1/3,5/3.
			want: winWant{3, 7, 7.0 / 3, 1, 4, 4, 3, 0.15, 0.15, math.Sqrt(14.0 / 9)},
		},
		{
			name:    "one bucket, earliest arriving last",
			samples: []winSample{{30 * time.Second, 4}, {20 * time.Second, 2}, {10 * time.Second, 1}},
			now:     30 * time.Second,
			want:    winWant{3, 7, 7.0 / 3, 1, 4, 4, 3, 0.15, 0.15, math.Sqrt(14.0 / 9)},
		},
		{
			name:    "across buckets",
			samples: []winSample{{0, 10}, {90 * time.Second, 20}, {150 * time.Second, 60}},
			now:     150 * time.Second,
			// t 0,90,150, mean 80; v mean 30 → Sxx 11400, Sxy 3600.
			want: winWant{3, 90, 30, 10, 60, 60, 50, 50.0 / 150, 3600.0 / 11400, math.Sqrt(1400.0 / 3)},
		},
		{
			name:    "across buckets, out of order",
			samples: []winSample{{150 * time.Second, 60}, {0, 10}, {90 * time.Second, 20}},
			now:     150 * time.Second,
			want:    winWant{3, 90, 30, 10, 60, 60, 50, 50.0 / 150, 3600.0 / 11400, math.Sqrt(1400.0 / 3)},
		},
		{
			name: "bucket edges",
			// 60 s and 120 s start buckets 1 and 2; 60s-16ns is the last
			// tick of bucket 0 (a tick is 16 ns for 1h).
			samples: []winSample{{60*time.Second - 16, 1}, {60 * time.Second, 2}, {120 * time.Second, 3}},
			now:     120 * time.Second,
			want:    winWant{3, 6, 2, 1, 3, 3, 2, 2.0 / (60 + 16e-9), 0.025, math.Sqrt(2.0 / 3)},
		},
		{
			name:    "same time twice",
			samples: []winSample{{5 * time.Second, 1}, {5 * time.Second, 3}},
			now:     5 * time.Second,
			// Same time: the later arrival is the newest.
			want: winWant{2, 4, 2, 1, 3, 3, 2, nan, nan, 1},
		},
		{
			name:    "large values with noise",
			samples: []winSample{{time.Second, 1e6 + 1}, {2 * time.Second, 1e6 + 2}, {3 * time.Second, 1e6 + 3}},
			now:     3 * time.Second,
			want:    winWant{3, 3e6 + 6, 1e6 + 2, 1e6 + 1, 1e6 + 3, 1e6 + 3, 2, 1, 1, 0.816496580927726},
		},
		{
			name:    "large values with noise across buckets",
			samples: []winSample{{time.Minute, 1e6 + 1}, {2 * time.Minute, 1e6 + 2}, {3 * time.Minute, 1e6 + 3}},
			now:     3 * time.Minute,
			want:    winWant{3, 3e6 + 6, 1e6 + 2, 1e6 + 1, 1e6 + 3, 1e6 + 3, 2, 1.0 / 60, 1.0 / 60, 0.816496580927726},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWindow(time.Hour, 5*time.Minute)
			mustFillWindow(t, w, tt.samples)
			checkWindow(t, w, winBase.Add(tt.now), tt.want, 1e-12)
		})
	}
}

func TestWindowExpiry(t *testing.T) {
	w := NewWindow(time.Hour, 0)
	// Bucket 0 holds the first two samples, bucket 1 the third.
	mustFillWindow(t, w, []winSample{{0, 1}, {30 * time.Second, 2}, {time.Minute, 4}})
	tests := []struct {
		now              time.Duration
		count, sum, last float64
	}{
		{time.Minute, 3, 7, 4},
		{time.Hour, 3, 7, 4},
		// 30 s is older than the window from 1h30s on, but its bucket
		// overlaps the window until 1h1m: up to one width of older data.
		{time.Hour + 30*time.Second, 3, 7, 4},
		{time.Hour + time.Minute - 1, 3, 7, 4},
		{time.Hour + time.Minute, 1, 4, 4},
		{time.Hour + 2*time.Minute - 1, 1, 4, 4},
		{time.Hour + 2*time.Minute, 0, 0, nan},
		// Before the newest sample: later buckets are not seen.
		{59 * time.Second, 2, 3, 2},
		{-time.Nanosecond, 0, 0, nan},
	}
	for _, tt := range tests {
		t.Run(tt.now.String(), func(t *testing.T) {
			now := winBase.Add(tt.now)
			if got := w.Count(now); got != tt.count {
				t.Errorf("Count = %v, want %v", got, tt.count)
			}
			if got := w.Sum(now); got != tt.sum {
				t.Errorf("Sum = %v, want %v", got, tt.sum)
			}
			if got := w.Last(now); !sameFloat(got, tt.last, 0) {
				t.Errorf("Last = %v, want %v", got, tt.last)
			}
		})
	}
	t.Run("a later sample in now's bucket is seen", func(t *testing.T) {
		if got := w.Last(winBase.Add(10 * time.Second)); got != 2 {
			t.Errorf("Last at 10s = %v, want 2 (the sample at 30s)", got)
		}
	})
	t.Run("advancing clears the expired bucket", func(t *testing.T) {
		at := winBase.Add(time.Hour + time.Minute)
		if !w.Add(at, 8) {
			t.Fatal("Add refused")
		}
		if got := w.Count(at); got != 2 {
			t.Errorf("Count = %v, want 2 (the samples at 1m and 1h1m)", got)
		}
		// Bucket 0's slot now holds bucket 61; the ring no longer has
		// bucket 0 even for a query in the past.
		if got := w.Count(winBase.Add(30 * time.Second)); got != 0 {
			t.Errorf("Count at 30s = %v, want 0", got)
		}
	})
}

func TestWindowLateSamples(t *testing.T) {
	tests := []struct {
		name      string
		length    time.Duration
		tolerance time.Duration
		samples   []winSample
		accepted  []bool
		now       time.Duration
		count     float64
		sum       float64
		delta     float64
	}{
		{
			name:   "within tolerance land in their buckets",
			length: time.Hour, tolerance: 5 * time.Minute,
			samples:  []winSample{{10 * time.Minute, 1}, {6 * time.Minute, 2}, {5 * time.Minute, 3}, {5*time.Minute - 1, 100}},
			accepted: []bool{true, true, true, false},
			now:      10 * time.Minute,
			// Newest by time is 10m (1), oldest 5m (3).
			count: 3, sum: 6, delta: -2,
		},
		{
			name:   "zero tolerance allows only the newest time again",
			length: time.Hour, tolerance: 0,
			samples:  []winSample{{time.Minute, 1}, {time.Minute, 2}, {time.Minute - 1, 3}, {2 * time.Minute, 4}},
			accepted: []bool{true, true, false, true},
			now:      2 * time.Minute,
			count:    3, sum: 7, delta: 3,
		},
		{
			name:   "tolerance beyond the ring",
			length: time.Hour, tolerance: 3 * time.Hour,
			// The ring holds buckets 60..120 once the newest is at 2h.
			samples:  []winSample{{2 * time.Hour, 1}, {time.Hour, 2}, {time.Hour - 1, 3}, {30 * time.Minute, 4}},
			accepted: []bool{true, true, false, false},
			now:      2 * time.Hour,
			count:    2, sum: 3, delta: -1,
		},
		{
			name:   "a far future sample advances",
			length: time.Hour, tolerance: 5 * time.Minute,
			samples:  []winSample{{10 * time.Minute, 1}, {1000 * time.Hour, 2}, {11 * time.Minute, 3}, {1000*time.Hour - time.Minute, 4}},
			accepted: []bool{true, true, false, true},
			now:      1000 * time.Hour,
			count:    2, sum: 6, delta: -2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWindow(tt.length, tt.tolerance)
			var newest time.Time
			for i, s := range tt.samples {
				at := winBase.Add(s.at)
				if got := w.Add(at, s.v); got != tt.accepted[i] {
					t.Errorf("Add(%v) = %v, want %v", s.at, got, tt.accepted[i])
				}
				if tt.accepted[i] && at.After(newest) {
					newest = at
				}
			}
			now := winBase.Add(tt.now)
			if got := w.Count(now); got != tt.count {
				t.Errorf("Count = %v, want %v", got, tt.count)
			}
			if got := w.Sum(now); got != tt.sum {
				t.Errorf("Sum = %v, want %v", got, tt.sum)
			}
			if got := w.Delta(now); got != tt.delta {
				t.Errorf("Delta = %v, want %v", got, tt.delta)
			}
			if !w.LastTime().Equal(newest) {
				t.Errorf("LastTime = %v, want %v", w.LastTime(), newest)
			}
		})
	}
}

func TestWindowForecast(t *testing.T) {
	// line returns 11 samples, one a minute from 0 to 10m, of a + b*i.
	line := func(a, b float64) []winSample {
		s := make([]winSample, 11)
		for i := range s {
			s[i] = winSample{time.Duration(i) * time.Minute, a + b*float64(i)}
		}
		return s
	}
	tests := []struct {
		name      string
		samples   []winSample
		threshold float64
		want      time.Duration
		ok        bool
	}{
		{"rising", line(0, 1), 20, 10 * time.Minute, true},
		{"falling", line(10, -1), -5, 5 * time.Minute, true},
		{"rising, noisy", []winSample{{0, 0}, {time.Minute, 2}, {2 * time.Minute, 1}, {3 * time.Minute, 3}}, 5.1, 3 * time.Minute, true},
		{"flat", line(3, 0), 5, 0, false},
		{"flat at threshold", line(3, 0), 3, 0, false},
		{"crossed during the window", line(0, 1), 5, 0, true},
		{"falling, crossed during the window", line(10, -1), 5, 0, true},
		{"at threshold now", line(0, 1), 10, 0, true},
		{"crossed after the oldest sample", line(0, 1), 0.5, 0, true},
		{"rising away", line(0, 1), -1, 0, false},
		{"falling away", line(10, -1), 11, 0, false},
		{"beyond 100 years", line(0, 1e-9), 1, 0, false},
		{"one sample", []winSample{{0, 1}}, 5, 0, false},
		{"two samples at one time", []winSample{{0, 1}, {0, 2}}, 5, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWindow(time.Hour, 0)
			mustFillWindow(t, w, tt.samples)
			now := winBase.Add(tt.samples[len(tt.samples)-1].at)
			d, ok := w.Forecast(now, tt.threshold)
			if ok != tt.ok || (d-tt.want).Abs() > time.Microsecond {
				t.Errorf("Forecast = %v, %v; want %v, %v", d, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestWindowPercentile(t *testing.T) {
	// perBucket returns the values one bucket (minute) after another.
	perBucket := func(vs ...float64) []winSample {
		s := make([]winSample, len(vs))
		for i, v := range vs {
			s[i] = winSample{time.Duration(i)*time.Minute + 7*time.Second, v}
		}
		return s
	}
	tests := []struct {
		name    string
		samples []winSample
		p       float64
		want    float64
	}{
		{"one per bucket p0", perBucket(5, 1, 4, 2, 3), 0, 1},
		{"one per bucket p25", perBucket(5, 1, 4, 2, 3), 25, 2},
		{"one per bucket p50", perBucket(5, 1, 4, 2, 3), 50, 3},
		{"one per bucket p90", perBucket(5, 1, 4, 2, 3), 90, 4.6},
		{"one per bucket p100", perBucket(5, 1, 4, 2, 3), 100, 5},
		{"one per bucket, even count p50", perBucket(8, -3, 1.5, 40), 50, 4.75},
		{"one per bucket, ties p50", perBucket(2, 2, 1, 2, 9), 50, 2},
		{"one sample", perBucket(7), 33, 7},
		{"two per bucket p50", []winSample{{0, 10}, {time.Second, 1}, {time.Minute, 3}, {61 * time.Second, 4}}, 50, 3.5},
		{"two per bucket p75", []winSample{{0, 10}, {time.Second, 1}, {time.Minute, 3}, {61 * time.Second, 4}}, 75, 5.5},
		// Three samples 1, 2, 4 in one bucket stand for 1, 2.5, 4.
		{"estimate inside a bucket", []winSample{{0, 1}, {time.Second, 2}, {2 * time.Second, 4}}, 50, 2.5},
		{"extreme values p50", perBucket(-math.MaxFloat64, math.MaxFloat64, 0), 50, 0},
		{"extreme values in one bucket", []winSample{{0, -math.MaxFloat64}, {time.Second, math.MaxFloat64}, {2 * time.Second, 5}}, 50, 0},
		{"p out of range", perBucket(1, 2), 100.5, nan},
		{"p negative", perBucket(1, 2), -1, nan},
		{"p NaN", perBucket(1, 2), nan, nan},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWindow(time.Hour, 0)
			mustFillWindow(t, w, tt.samples)
			now := winBase.Add(10 * time.Minute)
			if got := w.Percentile(now, tt.p); !sameFloat(got, tt.want, 1e-12) {
				t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
	t.Run("many equal values", func(t *testing.T) {
		w := NewWindow(time.Hour, 0)
		for i := range 1000 {
			w.Add(winBase.Add(time.Duration(i)*time.Millisecond), 3)
		}
		w.Add(winBase.Add(time.Minute), 5)
		now := winBase.Add(time.Minute)
		for p, want := range map[float64]float64{0: 3, 50: 3, 90: 3, 100: 5} {
			if got := w.Percentile(now, p); got != want {
				t.Errorf("Percentile(%v) = %v, want %v", p, got, want)
			}
		}
	})
}

// bruteWindow computes what a Window should answer at now from the raw
// samples, with the window rounded out to whole buckets as documented.
func bruteWindow(samples []winSample, length time.Duration, width int64, now time.Duration) (want winWant, in []float64) {
	nowNs := winBase.Add(now).UnixNano()
	lo, hi := floorDiv(nowNs-int64(length), width), floorDiv(nowNs, width)
	var seen []winSample
	for _, s := range samples {
		if k := floorDiv(winBase.Add(s.at).UnixNano(), width); k >= lo && k <= hi {
			seen = append(seen, s)
		}
	}
	n := float64(len(seen))
	if n == 0 {
		return winWant{0, 0, nan, nan, nan, nan, nan, nan, nan, nan}, nil
	}
	oldest, newest := seen[0], seen[0]
	var sum, tsum float64
	vmin, vmax := math.Inf(1), math.Inf(-1)
	for _, s := range seen {
		sum += s.v
		tsum += s.at.Seconds()
		vmin, vmax = min(vmin, s.v), max(vmax, s.v)
		if s.at < oldest.at {
			oldest = s
		}
		if s.at >= newest.at {
			newest = s
		}
		in = append(in, s.v)
	}
	mean, tmean := sum/n, tsum/n
	var m2, sxx, sxy float64
	for _, s := range seen {
		dv, dt := s.v-mean, s.at.Seconds()-tmean
		m2 += dv * dv
		sxx += dt * dt
		sxy += dt * dv
	}
	delta := newest.v - oldest.v
	rate, slope := nan, nan
	if span := (newest.at - oldest.at).Seconds(); span > 0 {
		rate = delta / span
	}
	if sxx > 0 {
		slope = sxy / sxx
	}
	return winWant{n, sum, mean, vmin, vmax, newest.v, delta, rate, slope, math.Sqrt(m2 / n)}, in
}

// TestWindowMatchesBruteForce feeds one sample per bucket, at a random time
// in the bucket, and compares every function with a computation over the
// raw samples.
func TestWindowMatchesBruteForce(t *testing.T) {
	tests := []struct {
		name   string
		length time.Duration
		offset float64
	}{
		{"1h", time.Hour, 0},
		{"1h around 1e6", time.Hour, 1e6},
		{"7d", 7 * 24 * time.Hour, 20},
		{"10s", 10 * time.Second, -3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			w := NewWindow(tt.length, 0)
			wns := w.width
			start := floorDiv(winBase.UnixNano(), wns) * wns
			var samples []winSample
			for i := range 3 * ringSize {
				at := time.Unix(0, start+int64(i)*wns+rng.Int64N(wns)).Sub(winBase)
				// A trend of 5 per bucket plus noise.
				v := tt.offset + 5*float64(i) + rng.NormFloat64()*3
				samples = append(samples, winSample{at, v})
				if !w.Add(winBase.Add(at), v) {
					t.Fatalf("Add %d refused", i)
				}
				// Now at the sample and up to two buckets later.
				for _, later := range []time.Duration{0, time.Duration(rng.Int64N(2 * wns))} {
					now := at + later
					want, in := bruteWindow(samples, tt.length, wns, now)
					nowT := winBase.Add(now)
					for j, fn := range winFuncs {
						// Rate depends on the times of two samples only, kept
						// to a tick: 4 µs for 7d.
						rel := 1e-9
						if fn.name == "Rate" {
							rel = 1e-6
						}
						if got := fn.f(w, nowT); !sameFloat(got, want[j], rel) {
							t.Fatalf("sample %d, now %v: %s = %v, want %v", i, now, fn.name, got, want[j])
						}
					}
					slices.Sort(in)
					for _, p := range []float64{0, 10, 50, 90, 100} {
						if got, want := w.Percentile(nowT, p), percentileOf(in, p); !sameFloat(got, want, 1e-12) {
							t.Fatalf("sample %d, now %v: Percentile(%v) = %v, want %v", i, now, p, got, want)
						}
					}
				}
			}
		})
	}
}

// percentileOf is the linear-interpolation percentile of sorted values.
func percentileOf(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return nan
	}
	r := p / 100 * float64(len(sorted)-1)
	i := int(r)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (r-float64(i))*(sorted[i+1]-sorted[i])
}

// TestWindowManySamplesPerBucket feeds irregular bursts of samples, some of
// them late, and checks the functions kept as float32 sums within their
// documented precision, and the others exactly.
func TestWindowManySamplesPerBucket(t *testing.T) {
	tests := []struct {
		name   string
		offset float64
		noise  float64
	}{
		{"temperatures", 4, 0.3},
		{"around 1e6", 1e6, 1},
		{"exact line", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			w := NewWindow(time.Hour, 2*time.Minute)
			var samples []winSample
			at := time.Duration(0)
			for i := range 2000 {
				at += time.Duration(rng.IntN(20_000)+1) * time.Millisecond
				s := winSample{at, tt.offset + at.Seconds()/100 + rng.NormFloat64()*tt.noise}
				if i%7 == 3 { // late, within tolerance
					s.at -= time.Duration(rng.IntN(100_000)) * time.Millisecond
				}
				samples = append(samples, s)
				mustFillWindow(t, w, []winSample{s})
				if i%50 != 0 {
					continue
				}
				now := winBase.Add(at)
				want, in := bruteWindow(samples, time.Hour, w.width, at)
				for j, fn := range winFuncs {
					if got := fn.f(w, now); !sameFloat(got, want[j], 1e-6) {
						t.Fatalf("sample %d: %s = %v, want %v", i, fn.name, got, want[j])
					}
				}
				// The estimate is exactly the percentile of the points the
				// buckets stand for.
				var points []float64
				lo, hi, _, _ := w.bounds(now)
				for _, b := range w.buckets(lo, hi) {
					for j := range b.n {
						points = append(points, b.point(j))
					}
				}
				slices.Sort(points)
				for _, p := range []float64{0, 1, 25, 50, 75, 90, 99, 100} {
					if got, want := w.Percentile(now, p), percentileOf(points, p); got != want {
						t.Fatalf("sample %d: Percentile(%v) = %v, want %v from the bucket points", i, p, got, want)
					}
				}
				slices.Sort(in)
				prev := math.Inf(-1)
				for p := 0.0; p <= 100; p += 5 {
					got := w.Percentile(now, p)
					if got < prev || got < in[0] || got > in[len(in)-1] {
						t.Fatalf("sample %d: Percentile(%v) = %v, after %v, samples in [%v, %v]", i, p, got, prev, in[0], in[len(in)-1])
					}
					prev = got
				}
			}
		})
	}
}

// TestWindowRebuildIsIdentical checks that a window rebuilt from only the
// history the window needs answers exactly like one fed from the start, as
// after a restart or in a backtest.
func TestWindowRebuildIsIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var samples []winSample
	for at := time.Duration(0); at < 3*time.Hour; at += time.Duration(rng.IntN(90)+1) * time.Second {
		samples = append(samples, winSample{at, 20 + rng.NormFloat64()})
	}
	end := samples[len(samples)-1].at
	live := NewWindow(time.Hour, 0)
	mustFillWindow(t, live, samples)
	rebuilt := NewWindow(time.Hour, 0)
	for _, s := range samples {
		if s.at > end-time.Hour-time.Minute {
			mustFillWindow(t, rebuilt, []winSample{s})
		}
	}
	for _, now := range []time.Duration{end, end + 10*time.Minute} {
		for _, fn := range winFuncs {
			t.Run(fn.name, func(t *testing.T) {
				if a, b := fn.f(live, winBase.Add(now)), fn.f(rebuilt, winBase.Add(now)); a != b && !(math.IsNaN(a) && math.IsNaN(b)) {
					t.Errorf("at %v: live %v, rebuilt %v", now, a, b)
				}
			})
		}
	}
	lo, hi, _, _ := live.bounds(winBase.Add(end))
	for k := lo; k <= hi; k++ {
		if *live.at(k) != *rebuilt.at(k) {
			t.Errorf("bucket %d: live %+v, rebuilt %+v", k, *live.at(k), *rebuilt.at(k))
		}
	}
}

func TestWindowDoesNotAllocate(t *testing.T) {
	w := NewWindow(7*24*time.Hour, time.Minute)
	at := winBase
	for range 7 * 24 * 60 {
		w.Add(at, 1)
		at = at.Add(time.Minute)
	}
	tests := []struct {
		name string
		f    func()
	}{
		{"Add", func() { w.Add(at, 2); at = at.Add(time.Minute) }},
		{"Percentile", func() { w.Percentile(at, 90) }},
		{"Forecast", func() { w.Forecast(at, 9) }},
	}
	for _, fn := range winFuncs {
		tests = append(tests, struct {
			name string
			f    func()
		}{fn.name, func() { fn.f(w, at) }})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.f); n != 0 {
				t.Errorf("%v allocations per call, want 0", n)
			}
		})
	}
}
