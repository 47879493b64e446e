package rules

import (
	"errors"
	"math"
	"reflect"
	"time"

	"github.com/expr-lang/expr"
)

// DeviceInfo is what a rule can read of the device it is evaluated for, as
// device.model and device.age_days.
type DeviceInfo struct {
	Model string `expr:"model"`
	// AgeDays is the time since installation in days, NaN when unknown.
	AgeDays float64 `expr:"age_days"`
}

// evalEnv is what one evaluation reads: the device and the time. Each
// evaluator owns one, and compiles its rules with the rule functions bound to
// it (functions), so that a call is a plain Go call.
type evalEnv struct {
	dev *device
	now time.Time
	// rule is the rule evaluated, whose component since_maintenance() reads.
	rule *boundRule
	// from is, for a rule with reset_on_maintenance, the time (Unix ns) of
	// its component's last maintenance: its windows are read from then on.
	// noTime otherwise.
	from int64
	// fleet and layout are the evaluator's, for the model functions.
	fleet  *baselines
	layout *layout
	// floor is, on the clock's ticks, when intake last resumed: since_seen()
	// measures no silence before it. Zero otherwise.
	floor time.Time
}

// functions returns the rule functions, as the compiler rewrites them (by
// slot), bound to e.
func (e *evalEnv) functions() []expr.Option {
	win := func(name string, f func(slot int) float64) expr.Option {
		return expr.Function(name, func(p ...any) (any, error) { return f(p[0].(int)), nil }, new(func(int) float64))
	}
	return []expr.Option{
		win("metric", e.metric),
		win("avg", e.avg), win("min", e.min), win("max", e.max), win("sum", e.sum), win("count", e.count),
		win("model_avg", e.modelAvg), win("model_stddev", e.modelStddev), win("model_count", e.modelCount),
		win("last", e.last), win("delta", e.delta), win("rate", e.rate), win("slope", e.slope), win("stddev", e.stddev),
		expr.Function("percentile", func(p ...any) (any, error) { return e.percentile(p[0].(int), p[1].(float64)), nil },
			new(func(int, float64) float64)),
		expr.Function("forecast", func(p ...any) (any, error) { return e.forecast(p[0].(int), p[1].(float64)), nil },
			new(func(int, float64) time.Duration)),
		expr.Function("since_seen", func(...any) (any, error) { return e.sinceSeen(), nil }, new(func() time.Duration)),
		expr.Function("events", func(p ...any) (any, error) { return e.events(p[0].(string), p[1].(time.Duration)), nil },
			new(func(string, time.Duration) float64)),
		expr.Function("since_event", func(p ...any) (any, error) { return e.sinceEvent(p[0].(string)), nil },
			new(func(string) time.Duration)),
		expr.Function("since_maintenance", func(p ...any) (any, error) { return e.sinceMaintenance(p[0].(string)), nil },
			new(func(string) time.Duration)),
		expr.Function("sqrt", mathFunc(math.Sqrt), new(func(float64) float64), new(func(int) float64)),
		expr.Function("log", mathFunc(math.Log), new(func(float64) float64), new(func(int) float64)),
		expr.Function("exp", mathFunc(math.Exp), new(func(float64) float64), new(func(int) float64)),
		expr.Function("device_model", func(...any) (any, error) { return e.dev.info.Model, nil }, new(func() string)),
		expr.Function("device_age_days", func(...any) (any, error) { return e.dev.info.AgeDays, nil }, new(func() float64)),
		// Declared so that the parser leaves duration("3d") to the rewriter,
		// which makes it a constant.
		expr.Function("duration", func(...any) (any, error) { return nil, errors.New("duration not rewritten") }),
	}
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

func (e *evalEnv) win(slot int) *Window {
	if slot < len(e.dev.windows) {
		w := e.dev.windows[slot]
		switch {
		case w == nil:
		case e.from != noTime:
			w.since(e.from)
		case w.from != math.MinInt64:
			w.from = math.MinInt64 // a reset rule read it last
		}
		return w
	}
	return nil
}

// metric is the latest value of a metric, NaN if the device never sent it.
func (e *evalEnv) metric(slot int) float64 {
	if slot < len(e.dev.latest) {
		return e.dev.latest[slot]
	}
	return math.NaN()
}

// avg is avg(metric, window).
func (e *evalEnv) avg(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Avg(e.now)
	}
	return math.NaN()
}

// min is min(metric, window).
func (e *evalEnv) min(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Min(e.now)
	}
	return math.NaN()
}

// max is max(metric, window).
func (e *evalEnv) max(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Max(e.now)
	}
	return math.NaN()
}

// sum is sum(metric, window).
func (e *evalEnv) sum(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Sum(e.now)
	}
	return 0
}

// count is count(metric, window).
func (e *evalEnv) count(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Count(e.now)
	}
	return 0
}

// last is last(metric, window).
func (e *evalEnv) last(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Last(e.now)
	}
	return math.NaN()
}

// delta is delta(metric, window).
func (e *evalEnv) delta(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Delta(e.now)
	}
	return math.NaN()
}

// rate is rate(metric, window).
func (e *evalEnv) rate(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Rate(e.now)
	}
	return math.NaN()
}

// slope is slope(metric, window).
func (e *evalEnv) slope(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Slope(e.now)
	}
	return math.NaN()
}

// stddev is stddev(metric, window).
func (e *evalEnv) stddev(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Stddev(e.now)
	}
	return math.NaN()
}

// percentile is percentile(metric, window, p).
func (e *evalEnv) percentile(slot int, p float64) float64 {
	if w := e.win(slot); w != nil {
		return w.Percentile(e.now, p)
	}
	return math.NaN()
}

// forecast is forecast(metric, threshold[, window]): Never when the trend
// does not reach the threshold.
func (e *evalEnv) forecast(slot int, threshold float64) time.Duration {
	if w := e.win(slot); w != nil {
		if d, ok := w.Forecast(e.now, threshold); ok {
			return d
		}
	}
	return Never
}

// sinceSeen is since_seen(): the time since the device's newest sample.
func (e *evalEnv) sinceSeen() time.Duration {
	if e.dev.lastSeen.IsZero() {
		return Never
	}
	seen := e.dev.lastSeen
	if e.floor.After(seen) {
		seen = e.floor // our own outage is not the device's silence
	}
	return max(e.now.Sub(seen), 0)
}
