package simulator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/proactivehq/proactive"
)

// Scenario is a fleet to simulate and the faults to inject into it, as read
// from a scenario file (ParseScenario). Times of faults are offsets from the
// first simulated sample: Start minus Backfill.
type Scenario struct {
	// Name names the scenario in logs; default the file name.
	Name string
	// Seed makes the run reproducible: the same seed, scenario and Start
	// give the same messages. Default 1.
	Seed uint64
	// Start is when the live part begins; zero means the time the run
	// starts.
	Start time.Time
	// Backfill is the history published before Start, as fast as the broker
	// takes it, so that the rules' windows are full when the live part
	// begins.
	Backfill time.Duration
	// Duration is how much simulated time the live part runs; zero runs
	// until stopped.
	Duration time.Duration
	// Speed is how many simulated seconds pass per wall-clock second in the
	// live part; zero means the caller's default (real time).
	Speed float64
	// CatchUp starts the live part this long before Start and never lets
	// it run ahead of the wall clock: it runs at Speed until its simulated
	// time reaches the wall clock, then in real time. Faults can then
	// unfold quickly and every sample, alert and ticket still carries a
	// time that has passed (the demo); zero: the live part runs at Speed
	// throughout, into the future when Speed is above 1.
	CatchUp time.Duration
	Models  []Model
	Faults  []Fault
	Quirks  []Quirk
	devices []Device // the fleet, in model order
}

// Model is a device model and its fleet.
type Model struct {
	// Name is the model, as the rules' models globs see it (fridge-a1).
	Name string
	// Count is the number of devices of the model.
	Count int
	// ID is a printf pattern of the device ids, given the device's number
	// (First, First+1, ...): default Name + "-%03d".
	ID    string
	First int
	// TimeZone is where the devices are; daily cycles follow its local
	// time. Default UTC.
	TimeZone *time.Location
	// Interval is the time between two samples of a device, default 5m;
	// Jitter moves each sample by up to ± Jitter.
	Interval, Jitter time.Duration
	// Load and Ambient are the signals metrics correlate with: how hard
	// the device works and the temperature around it.
	Load, Ambient Signal
	// Metrics are sent in this order.
	Metrics []Metric
	// Events are noise: codes the devices report at random, unrelated to
	// any fault.
	Events []EventSpec
	line   int
}

// Signal is a slowly varying quantity a device's metrics follow: a baseline,
// a daily cycle and a random walk that returns to the baseline (an AR(1)
// process with standard deviation Noise and correlation time Tau).
type Signal struct {
	Baseline, Noise float64
	Daily           Daily
	// Tau is the correlation time of the noise, default 1h.
	Tau time.Duration
}

// Daily is a daily cycle: a cosine of the device's local time of day with
// this amplitude, peaking at Phase after midnight.
type Daily struct {
	Amplitude float64
	Phase     time.Duration
}

// Metric is one metric a model sends. A healthy device sends
//
//	Baseline + offset + Daily + Load·(load − its baseline) + Ambient·(ambient − its baseline) + noise
//
// where offset is drawn once per device (standard deviation Spread) and
// noise once per sample (standard deviation Noise); faults then add to it
// or multiply it, and the value is clamped to [Min, Max] and rounded to
// Decimals.
type Metric struct {
	Name                    string
	Baseline, Noise, Spread float64
	Daily                   Daily
	Load, Ambient           float64
	Min, Max                *float64
	// Decimals is how many decimals the value is sent with, default 3.
	Decimals int
}

// Shape is how a fault develops from its onset to its breakdown.
type Shape string

// The shapes of a fault, as functions of the progress p from onset (0) to
// breakdown (1) (see Level).
const (
	Linear       Shape = "linear"       // p
	Exponential  Shape = "exponential"  // (e^(k·p) − 1) / (e^k − 1): slow, then fast
	Step         Shape = "step"         // 1 from the onset
	Intermittent Shape = "intermittent" // 1 in a fraction Duty of samples, else 0
)

// Then is what happens at a fault's breakdown.
type Then string

// What a device does once a fault breaks it down.
const (
	Hold Then = "hold" // it goes on with the effects at their full magnitude
	Stop Then = "stop" // it stops publishing for good
	Pin  Then = "pin"  // the metrics in Pin hold fixed values
)

