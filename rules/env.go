package rules

import (
	"math"
	"reflect"
	"time"
)

// DeviceInfo is what a rule can read of the device it is evaluated for, as
// device.model and device.age_days.
type DeviceInfo struct {
	Model string `expr:"model"`
	// AgeDays is the time since installation in days, NaN when unknown.
	AgeDays float64 `expr:"age_days"`
}

// evalEnv is the environment one evaluation runs in. The compiler rewrites
// the rule language into calls of its methods; the methods are exported only
// because expr calls them by reflection.
type evalEnv struct {
	Device DeviceInfo `expr:"device"`
	dev    *device
	now    time.Time
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

func (e *evalEnv) win(slot int) *Window {
	if slot < len(e.dev.windows) {
		return e.dev.windows[slot]
	}
	return nil
}

// Metric is the latest value of a metric, NaN if the device never sent it.
func (e *evalEnv) Metric(slot int) float64 {
	if slot < len(e.dev.latest) {
		return e.dev.latest[slot]
	}
	return math.NaN()
}

// Avg is avg(metric, window).
func (e *evalEnv) Avg(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Avg(e.now)
	}
	return math.NaN()
}

// Min is min(metric, window).
func (e *evalEnv) Min(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Min(e.now)
	}
	return math.NaN()
}

// Max is max(metric, window).
func (e *evalEnv) Max(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Max(e.now)
	}
	return math.NaN()
}

// Sum is sum(metric, window).
func (e *evalEnv) Sum(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Sum(e.now)
	}
	return 0
}

// Count is count(metric, window).
func (e *evalEnv) Count(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Count(e.now)
	}
	return 0
}

// Last is last(metric, window).
func (e *evalEnv) Last(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Last(e.now)
	}
	return math.NaN()
}

// Delta is delta(metric, window).
func (e *evalEnv) Delta(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Delta(e.now)
	}
	return math.NaN()
}

// Rate is rate(metric, window).
func (e *evalEnv) Rate(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Rate(e.now)
	}
	return math.NaN()
}

// Slope is slope(metric, window).
func (e *evalEnv) Slope(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Slope(e.now)
	}
	return math.NaN()
}

// Stddev is stddev(metric, window).
func (e *evalEnv) Stddev(slot int) float64 {
	if w := e.win(slot); w != nil {
		return w.Stddev(e.now)
	}
	return math.NaN()
}

// Percentile is percentile(metric, window, p).
func (e *evalEnv) Percentile(slot int, p float64) float64 {
	if w := e.win(slot); w != nil {
		return w.Percentile(e.now, p)
	}
	return math.NaN()
}

// Forecast is forecast(metric, threshold[, window]): Never when the trend
// does not reach the threshold.
func (e *evalEnv) Forecast(slot int, threshold float64) time.Duration {
	if w := e.win(slot); w != nil {
		if d, ok := w.Forecast(e.now, threshold); ok {
			return d
		}
	}
	return Never
}

// SinceSeen is since_seen(): the time since the device's newest sample.
func (e *evalEnv) SinceSeen() time.Duration {
	if e.dev.lastSeen.IsZero() {
		return Never
	}
	return max(e.now.Sub(e.dev.lastSeen), 0)
}
