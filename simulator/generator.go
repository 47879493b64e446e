package simulator

import (
	"container/heap"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/proactivehq/proactive"
)

// Truth is one fault the simulator injects: the ground truth that rules are
// scored against.
type Truth struct {
	Device    string
	Model     string
	Component string
	Fault     string
	Shape     Shape
	Onset     time.Time
	// Breakdown is when the device breaks down, zero for a fault that
	// never does.
	Breakdown time.Time
	Then      Then
	// Kind tells a fault from a decoy (a drift with no failure behind
	// it); empty reads as a fault.
	Kind TruthKind
	// Repaired is when maintenance ended the fault (zero: never, or
	// after the end of the run).
	Repaired time.Time
}

// TruthKind tells the faults of the ground truth from its decoys.
type TruthKind string

// The kinds of ground truth.
const (
	KindFault TruthKind = "fault" // a failure that rules should catch
	KindDecoy TruthKind = "decoy" // a drift with no failure behind it: an alert on it is false
)

// IsDecoy reports whether t is a decoy rather than a fault.
func (t Truth) IsDecoy() bool { return t.Kind == KindDecoy }

// Generator produces a scenario's messages in simulated time, without a
// broker: the same scenario, seed and start give the same messages.
type Generator struct {
	sc                    *Scenario
	start, dataStart, end time.Time
	devs                  []*devSim
	truth                 []Truth
	maint                 []proactive.Maintenance
	h                     devHeap
	heapBuilt             bool
}

// NewGenerator prepares a run of sc whose live part starts at start (zero:
// sc.Start, or now when that is zero too). sc must come from ParseScenario.
func NewGenerator(sc *Scenario, start time.Time) *Generator {
	if start.IsZero() {
		start = sc.Start
	}
	if start.IsZero() {
		start = time.Now().Truncate(time.Millisecond)
	}
	g := &Generator{sc: sc, start: start, dataStart: start.Add(-sc.Backfill)}
	if sc.Duration > 0 {
		g.end = start.Add(sc.Duration)
	}
	pick := rand.New(rand.NewPCG(sc.Seed, 0x5ce7a410))
	for i, d := range sc.devices {
		g.devs = append(g.devs, newDevSim(i, d, sc.Seed, g.dataStart))
	}
	byID := map[string]*devSim{}
	for _, d := range g.devs {
		byID[d.dev.ID] = d
	}
	picked := map[string][]string{} // fault name → its devices
	for fi := range sc.Faults {
		f := &sc.Faults[fi]
		for _, d := range f.pick(avoiding(sc.devices, f.Avoid, picked), pick) {
			picked[f.Name] = append(picked[f.Name], d.ID)
			ds := byID[d.ID]
			r := rand.New(rand.NewPCG(sc.Seed, hash(d.ID, "fault", f.Name, fi)))
			onset := g.dataStart.Add(f.Onset)
			if f.Rate > 0 {
				days := r.ExpFloat64() / f.Rate
				if days > 365*100 {
					continue // not in this century
				}
				onset = onset.Add(time.Duration(days * 24 * float64(time.Hour)))
			} else if f.Jitter > 0 {
				onset = onset.Add(time.Duration(r.Int64N(int64(f.Jitter))))
			}
			onset = onset.Truncate(time.Millisecond)
			af := &activeFault{f: f, onset: onset, r: r}
			g.plan(ds, af, fi)
			ds.faults = append(ds.faults, af)
			if f.Then == Stop && (ds.stopAt.IsZero() || af.breakdown.Before(ds.stopAt)) {
				ds.stopAt = af.breakdown
			}
			if !g.end.IsZero() && !onset.Before(g.end) {
				continue
			}
			tr := Truth{
				Device: d.ID, Model: d.Model, Component: f.Component, Fault: f.Name, Shape: f.Shape,
				Onset: onset, Breakdown: af.breakdown, Then: f.Then, Kind: KindFault,
			}
			if f.Decoy {
				tr.Kind, tr.Then = KindDecoy, ""
			}
			if !af.repairAt.IsZero() && (g.end.IsZero() || af.repairAt.Before(g.end)) {
				tr.Repaired = af.repairAt
				g.maint = append(g.maint, proactive.Maintenance{Device: proactive.DeviceID(d.ID), Time: af.repairAt,
					Component: f.Component, Kind: f.Repair.Kind, Notes: "simulated: ends fault " + f.Name})
			}
			g.truth = append(g.truth, tr)
		}
	}
	slices.SortStableFunc(g.truth, func(a, b Truth) int { return a.Onset.Compare(b.Onset) })
	slices.SortStableFunc(g.maint, func(a, b proactive.Maintenance) int { return a.Time.Compare(b.Time) })
	for _, d := range g.devs {
		d.noiseEvents(sc.Seed, g.dataStart)
		slices.SortStableFunc(d.events, func(a, b DeviceEvent) int { return a.Time.Compare(b.Time) })
	}
	for qi := range sc.Quirks {
		q := &sc.Quirks[qi]
		for _, d := range q.pick(sc.devices, pick) {
			ds := byID[d.ID]
			r := rand.New(rand.NewPCG(sc.Seed, hash(d.ID, "quirk", "", qi)))
			if q.ClockSkew > 0 {
				ds.skew += time.Duration((r.Float64()*2 - 1) * float64(q.ClockSkew)).Truncate(time.Millisecond)
			}
			if q.LateEvery > 0 {
				ds.lateEvery, ds.lateHold = q.LateEvery, q.LateHold
			}
			if q.OfflineEvery > 0 {
				ds.offEvery, ds.offFor = q.OfflineEvery, q.OfflineFor
			}
		}
	}
	for _, d := range g.devs {
		d.schedule()
	}
	return g
}