// Selector picks devices: those named in Devices and those whose model
// matches one of the Models globs (all devices when both are empty), then,
// with Count or Fraction, that many of them chosen by the seed.
type Selector struct {
	Devices  []string
	Models   []string
	Count    int
	Fraction float64
	// lines of the keys, for messages
	devicesAt, modelsAt, countAt *yaml.Node
}

// Fault is a failure to inject into the devices it selects.
type Fault struct {
	// Name names the fault in the ground truth (compressor_wear).
	Name string
	// Component is the part that fails, as the rules name it (compressor).
	Component string
	Selector
	// Onset is when the fault starts, after the first simulated sample,
	// plus up to Jitter drawn per device. With Rate, each device instead
	// gets its onset at random, Rate times per device-day on average, from
	// Onset on.
	Onset, Jitter time.Duration
	Rate          float64
	Shape         Shape
	// Steepness is k of the exponential shape, default 5.
	Steepness float64
	// Duty is the fraction of samples an intermittent fault shows in,
	// default 0.5.
	Duty float64
	// Effects move metrics: by Add, or by a factor of Multiply, at full
	// magnitude (at breakdown).
	Effects []Effect
	// BreakdownAfter is the time from onset to breakdown, when the fault
	// has a breakdown (always for linear and exponential faults; for step
	// and intermittent ones when the scenario gives one, possibly at the
	// onset itself).
	BreakdownAfter time.Duration
	Then           Then
	Pin            []Value
	// Decoy marks a drift with no failure behind it: the same shape and
	// effects as a fault up to BreakdownAfter, where instead of breaking
	// down it fades out over Fade (at once when zero) and the device is
	// healthy again. The ground truth lists it as a decoy, not a failure.
	Decoy bool
	Fade  time.Duration
	// Events are the error codes the device reports before the breakdown
	// (before the end of the drift, for a decoy).
	Events []EventSpec
	// Repair, when set, ends the fault with maintenance.
	Repair *Repair
	// Avoid names earlier faults of the scenario whose devices this one
	// does not pick: decoys on other devices than the faults they mimic.
	Avoid  []string
	breaks bool // the fault has a breakdown
	line   int
}

// Effect is how a fault moves one metric at its full magnitude: value + Add,
// or value × Multiply.
type Effect struct {
	Metric        string
	Add, Multiply float64
	multiply      bool
}

// Quirk is a misbehaviour of the devices it selects.
type Quirk struct {
	Selector
	// ClockSkew sets each device's clock off by up to ± ClockSkew (drawn
	// once per device): its timestamps are wrong by that much.
	ClockSkew time.Duration
	// LateEvery and LateHold: on average every LateEvery, the device holds
	// its data for LateHold, then sends it in one burst.
	LateEvery, LateHold time.Duration
	// OfflineEvery and OfflineFor: on average every OfflineEvery, the
	// device goes offline for OfflineFor; what it measures meanwhile is
	// lost. It says so on its status topic.
	OfflineEvery, OfflineFor time.Duration
	line                     int
}

// Device is one simulated device.
type Device struct {
	ID       string
	Model    string
	TimeZone string
	model    *Model
}

// Devices returns the fleet, in the order of the models.
func (s *Scenario) Devices() []Device { return s.devices }

// LoadScenario reads and parses a scenario file.
func LoadScenario(file string) (*Scenario, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return ParseScenario(file, b)
}

