package rules

import (
	"iter"
	"math"
	"math/bits"
	"time"
	"unsafe"
)

// Buckets is how many buckets a window has; bucket width = length / Buckets.
const Buckets = 60

// ringSize is the number of buckets a Window holds: the bucket of the newest
// sample, which may be partial, and the Buckets before it.
const ringSize = Buckets + 1

// maxForecast is the longest time Forecast reports; a crossing further away
// counts as never.
const maxForecast = 100 * 365.25 * 24 * time.Hour

// Window holds time-bucketed aggregates of one metric of one device over a
// sliding time window of fixed length. Its memory is fixed whatever the
// sample rate (SizeBytes: 3,968 bytes, one 4 KiB allocation), because it
// keeps per-bucket aggregates and never the samples.
//
// # Buckets
//
// The bucket width is length/Buckets, rounded up to a whole nanosecond.
// Bucket k covers the Unix times [k*width, (k+1)*width): buckets are aligned
// to the Unix epoch, not to the first sample or to the window's creation, so
// two windows of the same length fed the same samples hold identical buckets,
// whether built live or rebuilt later from stored history (a backtest gives
// the results live evaluation gave). The ring holds Buckets+1 buckets: the
// bucket of the newest sample, which may be partial, and the Buckets before
// it.
//
// # Which samples a query at now sees
//
// Every function taking now reads the buckets that overlap (now-length,
// now], that is the buckets k with k*width <= now < (k+1)*width+length: at
// most Buckets+1 of them, exactly that many when length is a multiple of
// Buckets nanoseconds (every whole minute is). So the window is (now-length,
// now] rounded out to whole buckets. A query sees every sample in
// (now-length, now], and also
//   - the older samples of the bucket that contains now-length: up to one
//     bucket width (length/Buckets) of data older than the window. A sample
//     leaves the window when now reaches the end of its bucket plus length,
//     at most one bucket width after it became older than now-length;
//   - the samples of now's own bucket that are later than now, when now is
//     before the newest sample. Samples in later buckets are not seen, and
//     a now so far back that its buckets have left the ring sees only those
//     the ring still holds.
//
// # How exact each function is
//
// Sample times are kept in ticks of 2^s nanoseconds, the smallest power of
// two that counts a bucket width in 32 bits, rounding down: to the
// nanosecond for windows up to 4m17s, to 16 ns for 1h, to 4.096 µs for 7d.
// Samples in one tick are ordered by arrival (for Last, Delta and Rate).
//
//   - Count, Min, Max, Last and Delta are exact over the buckets seen, and
//     Rate is, with its times to a tick.
//   - Sum, Avg and Stddev add up per-bucket sums of the deviations from each
//     bucket's first sample, combined in float64 with the pairwise (Chan et
//     al.) formulas, so large values such as 1e6 plus noise lose nothing to
//     cancellation. To fit 4 KiB those per-bucket sums are float32: with one
//     sample per bucket (or equal values) they are zero and the results are
//     exact to float64 rounding; otherwise they carry float32 rounding of
//     the spread inside each bucket. Measured on 7d windows: 2e-9 relative
//     error for Avg and 8e-9 for Stddev at one sample a minute (168 a
//     bucket); at one a second (10,080 a bucket) up to 7e-7 for Avg, the
//     worst case being a steadily rising counter, and 3e-8 for Stddev.
//   - Slope and Forecast are least squares over every sample seen, not over
//     bucket means: each bucket keeps its time and value moments about its
//     first sample (float32, as above), combined with the shift identities.
//     Exact to float64 rounding with one sample per bucket; measured on 7d
//     windows, 2e-10 relative error at one sample a minute and up to 1e-7 at
//     one a second.
//   - Percentile is an estimate: each bucket stands for its count of samples
//     spread evenly from its minimum to its maximum (the value itself for
//     one sample, min and max for two), and the percentile of those points
//     is interpolated linearly between closest ranks, like NumPy's default
//     ("linear"). It is exact when each bucket holds at most two samples.
//
// Add is O(1) amortised and queries are O(Buckets) (Percentile searches,
// with up to about 130 passes over the buckets and usually a dozen); none of
// them allocates. A Window is not safe for concurrent use: its owner (one
// engine shard) serialises Add and the queries.
type Window struct {
	length    time.Duration
	tolerance time.Duration
	width     int64   // bucket width, ns
	widthSec  float64 // bucket width, s
	newest    int64   // Unix ns of the newest sample
	head      int64   // bucket index of the newest sample
	headStart int64   // head*width: Unix ns at which the newest bucket starts
	headSlot  int32   // position of the newest bucket in ring
	shift     uint8   // a tick is 1<<shift ns
	hasData   bool
	ring      [ringSize]bucket
}

