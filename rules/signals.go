package rules

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// NeverSeen is what since_event and since_maintenance return when the
// device has no such event or maintenance: 100 years, so that
// `since_event("E7") < duration("2h")` is false and `> duration("30d")` true.
const NeverSeen = 876000 * time.Hour

// Bounds on a device's event history, so that a device sending a flood of
// codes cannot grow the engine's memory without limit: at most
// MaxEventCodes codes per device (the code seen longest ago goes first),
// each with at most MaxEventTimes times kept for events() (the oldest go
// first, so events() counts at most that many per code). A device's event
// history then takes at most about 270 KB (MaxEventCodes × (MaxEventTimes ×
// 8 + 100) bytes, reached only by a device flooding 32 codes); one that
// reports 3 codes hourly, about 1 KB (BenchmarkEventLogMemory).
const (
	MaxEventCodes = 32
	MaxEventTimes = 1024
)

// eventLog is one device's event history: per code, the times within the
// longest window a loaded rule gives events() (plus the late tolerance),
// and the newest time, which since_event reads however old it is.
type eventLog struct {
	codes []eventSeries
}

type eventSeries struct {
	code  string
	last  int64   // Unix ns of the newest event with the code
	times []int64 // ascending; only within the retention of last
}

// add records an event at ns, keeping the times within keep of the code's
// newest.
func (l *eventLog) add(code string, ns int64, keep time.Duration) {
	i := slices.IndexFunc(l.codes, func(s eventSeries) bool { return s.code == code })
	if i < 0 {
		if len(l.codes) >= MaxEventCodes {
			oldest := 0
			for j, s := range l.codes {
				if s.last < l.codes[oldest].last {
					oldest = j
				}
			}
			l.codes = slices.Delete(l.codes, oldest, oldest+1)
		}
		l.codes = append(l.codes, eventSeries{code: strings.Clone(code), last: ns})
		i = len(l.codes) - 1
	}
	s := &l.codes[i]
	s.last = max(s.last, ns)
	if keep <= 0 {
		s.times = nil
		return
	}
	cut := s.last - int64(keep)
	if ns >= cut {
		// An event of the same code at the same time is the same event
		// (InfluxDB keeps it once): a replay that meets it again, after a
		// snapshot, does not count it twice.
		if j, found := slices.BinarySearch(s.times, ns); !found {
			s.times = slices.Insert(s.times, j, ns)
		}
	}
	drop := 0
	for drop < len(s.times) && s.times[drop] < cut {
		drop++
	}
	drop = max(drop, len(s.times)-MaxEventTimes)
	if drop > 0 {
		s.times = append(s.times[:0], s.times[drop:]...)
	}
}

// matches reports whether code matches pattern: equal, or a prefix of it
// when pattern ends in *.
func matches(pattern, code string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(code, p)
	}
	return code == pattern
}

// count is events(pattern, window) at now: the events in (now-window, now].
func (l *eventLog) count(pattern string, window time.Duration, now int64) float64 {
	n := 0
	for i := range l.codes {
		s := &l.codes[i]
		if !matches(pattern, s.code) {
			continue
		}
		lo, _ := slices.BinarySearch(s.times, now-int64(window)+1)
		hi, _ := slices.BinarySearch(s.times, now+1)
		n += hi - lo
	}
	return float64(n)
}

// newest returns the time of the newest event matching pattern, noTime if
// none.
func (l *eventLog) newest(pattern string) int64 {
	t := int64(noTime)
	for i := range l.codes {
		if s := &l.codes[i]; matches(pattern, s.code) && s.last > t {
			t = s.last
		}
	}
	return t
}

// sizeBytes estimates the memory l holds.
func (l *eventLog) sizeBytes() int {
	n := 24 + cap(l.codes)*48
	for _, s := range l.codes {
		n += len(s.code) + cap(s.times)*8
	}
	return n
}

// since returns now - ns as a duration, NeverSeen for noTime, 0 for a time
// after now.
func since(now time.Time, ns int64) time.Duration {
	if ns == noTime {
		return NeverSeen
	}
	d := now.UnixNano() - ns
	if ns < 0 && d < 0 { // overflowed: older than any duration
		return NeverSeen
	}
	return min(max(time.Duration(d), 0), NeverSeen)
}

// deviceByID returns the device with id, made on first sight; model, when
// not empty, names its model if the registry does not.
func (ev *Evaluator) deviceByID(id proactive.DeviceID, model string) *device {
	return ev.device(&proactive.Sample{Device: id, Model: model})
}

// ObserveEvent records a device event and evaluates the device's rules, as
// a sample does, at the event's time (or the device's last evaluation, if
// later: a device's clock never goes back). It returns the alerts that
// fired or resolved; the slice is reused by the next call.
func (ev *Evaluator) ObserveEvent(e proactive.Event) []proactive.Alert {
	ev.out = ev.out[:0]
	d := ev.recordEvent(e)
	now := e.Time
	if now.Before(d.lastEval) {
		now = d.lastEval
	}
	ev.evaluate(d, now, false)
	return ev.out
}

// ObserveMaintenance records a maintenance of a device's component. The
// device keeps the newest maintenance time per component, so a record seen
// twice, or records seen in any order, leave the same state. It evaluates
// nothing: the next sample or event of the device does.
func (ev *Evaluator) ObserveMaintenance(m proactive.Maintenance) {
	d := ev.deviceByID(m.Device, "")
	if d.maint == nil {
		d.maint = map[string]int64{}
	}
	ns := m.Time.UnixNano()
	if t, ok := d.maint[m.Component]; !ok || ns > t {
		d.maint[strings.Clone(m.Component)] = ns
	}
	ev.maintID = max(ev.maintID, m.ID)
}

// maintenance returns the time of the last maintenance of comp, noTime if
// none.
func (d *device) maintenance(comp string) int64 {
	if t, ok := d.maint[comp]; ok {
		return t
	}
	return noTime
}

// events is events(pattern, window).
func (e *evalEnv) events(pattern string, window time.Duration) float64 {
	if e.dev.events == nil {
		return 0
	}
	return e.dev.events.count(pattern, window, e.now.UnixNano())
}

// sinceEvent is since_event(pattern).
func (e *evalEnv) sinceEvent(pattern string) time.Duration {
	if e.dev.events == nil {
		return NeverSeen
	}
	return since(e.now, e.dev.events.newest(pattern))
}

// sinceMaintenance is since_maintenance(component); "" is the rule's.
func (e *evalEnv) sinceMaintenance(comp string) time.Duration {
	if comp == "" && e.rule != nil {
		comp = e.rule.Component
	}
	return since(e.now, e.dev.maintenance(comp))
}

// mathFunc adapts a float64 function to expr, for int or float arguments.
func mathFunc(f func(float64) float64) func(...any) (any, error) {
	return func(p ...any) (any, error) {
		switch x := p[0].(type) {
		case int:
			return f(float64(x)), nil
		case float64:
			return f(x), nil
		}
		return math.NaN(), nil
	}
}