// ParseScenario parses a scenario. Keys are strict: an unknown key, a value
// of the wrong kind or an inconsistency is an error with file and line, and
// every problem is reported at once.
func ParseScenario(file string, data []byte) (*Scenario, error) {
	w := &walker{file: file}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &LineError{File: file, Line: 1, Msg: "empty scenario"}
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	root := doc.Content[0]
	sc := &Scenario{Seed: 1, Name: strings.TrimSuffix(path.Base(file), path.Ext(file))}
	var modelNodes, faultNodes, quirkNodes *yaml.Node
	w.mapping(root, "scenario",
		field{"name", func(v *yaml.Node) { w.str(v, "name", &sc.Name) }},
		field{"seed", func(v *yaml.Node) { w.uint64(v, "seed", &sc.Seed) }},
		field{"start", func(v *yaml.Node) {
			if s, ok := w.scalar(v, "start"); ok && s != "now" {
				t, err := time.Parse(time.RFC3339, s)
				if err != nil {
					w.errf(v, "start: %q is neither now nor an RFC 3339 time (2026-01-01T00:00:00Z)", s)
				}
				sc.Start = t
			}
		}},
		field{"backfill", func(v *yaml.Node) { w.duration(v, "backfill", &sc.Backfill) }},
		field{"duration", func(v *yaml.Node) { w.duration(v, "duration", &sc.Duration) }},
		field{"catch_up", func(v *yaml.Node) { w.duration(v, "catch_up", &sc.CatchUp) }},
		field{"speed", func(v *yaml.Node) {
			w.float(v, "speed", &sc.Speed)
			if sc.Speed < 0 {
				w.errf(v, "speed: must be positive")
			}
		}},
		field{"models", func(v *yaml.Node) { modelNodes = v }},
		field{"faults", func(v *yaml.Node) { faultNodes = v }},
		field{"quirks", func(v *yaml.Node) { quirkNodes = v }},
	)
	if modelNodes == nil {
		w.errf(root, "scenario: no models: a scenario needs at least one device model")
	} else {
		w.list(modelNodes, "models", func(i int, v *yaml.Node) { sc.Models = append(sc.Models, w.model(v)) })
	}
	sc.devices = w.fleet(sc.Models)
	fleetOK := len(w.errs) == 0
	if faultNodes != nil {
		w.list(faultNodes, "faults", func(i int, v *yaml.Node) { sc.Faults = append(sc.Faults, w.fault(v, sc, fleetOK)) })
	}
	if quirkNodes != nil {
		w.list(quirkNodes, "quirks", func(i int, v *yaml.Node) { sc.Quirks = append(sc.Quirks, w.quirk(v, sc, fleetOK)) })
	}
	if err := w.err(); err != nil {
		return nil, err
	}
	return sc, nil
}

