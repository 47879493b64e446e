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
		// Bisecting between the largest negative float64 and 0 must not
		// stop at -0, which counts the zeros as +0 does.
		{"zero above negatives p100", perBucket(-1, 0, 0), 100, 0},
		{"zero above negatives p80", perBucket(-1, -1, 0, 1, 0), 80, 0.2},
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
		// In the past: the span is computed for the query, not cached.
		{"Forecast in the past", func() { w.Forecast(at.Add(-24*time.Hour), 9) }},
		{"Stddev in the past", func() { w.Stddev(at.Add(-24 * time.Hour)) }},
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

// refWindow answers queries the way Window did before it cached anything:
// every query folds all the buckets it reads, oldest first, and the moments
// about the means of all of them. The property tests compare the cached
// Window with it.
type refWindow struct{ w *Window }

// bounds is Window.bounds with divisions only, no fast path.
func (r refWindow) bounds(now time.Time) (lo, hi, nowK int64, ok bool) {
	w := r.w
	if !w.hasData {
		return 0, 0, 0, false
	}
	ns := now.UnixNano()
	nowK = floorDiv(ns, w.width)
	lo = max(floorDiv(ns-int64(w.length), w.width), w.head-Buckets)
	hi = min(nowK, w.head)
	return lo, hi, nowK, lo <= hi
}

func (r refWindow) ends(now time.Time) (oldest, newest *bucket, ko, kn int64) {
	lo, hi, _, ok := r.bounds(now)
	if !ok {
		return nil, nil, 0, 0
	}
	for k, b := range r.w.buckets(lo, hi) {
		if oldest == nil {
			oldest, ko = b, k
		}
		newest, kn = b, k
	}
	return oldest, newest, ko, kn
}

func (r refWindow) totals(now time.Time) (n uint64, sum float64) {
	lo, hi, _, ok := r.bounds(now)
	if !ok {
		return 0, 0
	}
	for _, b := range r.w.buckets(lo, hi) {
		n += uint64(b.n)
		sum += b.sum()
	}
	return n, sum
}

func (r refWindow) Count(now time.Time) float64 { n, _ := r.totals(now); return float64(n) }
func (r refWindow) Sum(now time.Time) float64   { _, s := r.totals(now); return s }

func (r refWindow) Avg(now time.Time) float64 {
	n, s := r.totals(now)
	if n == 0 {
		return math.NaN()
	}
	return s / float64(n)
}

func (r refWindow) Min(now time.Time) float64 {
	lo, hi, _, ok := r.bounds(now)
	m := math.NaN()
	if !ok {
		return m
	}
	for _, b := range r.w.buckets(lo, hi) {
		if !(b.min >= m) {
			m = b.min
		}
	}
	return m
}

func (r refWindow) Max(now time.Time) float64 {
	lo, hi, _, ok := r.bounds(now)
	m := math.NaN()
	if !ok {
		return m
	}
	for _, b := range r.w.buckets(lo, hi) {
		if !(b.max <= m) {
			m = b.max
		}
	}
	return m
}

func (r refWindow) Last(now time.Time) float64 {
	_, n, _, _ := r.ends(now)
	if n == nil {
		return math.NaN()
	}
	return n.last
}

func (r refWindow) Delta(now time.Time) float64 {
	o, n, _, _ := r.ends(now)
	if n == nil {
		return math.NaN()
	}
	return n.last - o.first
}

func (r refWindow) Rate(now time.Time) float64 {
	w := r.w
	o, n, ko, kn := r.ends(now)
	if n == nil {
		return math.NaN()
	}
	span := (kn-ko)*w.width + int64(uint64(n.lastTick)<<w.shift) - int64(uint64(o.firstTick)<<w.shift)
	if span <= 0 {
		return math.NaN()
	}
	return (n.last - o.first) / (float64(span) / 1e9)
}

func (r refWindow) Stddev(now time.Time) float64 {
	lo, hi, _, ok := r.bounds(now)
	if !ok {
		return math.NaN()
	}
	n, sum := r.totals(now)
	if n == 0 {
		return math.NaN()
	}
	mean := sum / float64(n)
	var m2 float64
	for _, b := range r.w.buckets(lo, hi) {
		d := b.mean() - mean
		m2 += b.m2() + float64(b.n)*d*d
	}
	return math.Sqrt(m2 / float64(n))
}