// maxPayload keeps batched payloads under the platform's 64 KiB limit.
const maxPayload = 60 << 10

// Start is when the live part begins; DataStart is the first simulated
// sample's time (Start minus the backfill); End is when the run ends, zero
// when it runs until stopped.
func (g *Generator) Start() time.Time { return g.start }

// DataStart returns the time of the first simulated sample.
func (g *Generator) DataStart() time.Time { return g.dataStart }

// End returns when the simulation ends, zero for never.
func (g *Generator) End() time.Time { return g.end }

// Devices returns the fleet.
func (g *Generator) Devices() []Device { return g.sc.devices }

// Truth returns every fault and decoy injected with an onset before the
// end of the run, by onset time.
func (g *Generator) Truth() []Truth { return g.truth }

// Maintenance returns the maintenance records of the repairs that end
// faults before the end of the run, by time.
func (g *Generator) Maintenance() []proactive.Maintenance { return g.maint }

// Next returns the next message of the whole fleet in simulated time order
// (devices in fleet order at the same instant), and false once the run has
// reached its end.
func (g *Generator) Next() (Message, bool) {
	if !g.heapBuilt {
		g.h = g.h[:0]
		for _, d := range g.devs {
			if d.peek(g.end) {
				g.h = append(g.h, d)
			}
		}
		heap.Init(&g.h)
		g.heapBuilt = true
	}
	if len(g.h) == 0 {
		return Message{}, false
	}
	d := g.h[0]
	m := d.pop()
	if d.peek(g.end) {
		heap.Fix(&g.h, 0)
	} else {
		heap.Pop(&g.h)
	}
	return m, true
}

// nextOf returns device i's next message if it comes before t.
func (g *Generator) nextOf(i int, t time.Time) (Message, bool) {
	g.heapBuilt = false
	d := g.devs[i]
	end := g.end
	if end.IsZero() || t.Before(end) {
		end = t
	}
	if !d.peek(end) {
		return Message{}, false
	}
	return d.pop(), true
}

func hash(id, kind, name string, i int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(name))
	h.Write([]byte{0, byte(i), byte(i >> 8)})
	return h.Sum64()
}

type activeFault struct {
	f                *Fault
	onset, breakdown time.Time
	// peak is when a decoy's drift peaks and starts to fade; end when its
	// effects are gone (the fade's end, or the repair); zero for never.
	peak, end time.Time
	repairAt  time.Time
	r         *rand.Rand
}

// devSim is one device's deterministic stream of messages.
type devSim struct {
	idx     int
	dev     Device
	m       *Model
	noise   *rand.Rand // signals and metric noise
	quirks  *rand.Rand // offline and late schedules
	offsets []float64  // per metric, the device's own baseline offset
	faults  []*activeFault
	stopAt  time.Time
	skew    time.Duration

	lateEvery, lateHold time.Duration
	offEvery, offFor    time.Duration

	base     time.Time // the first sample's time, before jitter
	k        int64     // number of the next sample
	t        time.Time // time of the next sample
	sigT     time.Time
	load     float64 // deviations of the signals from their cycle
	ambient  float64
	lateFrom time.Time
	lateTo   time.Time
	offFrom  time.Time
	offTo    time.Time
	offline  bool
	buf      []Reading
	pending  []Message
	lastAt   time.Time
	done     bool
	u        []float64     // per fault, this sample's intermittent draw
	headAt   int64         // pending[0].At in Unix ns, the heap's key (set by peek)
	events   []DeviceEvent // the faults' events still to come, by time
	noiseEv  []noiseStream
	due      []DeviceEvent
}