func (w *walker) model(n *yaml.Node) Model {
	m := Model{First: 1, Interval: 5 * time.Minute, TimeZone: time.UTC, line: n.Line}
	m.Load.Tau, m.Ambient.Tau = time.Hour, time.Hour
	var metricsNode *yaml.Node
	w.mapping(n, "model",
		field{"name", func(v *yaml.Node) { w.str(v, "model name", &m.Name) }},
		field{"count", func(v *yaml.Node) {
			w.int(v, "count", &m.Count)
			if m.Count < 0 {
				w.errf(v, "count: must not be negative")
			}
		}},
		field{"id", func(v *yaml.Node) { w.str(v, "id", &m.ID) }},
		field{"first", func(v *yaml.Node) { w.int(v, "first", &m.First) }},
		field{"time_zone", func(v *yaml.Node) {
			var tz string
			w.str(v, "time_zone", &tz)
			loc, err := time.LoadLocation(tz)
			if err != nil {
				w.errf(v, "time_zone: %q is not a time zone (like Europe/Berlin or UTC)", tz)
				return
			}
			m.TimeZone = loc
		}},
		field{"interval", func(v *yaml.Node) {
			w.duration(v, "interval", &m.Interval)
			if m.Interval < time.Second {
				w.errf(v, "interval: must be at least 1s")
			}
		}},
		field{"jitter", func(v *yaml.Node) { w.duration(v, "jitter", &m.Jitter) }},
		field{"signals", func(v *yaml.Node) {
			w.mapping(v, "signals",
				field{"load", func(v *yaml.Node) { w.signal(v, "signals.load", &m.Load) }},
				field{"ambient", func(v *yaml.Node) { w.signal(v, "signals.ambient", &m.Ambient) }},
			)
		}},
		field{"metrics", func(v *yaml.Node) { metricsNode = v }},
		field{"events", func(v *yaml.Node) {
			w.list(v, "events", func(_ int, v *yaml.Node) { m.Events = append(m.Events, w.event(v, "noise event", true)) })
		}},
	)
	if m.Name == "" {
		w.errf(n, "model: name is required")
	}
	if m.ID == "" {
		m.ID = m.Name + "-%03d"
	}
	if m.Jitter*2 >= m.Interval && m.Jitter > 0 {
		w.errf(n, "model %s: jitter %s must be under half the interval %s", m.Name, proactive.FormatDuration(m.Jitter), proactive.FormatDuration(m.Interval))
	}
	if metricsNode == nil {
		w.errf(n, "model %s: metrics are required", m.Name)
		return m
	}
	w.entries(metricsNode, "metrics", func(k, v *yaml.Node) {
		mt := Metric{Name: k.Value, Decimals: 3}
		if !proactive.ValidMetricName(mt.Name) {
			w.errf(k, "metric %q: a name must match [a-z][a-z0-9_]{0,63}", mt.Name)
		}
		hasBaseline := false
		w.mapping(v, "metric "+mt.Name,
			field{"baseline", func(v *yaml.Node) { hasBaseline = true; w.float(v, "baseline", &mt.Baseline) }},
			field{"noise", func(v *yaml.Node) { w.nonNegative(v, "noise", &mt.Noise) }},
			field{"spread", func(v *yaml.Node) { w.nonNegative(v, "spread", &mt.Spread) }},
			field{"daily", func(v *yaml.Node) { w.daily(v, "daily", &mt.Daily) }},
			field{"load", func(v *yaml.Node) { w.float(v, "load", &mt.Load) }},
			field{"ambient", func(v *yaml.Node) { w.float(v, "ambient", &mt.Ambient) }},
			field{"min", func(v *yaml.Node) { w.optFloat(v, "min", &mt.Min) }},
			field{"max", func(v *yaml.Node) { w.optFloat(v, "max", &mt.Max) }},
			field{"decimals", func(v *yaml.Node) {
				w.int(v, "decimals", &mt.Decimals)
				if mt.Decimals < 0 || mt.Decimals > 12 {
					w.errf(v, "decimals: must be 0 to 12")
				}
			}},
		)
		if !hasBaseline {
			w.errf(v, "metric %s: baseline is required", mt.Name)
		}
		if mt.Min != nil && mt.Max != nil && *mt.Min > *mt.Max {
			w.errf(v, "metric %s: min %v is above max %v", mt.Name, *mt.Min, *mt.Max)
		}
		m.Metrics = append(m.Metrics, mt)
	})
	if len(m.Metrics) == 0 {
		w.errf(metricsNode, "model %s: metrics are required", m.Name)
	}
	return m
}

func (w *walker) nonNegative(n *yaml.Node, where string, dst *float64) {
	w.float(n, where, dst)
	if *dst < 0 {
		w.errf(n, "%s: must not be negative", where)
	}
}

func (w *walker) signal(n *yaml.Node, where string, s *Signal) {
	w.mapping(n, where,
		field{"baseline", func(v *yaml.Node) { w.float(v, where+".baseline", &s.Baseline) }},
		field{"noise", func(v *yaml.Node) { w.nonNegative(v, where+".noise", &s.Noise) }},
		field{"daily", func(v *yaml.Node) { w.daily(v, where+".daily", &s.Daily) }},
		field{"tau", func(v *yaml.Node) {
			w.duration(v, where+".tau", &s.Tau)
			if s.Tau <= 0 {
				w.errf(v, "%s.tau: must be positive", where)
			}
		}},
	)
}

func (w *walker) daily(n *yaml.Node, where string, d *Daily) {
	w.mapping(n, where,
		field{"amplitude", func(v *yaml.Node) { w.float(v, where+".amplitude", &d.Amplitude) }},
		field{"phase", func(v *yaml.Node) {
			s, ok := w.scalar(v, where+".phase")
			if !ok {
				return
			}
			t, err := time.Parse("15:04", s)
			if err != nil {
				w.errf(v, "%s.phase: %q is not a time of day (HH:MM, when the cycle peaks)", where, s)
				return
			}
			d.Phase = time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
		}},
	)
}

