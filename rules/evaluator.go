package rules

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/expr-lang/expr/vm"

	"github.com/proactivehq/proactive"
)

// DeviceFunc returns what rules may read of a device; ok is false for a
// device the registry does not know, whose model then comes from its samples.
type DeviceFunc func(id proactive.DeviceID) (info DeviceInfo, ok bool)

// device is the state the engine keeps for one device.
type device struct {
	id      proactive.DeviceID
	info    DeviceInfo
	latest  []float64 // by metric slot; NaN until seen
	windows []*Window // by window slot; nil until the metric is seen
	// lastSeen is the newest sample time; lastEval the newest evaluation
	// on data (sample time); lastTick the newest evaluation of the
	// since_seen() rules on the clock (Tick, wall time).
	lastSeen, lastEval, lastTick time.Time
	// The maps are nil until the device's first alert: most devices never
	// have one, and an evaluation then reads no map of its own.
	alerts map[string]*alertState // by rule name
	// holder is the rule whose alert is firing, per component: one firing
	// alert per device and component.
	holder map[string]string
	// firedAt is when an alert last fired, per component, for cooldowns.
	firedAt map[string]time.Time
	// events is the device's event history, nil until its first event;
	// maint the time (Unix ns) of the last maintenance per component, nil
	// until the first.
	events *eventLog
	maint  map[string]int64
	// groups are the fleet baselines d contributes to, by window slot.
	groups []*baselineGroup
}

// alertState is where one rule stands for one device.
type alertState struct {
	state      proactive.AlertState // "" when inactive
	activeAt   time.Time
	firedAt    time.Time
	falseSince time.Time
	ttf        time.Duration
}

// Evaluator is the rule engine for a set of devices, without goroutines: it
// takes samples and clock ticks and returns the alerts they cause. The
// Engine runs several, one per shard of devices; backtests and rule tests
// run one directly. It is not safe for concurrent use.
type Evaluator struct {
	set       *RuleSet
	devices   map[proactive.DeviceID]*device
	lookup    DeviceFunc
	tolerance time.Duration
	bound     []*boundRule // set.rules compiled against env
	byModel   map[string][]*boundRule
	vm        vm.VM
	env       evalEnv
	stats     map[string]*ruleStats
	late      int64
	out       []proactive.Alert
	touched   uint32 // see prefetch
	ids       []byte // see intern
	maintID   int64  // the highest maintenance ID observed
	fleet     *baselines
	// seenFloor is when telemetry intake last resumed (zero: not known):
	// the clock's since_seen() counts no silence before it.
	seenFloor time.Time
}

// boundRule is a rule with its programs compiled against one evaluator's
// environment.
type boundRule struct {
	*Rule
	when, predict *vm.Program
	stats         *ruleStats // the evaluator's stats[Name]
}

// ruleStats are an evaluator's counts for one rule.
type ruleStats struct {
	evaluations, errors int64
	lastErr             error
	lastErrAt           time.Time
}

func newEvaluator(set *RuleSet, lookup DeviceFunc, tolerance time.Duration) *Evaluator {
	ev := &Evaluator{
		devices: map[proactive.DeviceID]*device{}, lookup: lookup, tolerance: tolerance,
		stats: map[string]*ruleStats{}, fleet: newBaselines(),
	}
	ev.env.fleet = ev.fleet
	ev.vm.MemoryBudget = MemoryBudget
	ev.setRules(set)
	return ev
}

// setRules swaps in a new generation of rules. Windows and alert states of
// rules that keep their names carry over.
func (ev *Evaluator) setRules(set *RuleSet) {
	ev.set = set
	ev.env.layout = set.layout
	ev.byModel = map[string][]*boundRule{}
	ev.bound = ev.bound[:0]
	names := make(map[string]bool, len(set.rules))
	for _, r := range set.rules {
		b := &boundRule{Rule: r}
		// The set compiled already, against the same layout: this cannot
		// fail, and gives the same slots.
		if c, err := set.layout.compileExpr(r.When, "bool", &ev.env); err == nil {
			b.when = c.prog
		}
		if r.predict != nil {
			if c, err := set.layout.compileExpr(r.Predict, "duration", &ev.env); err == nil {
				b.predict = c.prog
			}
		}
		names[r.Name] = true
		if ev.stats[r.Name] == nil {
			ev.stats[r.Name] = &ruleStats{}
		}
		b.stats = ev.stats[r.Name]
		ev.bound = append(ev.bound, b)
	}
	// The alerts of rules that are gone go with them, and free their
	// components for the rules that remain.
	for _, d := range ev.devices {
		for name := range d.alerts {
			if !names[name] {
				delete(d.alerts, name)
			}
		}
		for comp, holder := range d.holder {
			if !names[holder] {
				delete(d.holder, comp)
			}
		}
	}
	for name := range ev.stats {
		if !names[name] {
			delete(ev.stats, name)
		}
	}
}

