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
// sample rate (SizeBytes: 4,056 bytes, one 4 KiB allocation), because it
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
// # Reading from a time on
//
// A rule with reset_on_maintenance reads its windows only from the first
// bucket that starts at or after the component's last maintenance (see
// since): the bucket holding the maintenance time is left out whole, so
// such a rule sees no sample from before it, and misses the samples of the
// new part in that bucket (at most one bucket width, length/Buckets).
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
//     one a second. Samples that all share one tick have no slope, decided
//     from their times, not from rounded moments.
//   - Percentile is an estimate: each bucket stands for its count of samples
//     spread evenly from its minimum to its maximum (the value itself for
//     one sample, min and max for two), and the percentile of those points
//     is interpolated linearly between closest ranks, like NumPy's default
//     ("linear"). It is exact when each bucket holds at most two samples.
//
// # Cost, and why results do not depend on it
//
// Add is O(1) amortised. A query reads the buckets lo..hi as two parts:
// bucket hi, the newest it reads, and the span of the buckets before it,
// lo..hi-1. When hi is the newest bucket of the ring, the usual case for a
// rule evaluated at each sample's time, the span's aggregates are cached,
// each part once a query has asked for it: count and sum; minimum and
// maximum; the sum of squared deviations from the span's mean (Stddev);
// the time moments about the span's means (Slope, Forecast). A query
// combines the cached span with bucket hi in O(1); Last, Delta and Rate
// look for the oldest and newest non-empty bucket from each end, O(1)
// unless buckets at the ends are empty.
//
// The cache is dropped when a sample opens a new bucket or lands, late, in
// an older one. The next query refills it in O(Buckets), with every part
// queries of the window have asked for: one pass over the span for the
// count, sum, extremes and the times' sum, and one more for the squared
// deviations. With k samples a bucket that is O(Buckets/k) a sample (k =
// 168 for a 7d window fed every minute); a window whose every sample opens
// a bucket (1h fed every minute or less often) pays it at each sample, once
// for all the queries of that sample. A query whose now is before the
// newest bucket computes its span without touching the cache, in
// O(Buckets). Percentile makes up to about 130 passes over the buckets,
// usually a dozen. Nothing allocates.
//
// The span is computed the same way whether it goes to the cache or
// straight to a query, in passes over its buckets oldest first, and always
// combined with bucket hi the same way: a result depends only on the
// buckets a query reads and on now, never on the cache, so a backtest or a
// window rebuilt from history gives bit for bit what live evaluation gave.
// Count, Sum, Avg, Min, Max, Last, Delta, Rate and Percentile are also bit
// for bit what one pass over all the buckets gives (the additions are the
// same, in the same order). Stddev, Slope and Forecast combine the span
// and bucket hi with the pairwise formulas instead of taking deviations
// from the overall means, which changes their rounding only: within 1e-12
// relative plus 1e-15 of the mean, far inside the errors above.
//
// A Window is not safe for concurrent use: its owner (one engine shard)
// serialises Add and the queries; queries write the cache.
type Window struct {
	// The ring comes first, so that each bucket is one cache line (the
	// Window is a 4 KiB allocation, 4 KiB aligned), and the fields Add and
	// the usual query read come right after it, in one line: Add touches
	// two lines of the window, its bucket and these fields, and the usual
	// query one more, the cached span.
	ring      [ringSize]bucket
	newest    int64 // Unix ns of the newest sample
	headStart int64 // head*width: Unix ns at which the newest bucket starts
	width     int64 // bucket width, ns
	head      int64 // bucket index of the newest sample
	loEdge    int64 // see lag
	headSlot  int32 // position of the newest bucket in ring
	shift     uint8 // a tick is 1<<shift ns
	hasData   bool
	// A query at now in bucket k reads from bucket k-lag, or k-lag+1 when
	// now is loEdge or more ns into its bucket: bounds without a division.
	lag  uint8
	want uint8 // every part of a span a query has asked for; see read
	// from is the first bucket queries read (math.MinInt64: no bound). The
	// evaluator sets it before each query of a rule with
	// reset_on_maintenance, so that the shared window is never cut. Every
	// query reads it, so it is in the line of the fields above.
	from int64
	// cache begins with the 8 bytes left in that line, where its lo and
	// have lie (every query reads them), so that its sums fill the next
	// line exactly: the usual query touches that line, the fields' and its
	// bucket. Had the span started a line, lo and have would have been
	// alone in a third line.
	cache span // of the buckets before the newest a query reads; see read
	// tolerance is read by Add only for a sample older than the newest.
	tolerance time.Duration
	length    time.Duration
	widthSec  float64 // bucket width, s
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
	// With lag = ceil(length/width) (at most Buckets) and m = lag*width -
	// length in [0, width), floor((k*width + r - length)/width) is k-lag+1
	// when r >= width-m, else k-lag.
	lag := (int64(length) + width - 1) / width
	return &Window{
		length:    length,
		tolerance: tolerance,
		width:     width,
		widthSec:  float64(width) / 1e9,
		loEdge:    width - (lag*width - int64(length)),
		shift:     shift,
		lag:       uint8(lag),
		from:      math.MinInt64,
	}
}