// fleet lists the devices of the models and checks their ids.
func (w *walker) fleet(models []Model) []Device {
	var out []Device
	seen := map[string]string{}
	for i := range models {
		m := &models[i]
		if m.Name == "" || m.ID == "" {
			continue
		}
		if v := patternVerb(m.ID); v != 'd' && v != 'x' && v != 'X' {
			w.errf(&yaml.Node{Line: m.line}, "model %s: id %q must hold one number verb such as %%03d", m.Name, m.ID)
			continue
		}
		for j := range m.Count {
			id := fmt.Sprintf(m.ID, m.First+j)
			if !proactive.ValidDeviceID(id) {
				w.errf(&yaml.Node{Line: m.line}, "model %s: device id %q does not match [A-Za-z0-9_.-]{1,64}", m.Name, id)
				break
			}
			if other, ok := seen[id]; ok {
				w.errf(&yaml.Node{Line: m.line}, "model %s: device id %q is already a device of model %s", m.Name, id, other)
				break
			}
			seen[id] = m.Name
			out = append(out, Device{ID: id, Model: m.Name, TimeZone: m.TimeZone.String(), model: m})
		}
	}
	return out
}

func (w *walker) selector(n *yaml.Node, where string, s *Selector) []field {
	return []field{
		{"devices", func(v *yaml.Node) { s.devicesAt = v; w.strs(v, where+" devices", &s.Devices) }},
		{"models", func(v *yaml.Node) { s.modelsAt = v; w.strs(v, where+" models", &s.Models) }},
		{"count", func(v *yaml.Node) {
			s.countAt = v
			w.int(v, where+" count", &s.Count)
			if s.Count < 0 {
				w.errf(v, "%s count: must not be negative", where)
			}
		}},
		{"fraction", func(v *yaml.Node) {
			w.float(v, where+" fraction", &s.Fraction)
			if s.Fraction < 0 || s.Fraction > 1 {
				w.errf(v, "%s fraction: must be between 0 and 1", where)
			}
		}},
	}
}

// checkSelector reports devices and globs that match nothing, and returns
// the devices the selector can pick from. With a broken fleet (!fleetOK) it
// checks only what does not depend on the fleet.
func (w *walker) checkSelector(n *yaml.Node, where string, s Selector, sc *Scenario, fleetOK bool) []Device {
	at := func(k *yaml.Node) *yaml.Node {
		if k != nil {
			return k
		}
		return n
	}
	bad := false
	for _, g := range s.Models {
		if _, err := path.Match(g, ""); err != nil {
			w.errf(at(s.modelsAt), "%s: models glob %q: %v", where, g, err)
			bad = true
		}
	}
	for _, id := range s.Devices {
		if fleetOK && !containsDevice(sc.devices, id) {
			w.errf(at(s.devicesAt), "%s: device %q is not in the fleet", where, id)
			bad = true
		}
	}
	cands := s.candidates(sc.devices)
	switch {
	case bad || !fleetOK || len(sc.devices) == 0:
	case len(cands) == 0:
		w.errf(at(s.modelsAt), "%s: selects no device", where)
	case s.Count > 0 && s.Fraction > 0:
		w.errf(n, "%s: give count or fraction, not both", where)
	case s.Count > len(cands):
		w.errf(at(s.countAt), "%s: count %d is more than the %d devices it selects from", where, s.Count, len(cands))
	}
	return cands
}

func containsDevice(ds []Device, id string) bool {
	for _, d := range ds {
		if d.ID == id {
			return true
		}
	}
	return false
}

// candidates returns the devices the selector picks from, before Count or
// Fraction.
func (s Selector) candidates(all []Device) []Device {
	if len(s.Devices) == 0 && len(s.Models) == 0 {
		return all
	}
	var out []Device
	for _, d := range all {
		ok := false
		for _, id := range s.Devices {
			ok = ok || d.ID == id
		}
		for _, g := range s.Models {
			m, _ := path.Match(g, d.Model)
			ok = ok || m
		}
		if ok {
			out = append(out, d)
		}
	}
	return out
}