func newDevSim(i int, d Device, seed uint64, dataStart time.Time) *devSim {
	ds := &devSim{idx: i, dev: d, m: d.model}
	ds.noise = rand.New(rand.NewPCG(seed, hash(d.ID, "noise", "", 0)))
	ds.quirks = rand.New(rand.NewPCG(seed, hash(d.ID, "quirks", "", 0)))
	for _, mt := range ds.m.Metrics {
		ds.offsets = append(ds.offsets, mt.Spread*ds.noise.NormFloat64())
	}
	ds.base = dataStart.Add(time.Duration(ds.noise.Int64N(int64(ds.m.Interval)))).Truncate(time.Millisecond)
	ds.sigT = ds.base
	ds.load = ds.m.Load.Noise * ds.noise.NormFloat64()
	ds.ambient = ds.m.Ambient.Noise * ds.noise.NormFloat64()
	return ds
}

// schedule sets the first sample time and the first quirk windows.
func (d *devSim) schedule() {
	d.t = d.sampleTime(0)
	if d.offEvery > 0 {
		d.offFrom = d.base.Add(d.expDur(d.offEvery))
		d.offTo = d.offFrom.Add(d.offFor)
	}
	if d.lateEvery > 0 {
		d.lateFrom = d.base.Add(d.expDur(d.lateEvery))
		d.lateTo = d.lateFrom.Add(d.lateHold)
	}
}

func (d *devSim) expDur(mean time.Duration) time.Duration {
	return time.Duration(d.quirks.ExpFloat64() * float64(mean)).Truncate(time.Millisecond)
}

func (d *devSim) sampleTime(k int64) time.Time {
	t := d.base.Add(time.Duration(k) * d.m.Interval)
	if d.m.Jitter > 0 {
		t = t.Add(time.Duration((d.noise.Float64()*2 - 1) * float64(d.m.Jitter)).Truncate(time.Millisecond))
	}
	return t
}

// peek makes sure a message is pending, unless the device has none left
// before end (zero: no end).
func (d *devSim) peek(end time.Time) bool {
	for len(d.pending) == 0 {
		if d.done || !end.IsZero() && !d.t.Before(end) {
			return false
		}
		d.step()
	}
	d.headAt = d.pending[0].At.UnixNano()
	return end.IsZero() || d.pending[0].At.Before(end)
}

func (d *devSim) pop() Message {
	m := d.pending[0]
	d.pending = d.pending[1:]
	if len(d.pending) == 0 {
		d.pending = d.pending[:0:0]
	}
	return m
}

func (d *devSim) emit(m Message) {
	if m.At.Before(d.lastAt) {
		m.At = d.lastAt
	}
	d.lastAt = m.At
	m.Device, m.dev = d.dev.ID, d.idx
	d.pending = append(d.pending, m)
}

// step handles the device's next sample time: it may emit statuses, a held
// burst and the sample, or nothing.
func (d *devSim) step() {
	t := d.t
	d.k++
	d.t = d.sampleTime(d.k)
	if !d.stopAt.IsZero() && !t.Before(d.stopAt) {
		d.emit(Message{At: d.stopAt, Status: true, Online: false})
		d.done = true
		return
	}
	if d.offEvery > 0 {
		if d.offline && !d.offTo.After(t) {
			d.offline = false
			d.emit(Message{At: d.offTo, Status: true, Online: true})
		}
		for !d.offTo.After(t) {
			d.offFrom = d.offTo.Add(d.expDur(d.offEvery))
			d.offTo = d.offFrom.Add(d.offFor)
		}
		if !t.Before(d.offFrom) {
			if !d.offline {
				d.offline = true
				d.emit(Message{At: d.offFrom, Status: true, Online: false})
			}
			d.dueEvents(t) // what happens while offline is lost
			return         // measured while offline: lost
		}
	}
	for _, e := range d.dueEvents(t) {
		d.emit(Message{At: e.Time, Events: []DeviceEvent{{Time: e.Time.Add(d.skew), Code: e.Code,
			Component: e.Component, Severity: e.Severity, Text: e.Text}}})
	}
	r := d.sample(t)
	if d.lateEvery > 0 {
		if !t.Before(d.lateFrom) && t.Before(d.lateTo) {
			d.buf = append(d.buf, r)
			return
		}
		if !t.Before(d.lateTo) {
			if len(d.buf) > 0 {
				d.emit(Message{At: d.lateTo, Readings: d.buf})
				d.buf = nil
			}
			for !d.lateTo.After(t) {
				d.lateFrom = d.lateTo.Add(d.expDur(d.lateEvery))
				d.lateTo = d.lateFrom.Add(d.lateHold)
			}
			if !t.Before(d.lateFrom) {
				d.buf = append(d.buf, r)
				return
			}
		}
	}
	d.emit(Message{At: t, Readings: []Reading{r}})
}

