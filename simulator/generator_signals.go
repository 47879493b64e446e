package simulator

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/proactivehq/proactive"
)

// DeviceEvent is one event a device reports on its events topic: its time
// by the device's clock, its code and the optional component, severity and
// text.
type DeviceEvent struct {
	Time      time.Time
	Code      string
	Component string
	Severity  proactive.Severity
	Text      string
}

// noiseStream is one noise event of a device's model: a Poisson process
// whose next occurrence is next.
type noiseStream struct {
	spec *EventSpec
	r    *rand.Rand
	next time.Time
}

// plan sets a fault's breakdown, a decoy's peak and end, its repair and its
// events on device d. Each draws from a generator of its own, so that adding
// events or a repair to a scenario leaves its telemetry as it was.
func (g *Generator) plan(d *devSim, af *activeFault, fi int) {
	f := af.f
	ref := time.Time{} // what the events precede: the breakdown, or a decoy's peak
	switch {
	case f.Decoy:
		af.peak = af.onset.Add(f.BreakdownAfter)
		af.end = af.peak.Add(f.Fade)
		ref = af.peak
	case f.breaks:
		af.breakdown = af.onset.Add(f.BreakdownAfter)
		ref = af.breakdown
	}
	if f.Repair != nil {
		r := rand.New(rand.NewPCG(g.sc.Seed, hash(d.dev.ID, "repair", f.Name, fi)))
		if r.Float64() < f.Repair.Probability {
			from := af.onset
			if !af.breakdown.IsZero() {
				from = af.breakdown
			}
			af.repairAt = from.Add(f.Repair.After).Truncate(time.Millisecond)
			af.end = af.repairAt
		}
	}
	r := rand.New(rand.NewPCG(g.sc.Seed, hash(d.dev.ID, "events", f.Name, fi)))
	for i := range f.Events {
		e := &f.Events[i]
		// Both draws happen whatever comes of them, so that one event's
		// outcome does not shift the next one's.
		shows, u := r.Float64() < e.Probability, r.Float64()
		if !shows || ref.IsZero() {
			continue
		}
		at := ref.Add(-e.Lead)
		if e.Jitter > 0 {
			at = at.Add(time.Duration((2*u - 1) * float64(e.Jitter)))
		}
		for at = at.Truncate(time.Millisecond); ; at = at.Add(e.Every) {
			if !at.Before(g.dataStart) {
				d.events = append(d.events, DeviceEvent{Time: at, Code: e.Code, Component: e.Component, Severity: e.Severity, Text: e.Text})
			}
			if e.Every <= 0 || !at.Add(e.Every).Before(ref) {
				break
			}
		}
	}
}

// noiseEvents starts the device's noise events, those of its model.
func (d *devSim) noiseEvents(seed uint64, dataStart time.Time) {
	for i := range d.m.Events {
		e := &d.m.Events[i]
		ns := noiseStream{spec: e, r: rand.New(rand.NewPCG(seed, hash(d.dev.ID, "noise-event", e.Code, i)))}
		ns.next = dataStart.Add(ns.gap())
		d.noiseEv = append(d.noiseEv, ns)
	}
}

// gap draws the time to the stream's next event.
func (ns *noiseStream) gap() time.Duration {
	days := ns.r.ExpFloat64() / ns.spec.Rate
	return time.Duration(min(days, 365*100) * 24 * float64(time.Hour)).Truncate(time.Millisecond)
}

// dueEvents takes the device's events at or before t off its queues and
// returns them by time (valid until the next call).
func (d *devSim) dueEvents(t time.Time) []DeviceEvent {
	d.due = d.due[:0]
	n := 0
	for n < len(d.events) && !d.events[n].Time.After(t) {
		n++
	}
	d.due = append(d.due, d.events[:n]...)
	d.events = d.events[n:]
	for i := range d.noiseEv {
		ns := &d.noiseEv[i]
		for !ns.next.After(t) {
			e := ns.spec
			d.due = append(d.due, DeviceEvent{Time: ns.next, Code: e.Code, Component: e.Component, Severity: e.Severity, Text: e.Text})
			ns.next = ns.next.Add(max(ns.gap(), time.Millisecond))
		}
	}
	if len(d.noiseEv) > 0 {
		slices.SortStableFunc(d.due, func(a, b DeviceEvent) int { return a.Time.Compare(b.Time) })
	}
	return d.due
}