func (w *walker) fault(n *yaml.Node, sc *Scenario, fleetOK bool) Fault {
	f := Fault{Shape: Linear, Then: Hold, Steepness: 5, Duty: 0.5, line: n.Line}
	where := "fault"
	var effectsNode, breakdownNode, decoyNode, repairNode, eventsNode *yaml.Node
	fields := append(w.selector(n, where, &f.Selector),
		field{"decoy", func(v *yaml.Node) { decoyNode = v; w.bool(v, "decoy", &f.Decoy) }},
		field{"fade", func(v *yaml.Node) { w.duration(v, "fade", &f.Fade) }},
		field{"events", func(v *yaml.Node) { eventsNode = v }},
		field{"repair", func(v *yaml.Node) { repairNode = v }},
		field{"avoid", func(v *yaml.Node) {
			w.strs(v, "avoid", &f.Avoid)
			for _, name := range f.Avoid {
				if !slices.ContainsFunc(sc.Faults, func(o Fault) bool { return o.Name == name }) {
					w.errf(v, "avoid: %q is not the name of an earlier fault", name)
				}
			}
		}},
		field{"name", func(v *yaml.Node) { w.str(v, "fault name", &f.Name) }},
		field{"component", func(v *yaml.Node) { w.str(v, "component", &f.Component) }},
		field{"onset", func(v *yaml.Node) { w.duration(v, "onset", &f.Onset) }},
		field{"jitter", func(v *yaml.Node) { w.duration(v, "jitter", &f.Jitter) }},
		field{"rate", func(v *yaml.Node) {
			w.float(v, "rate", &f.Rate)
			if f.Rate <= 0 {
				w.errf(v, "rate: must be positive (faults per device-day)")
			}
		}},
		field{"shape", func(v *yaml.Node) {
			var s string
			w.str(v, "shape", &s)
			switch f.Shape = Shape(s); f.Shape {
			case Linear, Exponential, Step, Intermittent:
			default:
				w.errf(v, "shape: %q is not one of linear, exponential, step, intermittent", s)
			}
		}},
		field{"steepness", func(v *yaml.Node) {
			w.float(v, "steepness", &f.Steepness)
			if f.Steepness <= 0 {
				w.errf(v, "steepness: must be positive")
			}
		}},
		field{"duty", func(v *yaml.Node) {
			w.float(v, "duty", &f.Duty)
			if f.Duty <= 0 || f.Duty > 1 {
				w.errf(v, "duty: must be in (0, 1]")
			}
		}},
		field{"effects", func(v *yaml.Node) { effectsNode = v }},
		field{"breakdown", func(v *yaml.Node) { breakdownNode = v }},
	)
	w.mapping(n, where, fields...)
	if f.Name == "" {
		w.errf(n, "fault: name is required")
	} else {
		where = "fault " + f.Name
	}
	if f.Component == "" {
		w.errf(n, "%s: component is required (the part that fails, as the rules name it)", where)
	}
	cands := w.checkSelector(n, where, f.Selector, sc, fleetOK)
	if effectsNode != nil {
		w.entries(effectsNode, where+" effects", func(k, v *yaml.Node) {
			e := Effect{Metric: k.Value}
			has := 0
			w.mapping(v, "effect "+e.Metric,
				field{"add", func(v *yaml.Node) { has++; w.float(v, "add", &e.Add) }},
				field{"multiply", func(v *yaml.Node) { has++; e.multiply = true; w.float(v, "multiply", &e.Multiply) }},
			)
			if has != 1 {
				w.errf(v, "effect %s: give add or multiply (one of them)", e.Metric)
			}
			if fleetOK && len(cands) > 0 && !anyHasMetric(cands, e.Metric) {
				w.errf(k, "%s: effect on %q, which none of its devices sends", where, e.Metric)
			}
			f.Effects = append(f.Effects, e)
		})
	}
	if breakdownNode != nil {
		f.breaks = true
		pinned := false
		w.mapping(breakdownNode, where+" breakdown",
			field{"after", func(v *yaml.Node) { w.duration(v, "breakdown after", &f.BreakdownAfter) }},
			field{"then", func(v *yaml.Node) {
				var s string
				w.str(v, "breakdown then", &s)
				switch f.Then = Then(s); f.Then {
				case Hold, Stop, Pin:
				default:
					w.errf(v, "breakdown then: %q is not one of hold, stop, pin", s)
				}
			}},
			field{"pin", func(v *yaml.Node) {
				pinned = true
				w.entries(v, "breakdown pin", func(k, v *yaml.Node) {
					p := Value{Name: k.Value}
					w.float(v, "pin "+p.Name, &p.V)
					if len(cands) > 0 && !anyHasMetric(cands, p.Name) {
						w.errf(k, "%s: pins %q, which none of its devices sends", where, p.Name)
					}
					f.Pin = append(f.Pin, p)
				})
			}},
		)
		if f.Then == Pin && !pinned {
			w.errf(breakdownNode, "%s: breakdown then pin needs pin: {metric: value}", where)
		}
		if (f.Then == Hold || f.Then == Stop) && pinned {
			w.errf(breakdownNode, "%s: pin is only for then: pin", where)
		}
	}
	if eventsNode != nil {
		w.list(eventsNode, where+" events", func(_ int, v *yaml.Node) {
			e := w.event(v, "event", false)
			if e.Component == "" {
				e.Component = f.Component
			}
			f.Events = append(f.Events, e)
		})
	}
	if repairNode != nil {
		f.Repair = w.repair(repairNode, "repair")
	}
	w.checkSignals(n, where, &f, decoyNode, repairNode, eventsNode)
	if (f.Shape == Linear || f.Shape == Exponential) && f.BreakdownAfter <= 0 && !f.Decoy {
		w.errf(n, "%s: a fault of shape %s needs breakdown: {after: DURATION}, the time from onset to breakdown", where, f.Shape)
	}
	if len(f.Effects) == 0 && f.Then != Stop && f.Then != Pin {
		w.errf(n, "%s: no effects and no breakdown that stops the device: it would change nothing", where)
	}
	return f
}