func (ev *Evaluator) rulesFor(model string) []*boundRule {
	rs, ok := ev.byModel[model]
	if !ok {
		for _, r := range ev.bound {
			if r.Matches(model) {
				rs = append(rs, r)
			}
		}
		ev.byModel[model] = rs
	}
	return rs
}

func (ev *Evaluator) device(s *proactive.Sample) *device {
	d := ev.devices[s.Device]
	if d == nil {
		d = &device{id: ev.intern(s.Device)}
		d.info.AgeDays = math.NaN()
		if ev.lookup != nil {
			if info, ok := ev.lookup(s.Device); ok {
				d.info = info
			}
		}
		ev.devices[d.id] = d
	}
	if d.info.Model == "" && s.Model != "" {
		d.info.Model = s.Model
	}
	// A reload may have added metrics and windows since the device was made.
	for len(d.latest) < len(ev.set.layout.metricNames) {
		d.latest = append(d.latest, math.NaN())
	}
	for len(d.windows) < len(ev.set.layout.windowKeys) {
		d.windows = append(d.windows, nil)
	}
	return d
}

// intern returns a copy of id in ev.ids, where the device IDs lie side by
// side. A lookup in ev.devices compares the sample's ID with the stored key's
// bytes: packed, the keys of a whole fleet stay in the processor's caches,
// where one allocation each would be a cache miss a sample.
func (ev *Evaluator) intern(id proactive.DeviceID) proactive.DeviceID {
	const chunk = 64 << 10
	if len(id) == 0 || len(id) > chunk/16 {
		return proactive.DeviceID(strings.Clone(string(id)))
	}
	if cap(ev.ids)-len(ev.ids) < len(id) {
		ev.ids = make([]byte, 0, chunk)
	}
	start := len(ev.ids)
	ev.ids = append(ev.ids, id...)
	// The bytes are never written again: ev.ids only grows past them.
	return proactive.DeviceID(unsafe.String(&ev.ids[start], len(id)))
}

// Observe feeds one sample and evaluates the device's rules at the sample's
// time (event time, so replays and backtests decide as live evaluation did).
// It returns the alerts that fired or resolved; the slice is reused by the
// next call.
func (ev *Evaluator) Observe(s proactive.Sample) []proactive.Alert {
	ev.out = ev.out[:0]
	d := ev.device(&s)
	ev.prefetch(d)
	ev.add(d, &s, nil)
	ev.evaluate(d, d.lastSeen, false)
	return ev.out
}

// prefetch reads a word of each of d's windows (of the bucket a sample in
// time lands in, after the fields next to the ring that say which, and of
// the cached span the queries read) and of its latest values. The loads do not depend on one another, so the
// processor waits for their cache misses together, where Add and the
// queries would wait for each in turn; with a fleet's windows far larger
// than the caches, those misses are most of the cost of a sample. It
// changes nothing.
func (ev *Evaluator) prefetch(d *device) {
	var x uint32
	for _, w := range d.windows {
		if w != nil {
			x |= w.ring[w.headSlot].n | uint32(w.cache.n)
		}
	}
	if len(d.latest) > 0 {
		x |= uint32(math.Float64bits(d.latest[len(d.latest)-1]))
	}
	ev.touched = x // so that the loads are not optimised away
}