// sample computes the device's metrics at true time t.
func (d *devSim) sample(t time.Time) Reading {
	m := d.m
	// The signals: a daily cycle plus an AR(1) deviation whose correlation
	// decays with the time since the last sample.
	// The first sample may come before base by its jitter: a negative dt
	// would make the correlation over 1 and the signal NaN for good.
	dt := max(t.Sub(d.sigT).Seconds(), 0)
	d.sigT = t
	d.load = ar1(d.load, dt, m.Load, d.noise.NormFloat64())
	d.ambient = ar1(d.ambient, dt, m.Ambient, d.noise.NormFloat64())
	local := t.In(m.TimeZone)
	load := daily(m.Load.Daily, local) + d.load
	ambient := daily(m.Ambient.Daily, local) + d.ambient

	if cap(d.u) < len(d.faults) {
		d.u = make([]float64, len(d.faults))
	}
	d.u = d.u[:len(d.faults)]
	for i, f := range d.faults {
		d.u[i] = f.r.Float64()
	}
	vals := make([]Value, len(m.Metrics))
	for i, mt := range m.Metrics {
		v := mt.Baseline + d.offsets[i] + daily(mt.Daily, local) + mt.Load*load + mt.Ambient*ambient +
			mt.Noise*d.noise.NormFloat64()
		pinned := false
		for fi, f := range d.faults {
			if t.Before(f.onset) || !f.end.IsZero() && !t.Before(f.end) {
				continue
			}
			if f.f.Then == Pin && !f.breakdown.IsZero() && !t.Before(f.breakdown) {
				for _, p := range f.f.Pin {
					if p.Name == mt.Name {
						v, pinned = p.V, true
					}
				}
			}
			if pinned {
				continue
			}
			lvl := Level(f.f.Shape, progress(t, f.onset, f.f.BreakdownAfter), f.f.Steepness, f.f.Duty, d.u[fi])
			if !f.peak.IsZero() && t.After(f.peak) {
				lvl *= 1 - float64(t.Sub(f.peak))/float64(f.f.Fade) // fading: end is peak + Fade
			}
			for _, e := range f.f.Effects {
				if e.Metric == mt.Name {
					v = e.Apply(v, lvl)
				}
			}
		}
		if !pinned {
			if mt.Min != nil {
				v = max(v, *mt.Min)
			}
			if mt.Max != nil {
				v = min(v, *mt.Max)
			}
			p := math.Pow10(mt.Decimals)
			v = math.Round(v*p) / p
		}
		if v == 0 {
			v = 0 // no -0 in payloads
		}
		vals[i] = Value{Name: mt.Name, V: v}
	}
	return Reading{Time: t.Add(d.skew), Metrics: vals}
}

// ar1 advances an AR(1) deviation with the signal's noise and correlation
// time over dt seconds.
func ar1(x, dt float64, s Signal, n float64) float64 {
	if s.Noise == 0 || s.Tau <= 0 {
		return 0
	}
	rho := math.Exp(-dt / s.Tau.Seconds())
	return rho*x + s.Noise*math.Sqrt(1-rho*rho)*n
}

// daily is a daily cycle's value at local time t.
func daily(c Daily, t time.Time) float64 {
	if c.Amplitude == 0 {
		return 0
	}
	h, m, s := t.Clock()
	sec := float64(h*3600+m*60+s) + float64(t.Nanosecond())/1e9
	return c.Amplitude * math.Cos(2*math.Pi*(sec-c.Phase.Seconds())/86400)
}

// devHeap orders devices by their next message, then by fleet order.
type devHeap []*devSim

func (h devHeap) Len() int { return len(h) }
func (h devHeap) Less(i, j int) bool {
	if a, b := h[i].headAt, h[j].headAt; a != b {
		return a < b
	}
	return h[i].idx < h[j].idx
}
func (h devHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *devHeap) Push(x any)   { *h = append(*h, x.(*devSim)) }
func (h *devHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// String describes the device for logs.
func (d Device) String() string {
	return d.ID + " (" + d.Model + ")"
}

// avoiding returns the devices of all that none of the faults named in
// avoid picked.
func avoiding(all []Device, avoid []string, picked map[string][]string) []Device {
	if len(avoid) == 0 {
		return all
	}
	taken := map[string]bool{}
	for _, name := range avoid {
		for _, id := range picked[name] {
			taken[id] = true
		}
	}
	return slices.DeleteFunc(slices.Clone(all), func(d Device) bool { return taken[d.ID] })
}