// bucket aggregates the samples of one bucket width in 64 bytes, so that
// 61 of them and the Window fit 4 KiB (with float64 sums a bucket would take
// 88). The sums are float32 and taken about the bucket's first sample (by
// time), whose time and value are exact: with one sample they are zero, so
// exact, and otherwise they measure only the spread inside the bucket.
type bucket struct {
	first, last float64 // values of the earliest and the latest sample
	min, max    float64
	n           uint32  // number of samples; 0 = empty
	firstTick   uint32  // time of the earliest sample, ticks since the bucket start
	lastTick    uint32  // time of the latest sample, ticks since the bucket start
	s1          float32 // Σ dv, dv = v - first
	s2          float32 // Σ dv²
	t1          float32 // Σ dt, dt = seconds since the earliest sample
	t2          float32 // Σ dt²
	tv          float32 // Σ dt·dv
}

// NewWindow returns an empty window of the given length (> 0). Late samples up to
// tolerance older than the newest sample seen land in their bucket; older ones are
// refused (Add returns false) and counted by the caller.
// NewWindow panics if length is not positive; a negative tolerance counts as 0.
func NewWindow(length, tolerance time.Duration) *Window {
	if length <= 0 {
		panic("rules: NewWindow: length must be positive")
	}
	if tolerance < 0 {
		tolerance = 0
	}
	width := int64(length) / Buckets
	if int64(length)%Buckets != 0 {
		width++
	}
	var shift uint8
	if n := bits.Len64(uint64(width - 1)); n > 32 {
		shift = uint8(n - 32)
	}
	return &Window{
		length:    length,
		tolerance: tolerance,
		width:     width,
		widthSec:  float64(width) / 1e9,
		shift:     shift,
	}
}

// Length returns the length the window was created with.
func (w *Window) Length() time.Duration { return w.length }

// LastTime returns the time of the newest sample ever added (zero if none),
// to the nanosecond, in UTC.
func (w *Window) LastTime() time.Time {
	if !w.hasData {
		return time.Time{}
	}
	return time.Unix(0, w.newest).UTC()
}

// SizeBytes estimates the memory the window holds (struct + buckets), for the benchmark.
// The buckets are part of the struct, so this is one allocation of this size.
func (w *Window) SizeBytes() int { return int(unsafe.Sizeof(*w)) }

// Add records value v at time t. Returns false if t is older than newest-tolerance
// or older than the window start (i.e. it cannot be placed). Values are finite.
//
// The window start is the start of the oldest bucket the ring holds, Buckets
// bucket widths before the newest sample's bucket. A sample newer than the
// newest bucket advances the ring and clears the buckets it passes, however
// far ahead it is (a clock running fast included). Add also refuses a sample
// when its bucket already holds 2^32-1 samples.
func (w *Window) Add(t time.Time, v float64) bool {
	ns := t.UnixNano()
	if !w.hasData {
		w.hasData, w.newest = true, ns
		w.advance(floorDiv(ns, w.width))
	} else if ns < w.newest && uint64(w.newest)-uint64(ns) > uint64(w.tolerance) {
		return false
	}
	b, start := &w.ring[w.headSlot], w.headStart
	switch {
	case ns >= start && ns-start < w.width:
		// The newest bucket, the usual case: no division.
	case ns > start:
		w.advance(floorDiv(ns, w.width))
		b, start = &w.ring[w.headSlot], w.headStart
	default:
		k := floorDiv(ns, w.width)
		if k < w.head-Buckets {
			return false
		}
		b, start = w.at(k), k*w.width
	}
	if b.n == math.MaxUint32 {
		return false
	}
	w.newest = max(w.newest, ns)
	b.add(uint32((ns-start)>>w.shift), w.shift, v)
	return true
}