// fit returns, besides the line, the sum of squared deviations of the
// times from their mean and the number of samples.
func (r refWindow) fit(now time.Time) (tr trend, sxx float64, n uint64, ok bool) {
	w := r.w
	lo, hi, nowK, ok := r.bounds(now)
	if !ok {
		return trend{}, 0, 0, false
	}
	var st, sv float64
	first := true
	for k, b := range w.buckets(lo, hi) {
		t0 := float64(k-nowK)*w.widthSec + tickSec(b.firstTick, w.shift)
		if first {
			tr.tOldest, first = t0, false
		}
		n += uint64(b.n)
		st += float64(b.n)*t0 + float64(b.t1)
		sv += b.sum()
	}
	if n < 2 {
		return trend{}, 0, n, false
	}
	tr.tMean, tr.vMean = st/float64(n), sv/float64(n)
	var sxy float64
	for k, b := range w.buckets(lo, hi) {
		bn := float64(b.n)
		inv := 1 / bn
		t1, s1 := float64(b.t1), float64(b.s1)
		dt := float64(k-nowK)*w.widthSec + tickSec(b.firstTick, w.shift) + t1*inv - tr.tMean
		dv := b.first + s1*inv - tr.vMean
		sxx += max(float64(b.t2)-t1*t1*inv, 0) + bn*dt*dt
		sxy += float64(b.tv) - t1*s1*inv + bn*dt*dv
	}
	if !(sxx > 0) {
		return trend{}, sxx, n, false
	}
	tr.slope = sxy / sxx
	tr.now = float64(now.UnixNano()-nowK*w.width) / 1e9
	return tr, sxx, n, true
}

func (r refWindow) Slope(now time.Time) float64 {
	tr, _, _, ok := r.fit(now)
	if !ok {
		return math.NaN()
	}
	return tr.slope
}

func (r refWindow) Forecast(now time.Time, threshold float64) (time.Duration, bool) {
	tr, _, _, ok := r.fit(now)
	if !ok {
		return 0, false
	}
	return tr.crossing(threshold)
}

func (r refWindow) Percentile(now time.Time, p float64) float64 {
	if !(p >= 0 && p <= 100) {
		return math.NaN()
	}
	lo, hi, _, ok := r.bounds(now)
	if !ok {
		return math.NaN()
	}
	var n uint64
	vmin, vmax := math.Inf(1), math.Inf(-1)
	for _, b := range r.w.buckets(lo, hi) {
		n += uint64(b.n)
		vmin, vmax = min(vmin, b.min), max(vmax, b.max)
	}
	if n == 0 {
		return math.NaN()
	}
	rank := p / 100 * float64(n-1)
	fl := math.Floor(rank)
	frac := rank - fl
	i := uint64(fl)
	if i >= n-1 {
		i, frac = n-1, 0
	}
	x := r.w.nth(lo, hi, i, n, vmin, vmax)
	if frac == 0 {
		return x
	}
	y := x
	if c, _, above := r.w.probe(lo, hi, x); c <= i+1 {
		y = above
	}
	return x + frac*(y-x)
}

// sameBits reports whether a and b are the same float64, any NaN matching
// any NaN.
func sameBits(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || math.IsNaN(a) && math.IsNaN(b)
}

// winResults returns every query's result at now, in the order of winFuncs,
// then Forecast to two thresholds (seconds, and 1 or 0 for ok) and the
// median, each computed in the order given by perm (indexes into the
// result), so that the cache is filled in that order.
func winResults(w *Window, now time.Time, thresholds [2]float64, perm []int) []float64 {
	out := make([]float64, len(winFuncs)+5)
	for _, i := range perm {
		switch j := i - len(winFuncs); {
		case j < 0:
			out[i] = winFuncs[i].f(w, now)
		case j < 4:
			d, ok := w.Forecast(now, thresholds[j/2])
			if j%2 == 0 {
				out[i] = d.Seconds()
			} else if ok {
				out[i] = 1
			}
		default:
			out[i] = w.Percentile(now, 50)
		}
	}
	return out
}

// winResultName names entry i of winResults.
func winResultName(i int) string {
	switch j := i - len(winFuncs); {
	case j < 0:
		return winFuncs[i].name
	case j < 4:
		return [...]string{"Forecast[0]", "Forecast[0] ok", "Forecast[1]", "Forecast[1] ok"}[j]
	}
	return "Percentile(50)"
}