func anyHasMetric(ds []Device, name string) bool {
	for _, d := range ds {
		for _, m := range d.model.Metrics {
			if m.Name == name {
				return true
			}
		}
	}
	return false
}

func (w *walker) quirk(n *yaml.Node, sc *Scenario, fleetOK bool) Quirk {
	q := Quirk{line: n.Line}
	fields := append(w.selector(n, "quirk", &q.Selector),
		field{"clock_skew", func(v *yaml.Node) { w.duration(v, "clock_skew", &q.ClockSkew) }},
		field{"late", func(v *yaml.Node) {
			w.mapping(v, "late",
				field{"every", func(v *yaml.Node) { w.duration(v, "late every", &q.LateEvery) }},
				field{"hold", func(v *yaml.Node) { w.duration(v, "late hold", &q.LateHold) }},
			)
			if q.LateEvery <= 0 || q.LateHold <= 0 {
				w.errf(v, "late: needs every and hold, both positive")
			}
		}},
		field{"offline", func(v *yaml.Node) {
			w.mapping(v, "offline",
				field{"every", func(v *yaml.Node) { w.duration(v, "offline every", &q.OfflineEvery) }},
				field{"for", func(v *yaml.Node) { w.duration(v, "offline for", &q.OfflineFor) }},
			)
			if q.OfflineEvery <= 0 || q.OfflineFor <= 0 {
				w.errf(v, "offline: needs every and for, both positive")
			}
		}},
	)
	w.mapping(n, "quirk", fields...)
	w.checkSelector(n, "quirk", q.Selector, sc, fleetOK)
	if q.ClockSkew == 0 && q.LateEvery == 0 && q.OfflineEvery == 0 {
		w.errf(n, "quirk: give clock_skew, late or offline")
	}
	return q
}

// pick returns the devices a selector chooses, drawing Count or Fraction of
// the candidates with r.
func (s Selector) pick(all []Device, r interface{ Perm(int) []int }) []Device {
	cands := s.candidates(all)
	n := len(cands)
	switch {
	case s.Count > 0:
		n = min(s.Count, n)
	case s.Fraction > 0:
		n = int(math.Round(s.Fraction * float64(n)))
	default:
		return cands
	}
	perm := r.Perm(len(cands))[:n]
	// Keep fleet order, so that the choice reads naturally in the truth.
	idx := make([]bool, len(cands))
	for _, i := range perm {
		idx[i] = true
	}
	out := make([]Device, 0, n)
	for i, d := range cands {
		if idx[i] {
			out = append(out, d)
		}
	}
	return out
}