// advance makes bucket k the newest, clearing the buckets after the old
// newest up to k.
func (w *Window) advance(k int64) {
	if k-w.head >= ringSize {
		w.ring = [ringSize]bucket{}
	} else {
		for j := w.head + 1; j <= k; j++ {
			*w.at(j) = bucket{}
		}
	}
	w.head, w.headStart, w.headSlot = k, k*w.width, int32(w.slot(k))
}

func (w *Window) at(k int64) *bucket { return &w.ring[w.slot(k)] }

// slot returns the position of bucket k in the ring; the bucket after it is
// at slot+1, or 0 after ringSize-1.
func (w *Window) slot(k int64) int {
	s := k % ringSize
	if s < 0 {
		s += ringSize
	}
	return int(s)
}

// tickSec converts a number of ticks to seconds.
func tickSec(ticks uint32, shift uint8) float64 {
	return float64(uint64(ticks)<<shift) / 1e9
}

func (b *bucket) add(tick uint32, shift uint8, v float64) {
	if b.n == 0 {
		*b = bucket{first: v, last: v, min: v, max: v, n: 1, firstTick: tick, lastTick: tick}
		return
	}
	if tick < b.firstTick {
		// A late sample is the new earliest: move the moments' origin to it
		// (x' = x + dt, y' = y + dv) with the shift identities.
		dt := tickSec(b.firstTick-tick, shift)
		dv := b.first - v
		n := float64(b.n)
		s1, s2 := float64(b.s1), float64(b.s2)
		t1, t2, tv := float64(b.t1), float64(b.t2), float64(b.tv)
		b.tv = float32(tv + dt*s1 + dv*t1 + n*dt*dv)
		b.t2 = float32(t2 + 2*dt*t1 + n*dt*dt)
		b.s2 = float32(s2 + 2*dv*s1 + n*dv*dv)
		b.t1 = float32(t1 + n*dt)
		b.s1 = float32(s1 + n*dv)
		b.first, b.firstTick = v, tick
	}
	if tick >= b.lastTick {
		b.last, b.lastTick = v, tick
	}
	b.min = min(b.min, v)
	b.max = max(b.max, v)
	dt := tickSec(tick-b.firstTick, shift)
	dv := v - b.first
	b.n++
	b.s1 = float32(float64(b.s1) + dv)
	b.s2 = float32(float64(b.s2) + dv*dv)
	b.t1 = float32(float64(b.t1) + dt)
	b.t2 = float32(float64(b.t2) + dt*dt)
	b.tv = float32(float64(b.tv) + dt*dv)
}

// sum returns the sum of the bucket's values.
func (b *bucket) sum() float64 { return float64(b.n)*b.first + float64(b.s1) }

// mean returns the mean of the bucket's values.
func (b *bucket) mean() float64 { return b.first + float64(b.s1)/float64(b.n) }

// m2 returns the sum of squared deviations of the bucket's values from
// their mean.
func (b *bucket) m2() float64 {
	s1 := float64(b.s1)
	return max(float64(b.s2)-s1*s1/float64(b.n), 0)
}

// bounds returns the indexes [lo, hi] of the buckets a query at now reads
// (those overlapping (now-length, now] that the ring still holds), and nowK,
// the index of the bucket containing now. ok is false when there are none.
func (w *Window) bounds(now time.Time) (lo, hi, nowK int64, ok bool) {
	if !w.hasData {
		return 0, 0, 0, false
	}
	ns := now.UnixNano()
	nowK = floorDiv(ns, w.width)
	lo = max(floorDiv(ns-int64(w.length), w.width), w.head-Buckets)
	hi = min(nowK, w.head)
	return lo, hi, nowK, lo <= hi
}

// buckets yields the non-empty buckets lo..hi, oldest first, with their
// indexes.
func (w *Window) buckets(lo, hi int64) iter.Seq2[int64, *bucket] {
	return func(yield func(int64, *bucket) bool) {
		s := w.slot(lo)
		for k := lo; k <= hi; k++ {
			b := &w.ring[s]
			if s++; s == ringSize {
				s = 0
			}
			if b.n > 0 && !yield(k, b) {
				return
			}
		}
	}
}

