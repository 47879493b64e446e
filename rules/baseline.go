package rules

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"unsafe"

	"github.com/proactivehq/proactive"
)

// Fleet baselines: model_avg(metric, window), model_stddev(metric, window)
// and model_count(metric, window) compare a device with the other devices
// of its model.
//
// Each device of a model that reports the metric contributes one value,
// its own avg(metric, window) as of its newest sample; model_count is the
// number of devices contributing, model_avg the mean of their
// contributions and model_stddev their population standard deviation. The
// evaluated device counts as one of them.
//
// Incremental and bounded: per model, metric and window there is one group
// holding a member per contributing device (its contribution and the time
// of its newest sample, about 120 bytes with the map entry; see
// BenchmarkModelBaselineMemory) and running sums of the contributions. A
// sample updates its device's member in O(1) (the device's window has its
// avg cached); a query is O(1) after dropping the members whose newest
// sample is a window or more older than the query's time, oldest update
// first: a device that stops reporting leaves the baseline one window after
// its last sample, and one that reports (again) joins with that sample.
//
// Exactness: the running sums are of the deviations from a reference value
// (the first contribution of the group), in float64, so a fleet around 1e6
// loses nothing to cancellation; adding and taking out contributions
// accumulates rounding, so the sums are recomputed from the members each
// time as many updates as there are members have been applied (amortised
// O(1)): model_avg and model_stddev are then within a few float64 roundings
// per member (relative 1e-12 for fleets of 100k devices) of the exact mean
// and deviation of the contributions. Devices leave in the order their
// newest samples arrived, so under a skew between devices' clocks a
// silent device may stay a little longer, until those that updated before
// it have left. With several engine shards the group is shared under a
// lock and its state depends on the order in which the shards' samples
// arrive, so an engine's model functions are not bit-for-bit reproducible
// by a backtest (a backtest, with one evaluator, is reproducible by
// itself). A snapshot holds no baselines: Restore derives them from the
// restored windows.
type baselines struct {
	mu     sync.Mutex // guards groups
	groups map[baselineKey]*baselineGroup
}

type baselineKey struct {
	model string
	ws    int // window slot
}

// baselineGroup is one model's baseline for one window.
type baselineGroup struct {
	mu      sync.Mutex
	length  int64 // window length, ns
	members map[proactive.DeviceID]*member
	// head and tail of the members by the time of their last update,
	// oldest first.
	head, tail *member
	ref        float64 // the value the sums are taken about
	s1, s2     float64 // Σ (x - ref), Σ (x - ref)²
	updates    int     // since the sums were last recomputed
}

type member struct {
	id         proactive.DeviceID
	x          float64 // the device's avg(metric, window)
	seen       int64   // Unix ns of the device's newest sample
	prev, next *member
}

func newBaselines() *baselines {
	return &baselines{groups: map[baselineKey]*baselineGroup{}}
}

// group returns the group of a model and window slot, made on first use.
func (b *baselines) group(model string, ws int, length int64) *baselineGroup {
	k := baselineKey{model, ws}
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.groups[k]
	if g == nil {
		g = &baselineGroup{length: length, members: map[proactive.DeviceID]*member{}}
		b.groups[k] = g
	}
	return g
}

// update sets the contribution of device id to x (NaN: none) as of seen.
func (g *baselineGroup) update(id proactive.DeviceID, x float64, seen int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.members[id]
	if m != nil {
		g.remove(m)
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return
	}
	if m == nil {
		m = &member{id: id}
	}
	m.x, m.seen = x, seen
	if len(g.members) == 0 {
		g.ref, g.s1, g.s2 = x, 0, 0
	}
	g.members[id] = m
	d := x - g.ref
	g.s1 += d
	g.s2 += d * d
	m.prev, m.next = g.tail, nil
	if g.tail != nil {
		g.tail.next = m
	} else {
		g.head = m
	}
	g.tail = m
	if g.updates++; g.updates >= max(len(g.members), 64) {
		g.recompute()
	}
}

func (g *baselineGroup) remove(m *member) {
	delete(g.members, m.id)
	d := m.x - g.ref
	g.s1 -= d
	g.s2 -= d * d
	if m.prev != nil {
		m.prev.next = m.next
	} else {
		g.head = m.next
	}
	if m.next != nil {
		m.next.prev = m.prev
	} else {
		g.tail = m.prev
	}
	m.prev, m.next = nil, nil
	if len(g.members) == 0 {
		g.s1, g.s2 = 0, 0
	}
}

// recompute sets the sums from the members, about the oldest's value.
func (g *baselineGroup) recompute() {
	g.updates = 0
	g.s1, g.s2 = 0, 0
	if g.head == nil {
		return
	}
	g.ref = g.head.x
	for m := g.head; m != nil; m = m.next {
		d := m.x - g.ref
		g.s1 += d
		g.s2 += d * d
	}
}