// TestWindowCacheIsInvisible runs random sequences of samples, in order,
// late (within the tolerance and beyond), in bursts, after gaps and far in
// the future, with queries at the newest sample, later, in the past and
// repeated, and checks that each query gives bit for bit the same result
// whatever the cache holds: warm, cold, or filled by the other queries in
// another order. It also checks every result against refWindow, the
// uncached computation, as checkAgainstRef describes.
func TestWindowCacheIsInvisible(t *testing.T) {
	tests := []struct {
		name                 string
		length, tolerance    time.Duration
		offset, trend, noise float64 // value = offset + trend*seconds + noise*N(0,1)
	}{
		{"1h", time.Hour, 5 * time.Minute, 20, 1e-3, 1},
		{"7d around 1e6", 7 * 24 * time.Hour, time.Hour, 1e6, 1e-4, 1},
		{"1d flat", 24 * time.Hour, 10 * time.Minute, 3, 0, 0.1},
		{"10s, width not dividing it", 10 * time.Second, time.Second, -3, 0.5, 0.1},
		{"30ns", 30, 5, 0, 0, 1},
	}
	for ti, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, uint64(ti)))
			w := NewWindow(tt.length, tt.tolerance)
			width := w.width
			ref := refWindow{w}
			newest := int64(0) // ns since winBase
			value := func(at int64) float64 {
				if rng.IntN(10) == 0 {
					return tt.offset // repeated values
				}
				return tt.offset + tt.trend*float64(at)/1e9 + tt.noise*rng.NormFloat64()
			}
			add := func(at int64) {
				w.Add(winBase.Add(time.Duration(at)), value(at))
				newest = max(newest, at)
			}
			natural := make([]int, len(winFuncs)+5)
			for i := range natural {
				natural[i] = i
			}
			var worst [2]float64 // Stddev, Slope: largest relative difference from ref
			queries := 0
			for range 4000 {
				switch op := rng.IntN(100); {
				case op < 45: // in order, mostly in the newest bucket
					add(newest + rng.Int64N(width/4+1))
				case op < 55: // in order, after a gap of up to 3 buckets
					add(newest + rng.Int64N(3*width+1))
				case op < 65: // late, some beyond the tolerance
					add(newest - rng.Int64N(int64(tt.tolerance)*6/5+1))
				case op < 66: // far in the future
					add(newest + (Buckets+1+rng.Int64N(500))*width)
				default:
					var at int64
					switch rng.IntN(6) {
					case 0, 1:
						at = newest
					case 2: // later in the newest bucket or after it
						at = newest + rng.Int64N(2*width)
					case 3: // in the past
						at = newest - rng.Int64N(3*width)
					case 4: // far in the past or the future
						at = newest + rng.Int64N(4*int64(tt.length)) - 2*int64(tt.length)
					default: // the start of the newest bucket
						at = w.headStart - winBase.UnixNano()
					}
					now := winBase.Add(time.Duration(at))
					thresholds := [2]float64{tt.offset + 3*tt.noise, tt.offset - 3*tt.noise}
					// Warm, cold, cold filled in reverse order, warm again.
					got := winResults(w, now, thresholds, natural)
					cold, cold2 := *w, *w
					cold.cache, cold2.cache = span{}, span{}
					reversed := slices.Clone(natural)
					slices.Reverse(reversed)
					for _, other := range [][]float64{
						winResults(&cold, now, thresholds, natural),
						winResults(&cold2, now, thresholds, reversed),
						winResults(w, now, thresholds, rng.Perm(len(natural))),
					} {
						for i := range got {
							if !sameBits(got[i], other[i]) {
								t.Fatalf("query %d at %v: %s = %v, then %v with the cache in another state", queries, at, winResultName(i), got[i], other[i])
							}
						}
					}
					queries++
					checkAgainstRef(t, ref, now, thresholds, got, &worst)
				}
			}
			t.Logf("%d queries; largest difference from the uncached computation, as a fraction of the tolerance: Stddev %.2g, Slope %.2g", queries, worst[0], worst[1])
		})
	}
}