// ends returns the oldest and the newest non-empty bucket a query at now
// reads, with their indexes.
func (w *Window) ends(now time.Time) (oldest, newest *bucket, ko, kn int64) {
	lo, hi, _, ok := w.bounds(now)
	if !ok {
		return nil, nil, 0, 0
	}
	for k, b := range w.buckets(lo, hi) {
		if oldest == nil {
			oldest, ko = b, k
		}
		newest, kn = b, k
	}
	return oldest, newest, ko, kn
}

// totals returns the number and the sum of the values a query at now reads.
func (w *Window) totals(now time.Time) (n uint64, sum float64) {
	lo, hi, _, ok := w.bounds(now)
	if !ok {
		return 0, 0
	}
	for _, b := range w.buckets(lo, hi) {
		n += uint64(b.n)
		sum += b.sum()
	}
	return n, sum
}

// Count returns the number of samples in the window at now; 0 if empty.
// See Window for which samples a query at now sees.
func (w *Window) Count(now time.Time) float64 {
	n, _ := w.totals(now)
	return float64(n)
}

// Sum returns the sum of the samples in the window at now; 0 if empty.
func (w *Window) Sum(now time.Time) float64 {
	_, s := w.totals(now)
	return s
}

// Avg returns the mean of the samples in the window at now; NaN if empty.
func (w *Window) Avg(now time.Time) float64 {
	n, s := w.totals(now)
	if n == 0 {
		return math.NaN()
	}
	return s / float64(n)
}

// Min returns the smallest sample in the window at now; NaN if empty.
func (w *Window) Min(now time.Time) float64 {
	lo, hi, _, ok := w.bounds(now)
	m := math.NaN()
	if !ok {
		return m
	}
	for _, b := range w.buckets(lo, hi) {
		if !(b.min >= m) {
			m = b.min
		}
	}
	return m
}

// Max returns the largest sample in the window at now; NaN if empty.
func (w *Window) Max(now time.Time) float64 {
	lo, hi, _, ok := w.bounds(now)
	m := math.NaN()
	if !ok {
		return m
	}
	for _, b := range w.buckets(lo, hi) {
		if !(b.max <= m) {
			m = b.max
		}
	}
	return m
}

// Last returns the value of the newest sample in the window at now (by
// sample time); NaN if empty.
func (w *Window) Last(now time.Time) float64 {
	_, n, _, _ := w.ends(now)
	if n == nil {
		return math.NaN()
	}
	return n.last
}

// Delta returns the newest minus the oldest sample in the window at now (by
// sample time): NaN if empty, 0 with one sample.
func (w *Window) Delta(now time.Time) float64 {
	o, n, _, _ := w.ends(now)
	if n == nil {
		return math.NaN()
	}
	return n.last - o.first
}

// Rate returns Delta per second between the times of the oldest and the
// newest sample in the window at now: NaN with fewer than two samples or
// when they all share one time.
func (w *Window) Rate(now time.Time) float64 {
	o, n, ko, kn := w.ends(now)
	if n == nil {
		return math.NaN()
	}
	span := (kn-ko)*w.width + int64(uint64(n.lastTick)<<w.shift) - int64(uint64(o.firstTick)<<w.shift)
	if span <= 0 {
		return math.NaN()
	}
	return (n.last - o.first) / (float64(span) / 1e9)
}

// Stddev returns the population standard deviation of the samples in the
// window at now; NaN if empty, 0 with one sample.
func (w *Window) Stddev(now time.Time) float64 {
	lo, hi, _, ok := w.bounds(now)
	if !ok {
		return math.NaN()
	}
	n, sum := w.totals(now)
	if n == 0 {
		return math.NaN()
	}
	mean := sum / float64(n)
	var m2 float64
	for _, b := range w.buckets(lo, hi) {
		d := b.mean() - mean
		m2 += b.m2() + float64(b.n)*d*d
	}
	return math.Sqrt(m2 / float64(n))
}