// since makes the next queries read only the buckets that start at or
// after ns (Unix ns); noTime lifts the bound.
func (w *Window) since(ns int64) {
	if ns == noTime {
		w.from = math.MinInt64
		return
	}
	w.from = -floorDiv(-ns, w.width)
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
		w.cache.have = 0 // a late sample changes a bucket it may hold
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
	w.cache.have = 0 // it held the buckets before the old newest
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
	if r := ns - w.headStart; r >= 0 && r < w.width {
		// now is in the newest bucket, the usual case: no division.
		lo = w.head - int64(w.lag)
		if r >= w.loEdge {
			lo++
		}
		lo = max(lo, w.from)
		return lo, w.head, w.head, lo <= w.head
	}
	nowK = floorDiv(ns, w.width)
	lo = max(floorDiv(ns-int64(w.length), w.width), w.head-Buckets, w.from)
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

// span holds the combined aggregates of the buckets lo..hi-1 of a query
// reading lo..hi: every bucket it reads but the newest, whose contents each
// Add may change. Times are in seconds since the start of bucket hi, and
// lo is kept as its distance below hi, so that a span takes 72 bytes and
// the Window, cache included, stays within 4 KiB.
//
// A span is filled in parts, each by passes over the buckets, oldest first,
// that depend only on lo, hi and the buckets (see sums, addExtremes, addM2
// and addMoments), so a part has the same value whether it was cached or
// computed for the query, and whichever part was filled first.
type span struct {
	// lo and have come first: see Window.cache.
	lo       uint8   // hi - lo: with hi, which buckets the span covers
	have     uint8   // which parts hold: haveSums, haveExtremes...; 0 = none
	n        uint64  // number of samples; 0 = none
	sum      float64 // Σ v, added up bucket by bucket, oldest first
	min, max float64 // if have&haveExtremes; NaN if n = 0
	st       float64 // Σ t, as sum; if have&haveSt
	m2       float64 // Σ (v - vMean)², vMean = sum/n; if have&haveM2
	sxx, sxy float64 // Σ (t - tMean)², Σ (t - tMean)(v - vMean), tMean = st/n; if have&haveMoments
}

// The parts of a span. The first three take one pass over the buckets
// together, the last two another, which needs the means of the first.
const (
	haveSums     uint8 = 1 << iota // n, sum (Count, Sum, Avg; all the others)
	haveExtremes                   // min, max (Min, Max)
	haveSt                         // st (with haveMoments)
	haveM2                         // m2 (Stddev)
	haveMoments                    // sxx, sxy (Slope, Forecast)

	firstPass = haveSums | haveExtremes | haveSt
)

// fill computes the parts of p, the span of buckets lo..hi-1, that need
// asks for and p does not have yet, and those they need, in at most two
// passes over the buckets. However they are grouped, a part is computed
// by the same operations in the same order.
func (w *Window) fill(p *span, lo, hi int64, need uint8) {
	if p.have == 0 {
		*p = span{lo: uint8(hi - lo)}
	}
	if need&haveMoments != 0 {
		need |= haveSt
	}
	todo := (need | haveSums) &^ p.have
	if todo&firstPass != 0 {
		w.sums(p, lo, hi, todo)
	}
	if todo&(haveM2|haveMoments) != 0 {
		w.deviations(p, lo, hi, todo)
	}
}

// sums computes the parts of p that todo asks for among count and sum,
// extremes, and st, in one pass.
func (w *Window) sums(p *span, lo, hi int64, todo uint8) {
	var n uint64
	var sum, st float64
	vmin, vmax := math.NaN(), math.NaN()
	s := w.slot(lo)
	for k := lo; k < hi; k++ {
		b := &w.ring[s]
		if s++; s == ringSize {
			s = 0
		}
		if b.n == 0 {
			continue
		}
		if todo&haveSums != 0 {
			n += uint64(b.n)
			sum += b.sum()
		}
		if todo&haveExtremes != 0 {
			if !(b.min >= vmin) {
				vmin = b.min
			}
			if !(b.max <= vmax) {
				vmax = b.max
			}
		}
		if todo&haveSt != 0 {
			// A bucket's times add up to n times its earliest sample's
			// plus t1.
			st += float64(b.n)*w.startSec(k, hi, b) + float64(b.t1)
		}
	}
	if todo&haveSums != 0 {
		p.n, p.sum = n, sum
	}
	if todo&haveExtremes != 0 {
		p.min, p.max = vmin, vmax
	}
	if todo&haveSt != 0 {
		p.st = st
	}
	p.have |= todo & firstPass
}

// deviations computes the parts of p that todo asks for among m2 and the
// time moments, p holding its sums (and st for the moments), in one pass:
// over the buckets, their own sums of squares or products plus their
// count times the product of their means' deviations from the span's.
func (w *Window) deviations(p *span, lo, hi int64, todo uint8) {
	p.have |= todo & (haveM2 | haveMoments)
	if p.n == 0 {
		return
	}
	vMean, tMean := p.sum/float64(p.n), p.st/float64(p.n)
	var m2, sxx, sxy float64
	s := w.slot(lo)
	for k := lo; k < hi; k++ {
		b := &w.ring[s]
		if s++; s == ringSize {
			s = 0
		}
		if b.n == 0 {
			continue
		}
		bn, inv := float64(b.n), 1.0
		if b.n > 1 { // 1/1 is 1: save the division
			inv = 1 / bn
		}
		s1 := float64(b.s1)
		dv := b.first + s1*inv - vMean
		if todo&haveM2 != 0 {
			m2 += nonNeg(float64(b.s2)-s1*s1*inv) + bn*dv*dv
		}
		if todo&haveMoments != 0 {
			t1 := float64(b.t1)
			dt := w.startSec(k, hi, b) + t1*inv - tMean
			sxx += nonNeg(float64(b.t2)-t1*t1*inv) + bn*dt*dt
			sxy += float64(b.tv) - t1*s1*inv + bn*dt*dv
		}
	}
	if todo&haveM2 != 0 {
		p.m2 = m2
	}
	if todo&haveMoments != 0 {
		p.sxx, p.sxy = sxx, sxy
	}
}

// nonNeg returns x, or 0 if x is negative (float32 rounding can make a sum
// of squares so).
func nonNeg(x float64) float64 {
	if x < 0 {
		return 0
	}
	return x
}

// startSec returns the time of bucket k's earliest sample in seconds since
// the start of bucket hi. It multiplies by 1e-9 where Add divides by 1e9
// (tickSec): the queries read it once or twice a bucket, and a division
// costs as much as the rest of a pass.
func (w *Window) startSec(k, hi int64, b *bucket) float64 {
	return float64(k-hi)*w.widthSec + float64(int64(b.firstTick)<<w.shift)*1e-9
}

// view is what a query at now reads: the buckets lo..hi, as the span of
// lo..hi-1 and bucket hi itself (top, possibly empty).
type view struct {
	closed *span
	top    *bucket
	hi     int64
}

// read returns what a query at now reads, the span with at least the parts
// need asks for; ok is false when the query reads no bucket. When hi is the
// newest bucket (the query's now is in it or later, the usual case) the
// span is the cache, filled first if it was invalidated, holds other
// buckets or lacks a part; otherwise the span is computed in scratch and
// the cache left alone.
func (w *Window) read(now time.Time, need uint8, scratch *span) (v view, ok bool) {
	lo, hi, _, ok := w.bounds(now)
	if !ok {
		return view{}, false
	}
	v.top, v.hi = &w.ring[w.slot(hi)], hi
	if hi != w.head {
		w.fill(scratch, lo, hi, need)
		v.closed = scratch
		return v, true
	}
	c := &w.cache
	if c.lo != uint8(hi-lo) {
		c.have = 0
	}
	if need&^c.have != 0 {
		// Fill every part asked for since the window was made: the next
		// queries will want them too, and parts filled together share
		// their passes over the buckets.
		w.want |= need
		w.fill(c, lo, hi, w.want)
	}
	v.closed = c
	return v, true
}

// n returns the number of samples read.
func (v *view) n() uint64 { return v.closed.n + uint64(v.top.n) }

// sum returns the sum of the values read: the same additions, in the same
// order, as summing bucket by bucket.
func (v *view) sum() float64 {
	if v.top.n == 0 {
		return v.closed.sum
	}
	return v.closed.sum + v.top.sum()
}

// ends returns the oldest and the newest non-empty bucket read, with their
// indexes; v reads at least one sample. It searches from each end of the
// buckets read, so it is O(1) when they hold samples, the usual case.
func (w *Window) ends(v *view) (oldest, newest *bucket, ko, kn int64) {
	newest, kn = v.top, v.hi
	for newest.n == 0 {
		kn--
		newest = w.at(kn)
	}
	ko = v.hi - int64(v.closed.lo)
	oldest = w.at(ko)
	for oldest.n == 0 {
		ko++
		oldest = w.at(ko)
	}
	return oldest, newest, ko, kn
}

// Count returns the number of samples in the window at now; 0 if empty.
// See Window for which samples a query at now sees.
func (w *Window) Count(now time.Time) float64 {
	var scratch span
	v, ok := w.read(now, haveSums, &scratch)
	if !ok {
		return 0
	}
	return float64(v.n())
}

// Sum returns the sum of the samples in the window at now; 0 if empty.
func (w *Window) Sum(now time.Time) float64 {
	var scratch span
	v, ok := w.read(now, haveSums, &scratch)
	if !ok {
		return 0
	}
	return v.sum()
}

// Avg returns the mean of the samples in the window at now; NaN if empty.
func (w *Window) Avg(now time.Time) float64 {
	var scratch span
	v, ok := w.read(now, haveSums, &scratch)
	if !ok || v.n() == 0 {
		return math.NaN()
	}
	return v.sum() / float64(v.n())
}

// Min returns the smallest sample in the window at now; NaN if empty.
func (w *Window) Min(now time.Time) float64 {
	var scratch span
	v, ok := w.read(now, haveExtremes, &scratch)
	if !ok {
		return math.NaN()
	}
	m := v.closed.min
	if v.top.n > 0 && !(v.top.min >= m) {
		m = v.top.min
	}
	return m
}

// Max returns the largest sample in the window at now; NaN if empty.
func (w *Window) Max(now time.Time) float64 {
	var scratch span
	v, ok := w.read(now, haveExtremes, &scratch)
	if !ok {
		return math.NaN()
	}
	m := v.closed.max
	if v.top.n > 0 && !(v.top.max <= m) {
		m = v.top.max
	}
	return m
}

// Last returns the value of the newest sample in the window at now (by
// sample time); NaN if empty.
func (w *Window) Last(now time.Time) float64 {
	var scratch span
	v, ok := w.read(now, haveSums, &scratch)
	if !ok || v.n() == 0 {
		return math.NaN()
	}
	_, n, _, _ := w.ends(&v)
	return n.last
}

// Delta returns the newest minus the oldest sample in the window at now (by
// sample time): NaN if empty, 0 with one sample.
func (w *Window) Delta(now time.Time) float64 {
	var scratch span
	v, ok := w.read(now, haveSums, &scratch)
	if !ok || v.n() == 0 {
		return math.NaN()
	}
	o, n, _, _ := w.ends(&v)
	return n.last - o.first
}

// Rate returns Delta per second between the times of the oldest and the
// newest sample in the window at now: NaN with fewer than two samples or
// when they all share one time.
func (w *Window) Rate(now time.Time) float64 {
	var scratch span
	v, ok := w.read(now, haveSums, &scratch)
	if !ok || v.n() == 0 {
		return math.NaN()
	}
	o, n, ko, kn := w.ends(&v)
	elapsed := (kn-ko)*w.width + int64(uint64(n.lastTick)<<w.shift) - int64(uint64(o.firstTick)<<w.shift)
	if elapsed <= 0 {
		return math.NaN()
	}
	return (n.last - o.first) / (float64(elapsed) / 1e9)
}

// Stddev returns the population standard deviation of the samples in the
// window at now; NaN if empty, 0 with one sample.
func (w *Window) Stddev(now time.Time) float64 {
	var scratch span
	v, ok := w.read(now, haveSums|haveM2, &scratch)
	if !ok || v.n() == 0 {
		return math.NaN()
	}
	c, b := v.closed, v.top
	var m2 float64
	switch {
	case b.n == 0:
		m2 = c.m2
	case c.n == 0:
		m2 = b.m2()
	default:
		// Chan et al.: the two parts' own sums of squares plus what the
		// difference of their means adds.
		na, nb := float64(c.n), float64(b.n)
		d := b.mean() - c.sum/na
		m2 = c.m2 + b.m2() + na*nb/(na+nb)*d*d
	}
	return math.Sqrt(m2 / float64(v.n()))
}

// trend is a least-squares line through the samples a query reads. Times are
// in seconds since the start of the newest bucket the query reads.
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
	var scratch span
	v, ok := w.read(now, haveSums|haveMoments, &scratch)
	if !ok || v.n() < 2 {
		return trend{}, false
	}
	o, newest, ko, kn := w.ends(&v)
	if ko == kn && o.firstTick == newest.lastTick {
		// One time: say so exactly, whatever the rounding of sxx.
		return trend{}, false
	}
	c, b := v.closed, v.top
	n := float64(v.n())
	st, sxx, sxy := c.st, c.sxx, c.sxy
	if b.n > 0 {
		nb := float64(b.n)
		inv := 1 / nb
		t1, s1 := float64(b.t1), float64(b.s1)
		t0 := w.startSec(v.hi, v.hi, b)
		st += nb*t0 + t1
		sxx = nonNeg(float64(b.t2) - t1*t1*inv)
		sxy = float64(b.tv) - t1*s1*inv
		if c.n > 0 {
			// Chan et al., as in Stddev, for both moments.
			na := float64(c.n)
			f := na * nb / n
			dt := t0 + t1*inv - c.st/na
			dv := b.first + s1*inv - c.sum/na
			sxx += c.sxx + f*dt*dt
			sxy += c.sxy + f*dt*dv
		}
	}
	if !(sxx > 0) {
		return trend{}, false
	}
	return trend{
		slope:   sxy / sxx,
		tMean:   st / n,
		vMean:   v.sum() / n,
		tOldest: w.startSec(ko, v.hi, o),
		now:     float64(now.UnixNano()-v.hi*w.width) / 1e9,
	}, true
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
	if !ok {
		return 0, false
	}
	return tr.crossing(threshold)
}

// crossing is Forecast for the line tr.
func (tr trend) crossing(threshold float64) (d time.Duration, ok bool) {
	if tr.slope == 0 || math.IsNaN(tr.slope) || math.IsInf(tr.slope, 0) {
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

// orderedKey maps a float64 other than NaN to a uint64 with the same
// order. -0 and +0, which compare equal, share the key of +0, so that no
// float64 lies between two consecutive keys (with -0 between the largest
// negative float64 and +0, nth could bisect to -0 forever).
func orderedKey(f float64) uint64 {
	u := math.Float64bits(f)
	if u>>63 != 0 {
		return ^u + 1
	}
	return u | 1<<63
}

// fromOrderedKey is the inverse of orderedKey, giving +0 for 0.
func fromOrderedKey(u uint64) float64 {
	if u>>63 != 0 {
		return math.Float64frombits(u &^ (1 << 63))
	}
	return math.Float64frombits(^(u - 1))
}

// floorDiv returns a/b rounded towards minus infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