// stats returns the count, mean and population standard deviation of the
// contributions at now (Unix ns), after dropping the members a window old.
func (g *baselineGroup) stats(now int64) (n int, mean, sd float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.head != nil && g.head.seen <= now-g.length {
		g.remove(g.head)
	}
	n = len(g.members)
	if n == 0 {
		return 0, math.NaN(), math.NaN()
	}
	fn := float64(n)
	m1 := g.s1 / fn
	return n, g.ref + m1, math.Sqrt(max(g.s2/fn-m1*m1, 0))
}

// sizeBytes estimates the memory the group holds: members and map entries.
func (g *baselineGroup) sizeBytes() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	// A map entry is its key, value and a control byte, at a load of 7/8.
	entry := int(unsafe.Sizeof(proactive.DeviceID(""))+unsafe.Sizeof((*member)(nil))+1) * 8 / 7
	per := int(unsafe.Sizeof(member{})) + entry
	n := int(unsafe.Sizeof(*g))
	for id := range g.members {
		n += per + len(id)
	}
	return n
}

// contribute updates the baselines that the windows fed by sample s feed.
func (ev *Evaluator) contribute(d *device, s *proactive.Sample) {
	if ev.fleet == nil || d.info.Model == "" {
		return
	}
	l := ev.set.layout
	for _, ws := range l.baselinedSlots {
		if _, ok := s.Metrics[l.metricNames[l.windowKeys[ws].metric]]; !ok {
			continue
		}
		w := d.windows[ws]
		if w == nil {
			continue
		}
		var g *baselineGroup
		if ws < len(d.groups) {
			g = d.groups[ws]
		}
		if g == nil {
			g = ev.fleet.group(d.info.Model, ws, int64(l.windowKeys[ws].length))
			d.setGroup(ws, g)
		}
		w.since(noTime)
		g.update(d.id, w.Avg(d.lastSeen), d.lastSeen.UnixNano())
	}
}

// setGroup remembers d's group for window slot ws.
func (d *device) setGroup(ws int, g *baselineGroup) {
	for len(d.groups) <= ws {
		d.groups = append(d.groups, nil)
	}
	d.groups[ws] = g
}

// modelStats is what model_avg, model_stddev and model_count read.
func (e *evalEnv) modelStats(ws int) (n int, mean, sd float64) {
	if e.fleet == nil || e.dev.info.Model == "" {
		return 0, math.NaN(), math.NaN()
	}
	var g *baselineGroup
	if ws < len(e.dev.groups) {
		g = e.dev.groups[ws]
	}
	if g == nil {
		g = e.fleet.group(e.dev.info.Model, ws, int64(e.layout.windowKeys[ws].length))
	}
	return g.stats(e.now.UnixNano())
}

func (e *evalEnv) modelAvg(ws int) float64 {
	_, mean, _ := e.modelStats(ws)
	return mean
}

func (e *evalEnv) modelStddev(ws int) float64 {
	_, _, sd := e.modelStats(ws)
	return sd
}

func (e *evalEnv) modelCount(ws int) float64 {
	n, _, _ := e.modelStats(ws)
	return float64(n)
}

// setFleet makes the evaluator share fleet (an engine's shards share one).
func (ev *Evaluator) setFleet(fleet *baselines) {
	ev.fleet, ev.env.fleet = fleet, fleet
}

// rebuildBaselines makes the baselines again from the devices' windows, in
// the order of their newest samples, as after a Restore.
func (b *baselines) rebuild(l *layout, devices []*device) {
	type contribution struct {
		d  *device
		ws int
		w  *Window
	}
	var cs []contribution
	for _, d := range devices {
		d.groups = nil
		if d.info.Model == "" {
			continue
		}
		for _, ws := range l.baselinedSlots {
			if ws < len(d.windows) && d.windows[ws] != nil && d.windows[ws].hasData {
				cs = append(cs, contribution{d, ws, d.windows[ws]})
			}
		}
	}
	slices.SortStableFunc(cs, func(a, b contribution) int { return cmp.Compare(a.w.newest, b.w.newest) })
	b.mu.Lock()
	b.groups = map[baselineKey]*baselineGroup{}
	b.mu.Unlock()
	for _, c := range cs {
		g := b.group(c.d.info.Model, c.ws, int64(l.windowKeys[c.ws].length))
		c.d.setGroup(c.ws, g)
		c.w.since(noTime)
		t := c.w.LastTime()
		g.update(c.d.id, c.w.Avg(t), t.UnixNano())
	}
}