// trend is a least-squares line through the samples a query reads. Times are
// in seconds since the start of the bucket containing now.
type trend struct {
	slope        float64 // value per second
	tMean, vMean float64 // the line passes through (tMean, vMean)
	tOldest      float64 // time of the oldest sample
	now          float64
}

// fit returns the least-squares line of value over time of the samples in
// the window at now. ok is false with fewer than two samples or when they
// share one time.
func (w *Window) fit(now time.Time) (tr trend, ok bool) {
	lo, hi, nowK, ok := w.bounds(now)
	if !ok {
		return trend{}, false
	}
	// Pass 1: means. A bucket's mean time is its start + first sample + t1/n.
	var n uint64
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
		return trend{}, false
	}
	tr.tMean, tr.vMean = st/float64(n), sv/float64(n)
	// Pass 2: Sxx and Sxy about the means, each bucket's within-bucket part
	// plus its count times the product of its mean's deviations.
	var sxx, sxy float64
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
		return trend{}, false
	}
	tr.slope = sxy / sxx
	tr.now = float64(now.UnixNano()-nowK*w.width) / 1e9
	return tr, true
}

// Slope returns the least-squares slope of value over time, per second, of
// the samples in the window at now: NaN with fewer than two samples or when
// they all share one time.
func (w *Window) Slope(now time.Time) float64 {
	tr, ok := w.fit(now)
	if !ok {
		return math.NaN()
	}
	return tr.slope
}

// Forecast returns how long until the least-squares trend line of the window crosses
// threshold, measured from now: 0 if the trend line at now is already at or beyond the
// threshold in the direction of travel, and ok=false when it never will (flat trend,
// trend moving away, fewer than 2 samples, or the crossing is beyond 100 years).
//
// Precisely, with tc the time the trend line (the one Slope fits) meets
// threshold: if tc is after now, the result is tc-now; if tc lies between the
// oldest sample in the window and now, the line crossed the threshold during
// the window and the result is 0; if tc is before the oldest sample, the
// line was already past the threshold over the whole window and moves away
// from it, so ok is false. For a line, "beyond in the direction of travel"
// and "moving away" both mean the crossing is in the past; the window's
// extent is what tells them apart.
func (w *Window) Forecast(now time.Time, threshold float64) (d time.Duration, ok bool) {
	tr, ok := w.fit(now)
	if !ok || tr.slope == 0 || math.IsNaN(tr.slope) || math.IsInf(tr.slope, 0) {
		return 0, false
	}
	vNow := tr.vMean + tr.slope*(tr.now-tr.tMean)
	ahead := (threshold - vNow) / tr.slope // seconds from now to the crossing
	switch {
	case ahead > 0:
		if ahead > maxForecast.Seconds() {
			return 0, false
		}
		return time.Duration(math.Round(ahead * 1e9)), true
	case tr.now+ahead >= min(tr.tOldest, tr.now):
		return 0, true
	default:
		return 0, false
	}
}

// Percentile returns the p-th percentile (p in [0,100]) of the samples in
// the window at now, approximated as the Window documentation describes:
// exact when each bucket holds one or two samples. NaN if empty or p is out
// of range.
func (w *Window) Percentile(now time.Time, p float64) float64 {
	if !(p >= 0 && p <= 100) {
		return math.NaN()
	}
	lo, hi, _, ok := w.bounds(now)
	if !ok {
		return math.NaN()
	}
	var n uint64
	vmin, vmax := math.Inf(1), math.Inf(-1)
	for _, b := range w.buckets(lo, hi) {
		n += uint64(b.n)
		vmin, vmax = min(vmin, b.min), max(vmax, b.max)
	}
	if n == 0 {
		return math.NaN()
	}
	rank := p / 100 * float64(n-1)
	r := math.Floor(rank)
	frac := rank - r
	i := uint64(r)
	if i >= n-1 {
		i, frac = n-1, 0
	}
	x := w.nth(lo, hi, i, n, vmin, vmax)
	if frac == 0 {
		return x
	}
	// The next point in order is x again or the lowest point above it.
	y := x
	if c, _, above := w.probe(lo, hi, x); c <= i+1 {
		y = above
	}
	return x + frac*(y-x)
}