// checkAgainstRef compares got, the winResults of a Window at now, with
// what refWindow computes, and records in worst the largest difference of
// Stddev and Slope relative to the tolerance.
//
// Everything but Stddev, Slope and Forecast must be the same bit for bit.
// Those combine the newest bucket with the others by the pairwise formulas
// rather than summing deviations from the overall means, so they differ by
// rounding: by a few ulps of each mean in the deviations, which is
// 1e-15 relative to the mean (not to the spread: with values around 1e6
// and a spread of 1 both computations are off by 1e-11). Hence a tolerance
// of 1e-12 relative plus 1e-15 of the mean for Stddev, the same per second
// of the times' spread for Slope, and what those imply for Forecast.
func checkAgainstRef(t *testing.T, ref refWindow, now time.Time, thresholds [2]float64, got []float64, worst *[2]float64) {
	t.Helper()
	want := []float64{
		ref.Count(now), ref.Sum(now), ref.Avg(now), ref.Min(now), ref.Max(now),
		ref.Last(now), ref.Delta(now), ref.Rate(now), ref.Slope(now), ref.Stddev(now),
	}
	for _, th := range thresholds {
		d, ok := ref.Forecast(now, th)
		want = append(want, d.Seconds(), 0)
		if ok {
			want[len(want)-1] = 1
		}
	}
	want = append(want, ref.Percentile(now, 50))
	mean, sd := math.Abs(want[2]), want[9]
	tol := make([]float64, len(want)) // 0: bit for bit
	tol[9] = 1e-12*sd + 1e-15*mean
	if tr, sxx, n, ok := ref.fit(now); ok && tr.slope != 0 {
		sdTime := math.Sqrt(sxx / float64(n))
		tol[8] = 1e-12*math.Abs(tr.slope) + 1e-15*(mean+sd)/sdTime
		for _, i := range []int{10, 12} {
			// ahead = (threshold - vNow)/slope, vNow within 1e-15 of the
			// mean; 1 ns for the rounding to a Duration.
			ahead := math.Abs(want[i])
			tol[i] = 1e-12*ahead + (ahead*tol[8]+1e-15*(mean+sd))/math.Abs(tr.slope) + 1e-9
		}
	}
	if o, n, ko, kn := ref.ends(now); o != nil && ko == kn && o.firstTick == n.lastTick {
		// The samples share one time. Window says so exactly; refWindow
		// tests the rounded sxx > 0, and a frame where the time is not 0
		// (now after the newest bucket) can make it a few ulps.
		want[8], want[10], want[11], want[12], want[13] = nan, 0, 0, 0, 0
	}
	for i := range want {
		var bad bool
		switch {
		case tol[i] == 0 || math.IsNaN(want[i]) || math.IsNaN(got[i]):
			bad = !sameBits(got[i], want[i])
		default:
			d := math.Abs(got[i] - want[i])
			bad = !(d <= tol[i])
			if i == 8 || i == 9 {
				worst[9-i] = max(worst[9-i], d/tol[i])
			}
		}
		if bad {
			t.Errorf("at %v: %s = %v, uncached %v (tolerance %.3g)", now, winResultName(i), got[i], want[i], tol[i])
		}
	}
}

// TestWindowCacheLifetime checks when the cache of the buckets before the
// newest is kept and when it is dropped.
func TestWindowCacheLifetime(t *testing.T) {
	w := NewWindow(time.Hour, 10*time.Minute)
	for i := range 90 {
		mustFillWindow(t, w, []winSample{{time.Duration(i) * time.Minute, float64(i % 7)}})
	}
	at := 89 * time.Minute
	now := winBase.Add(at)
	w.Avg(now)
	if w.cache.have != haveSums {
		t.Fatalf("after Avg the cache has parts %b, want only the sums", w.cache.have)
	}
	w.Slope(now)
	if w.cache.have&(haveSums|haveMoments) != haveSums|haveMoments || w.cache.have&haveM2 != 0 {
		t.Fatalf("after Slope the cache has parts %b, want the sums and moments, not m2", w.cache.have)
	}
	steps := []struct {
		name string
		do   func()
		kept bool
	}{
		{"a query in the newest bucket", func() { w.Slope(winBase.Add(at + 30*time.Second)) }, true},
		{"a query in the past", func() { w.Stddev(winBase.Add(at - 10*time.Minute)) }, true},
		{"a sample in the newest bucket", func() { mustFillWindow(t, w, []winSample{{at + 10*time.Second, 3}}) }, true},
		{"a late sample", func() { mustFillWindow(t, w, []winSample{{at - 5*time.Minute, 3}}) }, false},
		{"a sample in a new bucket", func() { mustFillWindow(t, w, []winSample{{at + time.Minute, 3}}) }, false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			w.Slope(now) // fill
			kept := w.cache
			st.do()
			if got := w.cache.have != 0 && w.cache == kept; got != st.kept {
				t.Errorf("cache kept = %v, want %v", got, st.kept)
			}
		})
	}
	// Refilled by Avg, the cache has the moments Slope asked for before.
	w.Avg(winBase.Add(at + time.Minute))
	if w.cache.have&haveMoments == 0 {
		t.Errorf("refilled by Avg, the cache has parts %b, want the moments too", w.cache.have)
	}
}