// add records a sample of d: its latest values, its windows and when it was
// last seen. With since (by window slot, Unix ns) a window takes the sample
// only from its since on: a rebuild loaded the earlier ones as aggregates.
func (ev *Evaluator) add(d *device, s *proactive.Sample, since []int64) {
	l := ev.set.layout
	for name, v := range s.Metrics {
		slot, ok := l.metrics[name]
		if !ok {
			continue // no rule reads it
		}
		if !s.Time.Before(d.lastSeen) || math.IsNaN(d.latest[slot]) {
			d.latest[slot] = v
		}
		for _, ws := range l.byMetric[slot] {
			if since != nil && s.Time.UnixNano() < since[ws] {
				continue
			}
			if !ev.window(d, ws).Add(s.Time, v) {
				ev.late++
			}
		}
	}
	if s.Time.After(d.lastSeen) {
		d.lastSeen = s.Time
	}
	if len(l.baselinedSlots) > 0 {
		ev.contribute(d, s)
	}
}

// window returns d's window in slot ws, made on first use.
func (ev *Evaluator) window(d *device, ws int) *Window {
	w := d.windows[ws]
	if w == nil {
		w = NewWindow(ev.set.layout.windowKeys[ws].length, ev.tolerance)
		d.windows[ws] = w
	}
	return w
}

// Tick evaluates, at now, the rules that read since_seen(), for every
// device, so that a silent device is caught without new data.
func (ev *Evaluator) Tick(now time.Time) []proactive.Alert {
	ev.out = ev.out[:0]
	ev.env.floor = ev.seenFloor
	for _, d := range ev.devices {
		ev.evaluate(d, now, true)
	}
	ev.env.floor = time.Time{}
	// In device order, not the map's: a backtest's report is the same on
	// every run.
	if len(ev.out) > 1 {
		slices.SortStableFunc(ev.out, func(a, b proactive.Alert) int { return strings.Compare(string(a.Device), string(b.Device)) })
	}
	return ev.out
}

func (ev *Evaluator) evaluate(d *device, now time.Time, onlySinceSeen bool) {
	if now.Before(d.lastEval) {
		return // the clock of a device never goes back
	}
	// The clock's ticks (wall time) and the data (sample time) keep
	// apart: a tick must not hold back the evaluation of history that
	// arrives after it (a fleet catching up, a backfill) for the rules
	// that do not read the clock. The since_seen() rules, which both
	// evaluate, never go back behind either.
	if onlySinceSeen {
		d.lastTick = now
	} else {
		d.lastEval = now
	}
	ev.env.dev = d
	ev.env.now = now
	for _, r := range ev.rulesFor(d.info.Model) {
		if onlySinceSeen && !r.SinceSeen() || !onlySinceSeen && r.SinceSeen() && now.Before(d.lastTick) {
			continue
		}
		ev.env.rule, ev.env.from = r, noTime
		if r.ResetOnMaintenance {
			ev.env.from = d.maintenance(r.Component)
		}
		st := r.stats
		st.evaluations++
		out, err := ev.vm.Run(r.when, nil)
		if err != nil {
			st.errors++
			st.lastErr, st.lastErrAt = err, now
			continue // a broken evaluation leaves the alert as it was
		}
		ev.step(d, r, out.(bool), now)
	}
}

// step advances one rule's alert for one device: pending once the condition
// holds, firing once it has held for `for` (unless the component is in
// cooldown or already has a firing alert from another rule), resolved once
// it has been false for `clear_for`.
func (ev *Evaluator) step(d *device, r *boundRule, cond bool, now time.Time) {
	a := d.alerts[r.Name]
	if a == nil {
		if !cond {
			return
		}
		if d.alerts == nil {
			d.alerts = map[string]*alertState{}
			d.holder = map[string]string{}
			d.firedAt = map[string]time.Time{}
		}
		a = &alertState{}
		d.alerts[r.Name] = a
	}
	switch {
	case cond && a.state == "":
		a.state, a.activeAt = proactive.AlertPending, now
		fallthrough
	case cond && a.state == proactive.AlertPending:
		if now.Sub(a.activeAt) < r.For {
			return
		}
		if h, held := d.holder[r.Component]; held && h != r.Name {
			return
		}
		if last, ok := d.firedAt[r.Component]; ok && r.Cooldown > 0 && now.Sub(last) < r.Cooldown {
			return
		}
		a.state, a.firedAt, a.falseSince = proactive.AlertFiring, now, time.Time{}
		d.holder[r.Component] = r.Name
		d.firedAt[r.Component] = now
		a.ttf = ev.predict(d, r)
		ev.emit(d, r, a)
	case cond && a.state == proactive.AlertFiring:
		a.falseSince = time.Time{}
		a.ttf = ev.predict(d, r)
	case !cond && a.state == proactive.AlertPending:
		delete(d.alerts, r.Name)
	case !cond && a.state == proactive.AlertFiring:
		if a.falseSince.IsZero() {
			a.falseSince = now
		}
		if now.Sub(a.falseSince) < r.ClearFor {
			return
		}
		a.state = proactive.AlertResolved
		ev.emit(d, r, a)
		delete(d.alerts, r.Name)
		delete(d.holder, r.Component)
	}
}