// nth returns the i-th smallest (from 0) of the points that stand for the
// samples of buckets lo..hi (see bucket.point); n is their number and vmin,
// vmax the smallest and largest. It narrows a bracket (a, b] around the
// answer, b a point, alternating guesses interpolated from the counts at a
// and b with bisections of the float64 ordering: at most about 130 rounds
// of O(Buckets), and about a dozen for a week of 1-minute samples.
func (w *Window) nth(lo, hi int64, i, n uint64, vmin, vmax float64) float64 {
	if i == 0 {
		return vmin
	}
	// ca = count(a) <= i < cb = count(b).
	a, ca := math.Nextafter(vmin, math.Inf(-1)), uint64(0)
	b, cb := vmax, n
	for round := 0; ; round++ {
		ka, kb := orderedKey(a), orderedKey(b)
		if kb-ka <= 1 {
			return b // nothing lies between a and b
		}
		g := a + (b-a)*((float64(i-ca)+0.5)/float64(cb-ca))
		if round%2 == 1 || !(g > a && g < b) {
			g = fromOrderedKey(ka + (kb-ka)/2)
		}
		c, below, above := w.probe(lo, hi, g)
		switch {
		case c > i:
			b, cb = below, c
		case c == i:
			return above
		default:
			a, ca = g, c
		}
	}
}

// probe returns how many points of buckets lo..hi are at most v, the
// highest of them (-Inf if none) and the lowest point above v (+Inf if
// none).
func (w *Window) probe(lo, hi int64, v float64) (c uint64, below, above float64) {
	below, above = math.Inf(-1), math.Inf(1)
	for _, b := range w.buckets(lo, hi) {
		j, lower, upper := b.locate(v)
		c += uint64(j)
		below, above = max(below, lower), min(above, upper)
	}
	return c, below, above
}

// halfStep returns half the distance between two neighbouring points of
// the bucket (see point); halves, so that max-min cannot overflow.
func (b *bucket) halfStep() float64 {
	return (b.max/2 - b.min/2) / float64(b.n-1)
}

// point returns the i-th of the n points, spread evenly from min to max,
// that stand for the bucket's samples in Percentile. It is non-decreasing
// in i, point(0) is min and point(n-1) is max.
func (b *bucket) point(i uint32) float64 { return b.pointAt(i, b.halfStep()) }

// pointAt is point with the bucket's halfStep.
func (b *bucket) pointAt(i uint32, hs float64) float64 {
	switch {
	case i == 0:
		return b.min
	case i >= b.n-1:
		return b.max
	}
	return min(max(b.min+2*(hs*float64(i)), b.min), b.max)
}

// locate returns how many of the bucket's points are at most v, the
// highest of them (-Inf if none) and the lowest point above v (+Inf if
// none).
func (b *bucket) locate(v float64) (j uint32, below, above float64) {
	switch {
	case v < b.min:
		return 0, math.Inf(-1), b.min
	case v >= b.max:
		return b.n, b.max, math.Inf(1)
	}
	// min <= v < max, so n >= 2.
	hs := b.halfStep()
	if hs == 0 { // every point but the last is min
		return b.n - 1, b.min, b.max
	}
	// Estimate the highest point at most v, then correct for rounding.
	var i uint32
	if r := (v/2 - b.min/2) / hs; r > 0 {
		i = uint32(min(r, float64(b.n-2)))
	}
	for i+1 < b.n-1 && b.pointAt(i+1, hs) <= v {
		i++
	}
	for i > 0 && b.pointAt(i, hs) > v {
		i--
	}
	return i + 1, b.pointAt(i, hs), b.pointAt(i+1, hs)
}

// orderedKey maps a float64 to a uint64 with the same order.
func orderedKey(f float64) uint64 {
	u := math.Float64bits(f)
	if u>>63 != 0 {
		return ^u
	}
	return u | 1<<63
}

func fromOrderedKey(u uint64) float64 {
	if u>>63 != 0 {
		return math.Float64frombits(u &^ (1 << 63))
	}
	return math.Float64frombits(^u)
}

// floorDiv returns a/b rounded towards minus infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
