package rules

import (
	"math"
	"time"

	"github.com/proactivehq/proactive"
)

// BucketAggregate is what one bucket of a Window holds for the samples of
// one device's metric that fall in it: the unit in which a rebuild loads
// windows from stored history (Window.Merge) instead of replaying samples.
//
// The moments are taken about the bucket's earliest sample, with times in
// seconds since it, truncated to the window's ticks (see Window), as
// Window.Add accumulates them; they are float32 values in a Window, so an
// aggregate built by adding the same samples in the same order through the
// same float32 roundings (as StoredHistory does) merges into the bucket a
// live window holds, bit for bit.
type BucketAggregate struct {
	Device proactive.DeviceID
	// Model is the device's model tag, "" when unknown.
	Model  string
	Metric string
	// Length is the length of the window the bucket belongs to; the bucket
	// is [Start, Start+width), width = Length/Buckets rounded up to a whole
	// nanosecond.
	Length time.Duration
	Start  time.Time
	Count  uint32
	// First and Last are the values of the earliest and latest sample,
	// FirstTime and LastTime their times.
	First, Last         float64
	FirstTime, LastTime time.Time
	Min, Max            float64
	// S1 = Σ dv, S2 = Σ dv², T1 = Σ dt, T2 = Σ dt², TV = Σ dt·dv with
	// dv = v - First and dt the sample's time minus FirstTime in seconds.
	// An aggregate without them (zero) merges a bucket whose Stddev sees
	// no spread inside it and whose Slope treats every sample as at
	// FirstTime with the bucket's mean value.
	S1, S2, T1, T2, TV float64
}

// geometry returns the bucket width in ns and the tick shift of a window of
// the given length, as NewWindow computes them.
func geometry(length time.Duration) (width int64, shift uint8) {
	w := NewWindow(length, 0)
	return w.width, w.shift
}

// Merge adds to the window the samples that a summarises, as if each had
// been added (without the tolerance check: a is stored history). It returns
// false and changes nothing when a is empty, its times are not within one
// bucket of this window in time order, its bucket is older than the ring
// holds, or the bucket would exceed 2^32-1 samples.
//
// Merging into an empty bucket copies a: the bucket then holds exactly what
// adding its samples would have given when a was built that way (see
// BucketAggregate). Merging into a bucket that holds samples combines the
// two with the shift identities used for late samples, which changes the
// float32 rounding of the moments only.
func (w *Window) Merge(a BucketAggregate) bool {
	fns, lns := a.FirstTime.UnixNano(), a.LastTime.UnixNano()
	if a.Count == 0 || lns < fns {
		return false
	}
	k := floorDiv(fns, w.width)
	if floorDiv(lns, w.width) != k {
		return false
	}
	start := k * w.width
	in := bucket{
		first: a.First, last: a.Last, min: a.Min, max: a.Max, n: a.Count,
		firstTick: uint32((fns - start) >> w.shift), lastTick: uint32((lns - start) >> w.shift),
		s1: float32(a.S1), s2: float32(a.S2), t1: float32(a.T1), t2: float32(a.T2), tv: float32(a.TV),
	}
	switch {
	case !w.hasData:
		w.hasData, w.newest = true, lns
		w.advance(k)
	case k > w.head:
		w.advance(k)
	case k < w.head-Buckets:
		return false
	case k < w.head:
		w.cache.have = 0 // it may hold this bucket
	}
	b := w.at(k)
	switch {
	case b.n == 0:
		*b = in
	case uint64(b.n)+uint64(in.n) > math.MaxUint32:
		return false
	default:
		b.merge(&in, w.shift)
	}
	w.newest = max(w.newest, lns)
	return true
}

// merge combines o into b, both non-empty buckets of the same window: the
// moments of the one that starts later move to the other's origin (the
// shift identities of add), and then add up.
func (b *bucket) merge(o *bucket, shift uint8) {
	x, y := *b, *o
	if y.firstTick < x.firstTick {
		x, y = y, x
	}
	dt := tickSec(y.firstTick-x.firstTick, shift)
	dv := y.first - x.first
	n := float64(y.n)
	s1, s2 := float64(y.s1), float64(y.s2)
	t1, t2, tv := float64(y.t1), float64(y.t2), float64(y.tv)
	out := x
	out.n = x.n + y.n
	out.min, out.max = min(x.min, y.min), max(x.max, y.max)
	if y.lastTick >= x.lastTick {
		out.last, out.lastTick = y.last, y.lastTick
	}
	out.s1 = float32(float64(x.s1) + (s1 + n*dv))
	out.s2 = float32(float64(x.s2) + (s2 + 2*dv*s1 + n*dv*dv))
	out.t1 = float32(float64(x.t1) + (t1 + n*dt))
	out.t2 = float32(float64(x.t2) + (t2 + 2*dt*t1 + n*dt*dt))
	out.tv = float32(float64(x.tv) + (tv + dt*s1 + dv*t1 + n*dt*dv))
	*b = out
}

// bucketBuilder aggregates time-ordered samples of one series into the
// buckets of one window length with bucket.add, the code Window.Add runs,
// so that what it emits merges into the buckets live windows hold.
type bucketBuilder struct {
	length time.Duration
	width  int64
	shift  uint8
	k      int64 // bucket index of b when b.n > 0
	b      bucket
	// The exact times of b's earliest and latest sample, which b keeps
	// only to a tick.
	firstNs, lastNs int64
}

func newBucketBuilder(length time.Duration) *bucketBuilder {
	width, shift := geometry(length)
	return &bucketBuilder{length: length, width: width, shift: shift}
}

// add adds a sample at ns with value v; when it opens a new bucket, the
// finished one is returned (ok true). Samples must come in time order.
func (bb *bucketBuilder) add(ns int64, v float64) (done BucketAggregate, ok bool) {
	k := floorDiv(ns, bb.width)
	if bb.b.n > 0 && k != bb.k {
		done, ok = bb.flush()
	}
	if bb.b.n == math.MaxUint32 {
		return done, ok // as Window.Add refuses it
	}
	if bb.b.n == 0 {
		bb.k, bb.firstNs = k, ns
	}
	bb.lastNs = ns
	bb.b.add(uint32((ns-k*bb.width)>>bb.shift), bb.shift, v)
	return done, ok
}

// flush returns the bucket being built, if any (ok), as a BucketAggregate
// without device, model and metric, and starts afresh.
func (bb *bucketBuilder) flush() (done BucketAggregate, ok bool) {
	b := bb.b
	if b.n == 0 {
		return BucketAggregate{}, false
	}
	bb.b = bucket{}
	return BucketAggregate{
		Length: bb.length, Start: time.Unix(0, bb.k*bb.width).UTC(), Count: b.n,
		First: b.first, Last: b.last, Min: b.min, Max: b.max,
		FirstTime: time.Unix(0, bb.firstNs).UTC(), LastTime: time.Unix(0, bb.lastNs).UTC(),
		S1: float64(b.s1), S2: float64(b.s2), T1: float64(b.t1), T2: float64(b.t2), TV: float64(b.tv),
	}, true
}