// predict evaluates the rule's predict expression; 0 means no prediction.
func (ev *Evaluator) predict(d *device, r *boundRule) time.Duration {
	if r.predict == nil {
		return 0
	}
	out, err := ev.vm.Run(r.predict, nil)
	if err != nil {
		st := r.stats
		st.errors++
		st.lastErr, st.lastErrAt = fmt.Errorf("predict: %w", err), ev.env.now
		return 0
	}
	ttf := out.(time.Duration)
	if ttf >= Never || ttf < 0 {
		return 0
	}
	return max(ttf, time.Nanosecond) // already crossed: due now, but still a prediction
}

func (ev *Evaluator) emit(d *device, r *boundRule, a *alertState) {
	metrics := make(map[string]float64)
	for slot, name := range ev.set.layout.metricNames {
		if slot < len(d.latest) && !math.IsNaN(d.latest[slot]) {
			metrics[name] = d.latest[slot]
		}
	}
	data := summaryData{
		Rule: r.Name, Component: r.Component, Severity: r.Severity,
		Device:  summaryDevice{ID: string(d.id), Model: d.info.Model, AgeDays: d.info.AgeDays},
		Metrics: metrics, Prediction: a.ttf,
	}
	if a.ttf > 0 {
		data.TimeToFailure = humanDuration(a.ttf)
	}
	ev.out = append(ev.out, proactive.Alert{
		Rule: r.Name, Device: d.id, Model: d.info.Model, Component: r.Component,
		Severity: r.Severity, State: a.state, Summary: r.renderSummary(data),
		ActiveAt: a.activeAt, FiredAt: a.firedAt, TimeToFailure: a.ttf, Metrics: metrics, Cooldown: r.Cooldown,
		Models:  r.Models,
		Contact: r.Contact.OrAuto(),
	})
}

// AlertStatus is one rule's current alert for one device.
type AlertStatus struct {
	Rule          string               `json:"rule"`
	Device        proactive.DeviceID   `json:"device_id"`
	Component     string               `json:"component"`
	State         proactive.AlertState `json:"state"`
	ActiveAt      time.Time            `json:"active_at"`
	FiredAt       time.Time            `json:"fired_at,omitzero"`
	TimeToFailure time.Duration        `json:"time_to_failure_ns,omitempty"`
}

// Alerts lists the pending and firing alerts, by device then rule.
func (ev *Evaluator) Alerts() []AlertStatus {
	var out []AlertStatus
	for _, d := range ev.devices {
		for name, a := range d.alerts {
			comp := ""
			for _, r := range ev.set.rules {
				if r.Name == name {
					comp = r.Component
				}
			}
			out = append(out, AlertStatus{Rule: name, Device: d.id, Component: comp, State: a.state,
				ActiveAt: a.activeAt, FiredAt: a.firedAt, TimeToFailure: a.ttf})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Device != out[j].Device {
			return out[i].Device < out[j].Device
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}

// LateSamples returns how many samples arrived too late for their windows.
func (ev *Evaluator) LateSamples() int64 { return ev.late }

// NewEvaluator returns an evaluator of set. Samples may arrive up to
// tolerance behind a device's newest and still count.
func NewEvaluator(set *RuleSet, lookup DeviceFunc, tolerance time.Duration) *Evaluator {
	return newEvaluator(set, lookup, tolerance)
}
