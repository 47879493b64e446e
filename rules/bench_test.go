package rules_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// benchRules is a rule set of the examples' shape: long and short windows,
// a forecast, a percentile and a silent-device rule.
var benchRules = []rules.Spec{
	{Name: "compressor_wear", Component: "compressor", When: `avg(compressor_current, "1h") > 1.25 * avg(compressor_current, "7d")`, For: 30 * time.Minute,
		Predict: `forecast(compressor_current, 9.0)`},
	{Name: "refrigerant_leak", Component: "refrigerant", When: `slope(suction_pressure, "1d") < -0.0000005 && avg(cabinet_temp, "1h") > avg(cabinet_temp, "7d") + 1`, For: time.Hour},
	{Name: "cabinet_warm", Component: "cabinet", When: `percentile(cabinet_temp, "1h", 90) > 8`, For: 20 * time.Minute},
	{Name: "erratic_current", Component: "electrics", When: `stddev(compressor_current, "1h") > 2 * stddev(compressor_current, "7d")`, For: 30 * time.Minute},
	{Name: "silent", Component: "connectivity", When: `since_seen() > duration("2h")`},
}

func benchSet(b *testing.B) *rules.RuleSet {
	specs := append([]rules.Spec(nil), benchRules...)
	for i := range specs {
		specs[i].Severity, specs[i].File, specs[i].Line, specs[i].WhenLine = proactive.SeverityWarning, "bench.yaml", i+1, i+1
	}
	set, probs := rules.Compile(specs)
	if probs != nil {
		b.Fatal(probs)
	}
	return set
}

// fillFleet gives n devices a week of history: one sample per 7d bucket
// (every 2.8h) and a dense last hour, which fills every bucket of every
// window the rules use.
func fillFleet(ev *rules.Evaluator, n int, end time.Time) {
	step := 7 * 24 * time.Hour / rules.Buckets
	for d := range n {
		dev := proactive.DeviceID(fmt.Sprintf("fridge-%06d", d))
		sample := func(t time.Time, i int) {
			ev.Observe(proactive.Sample{Device: dev, Model: "fridge-a1", Time: t, Metrics: map[string]float64{
				"compressor_current": 4 + float64(i%7)*0.01, "cabinet_temp": 4 + float64(i%5)*0.1, "suction_pressure": 1.2 - float64(i%3)*0.001,
			}})
		}
		i := 0
		for t := end.Add(-7 * 24 * time.Hour); t.Before(end.Add(-time.Hour)); t = t.Add(step) {
			sample(t, i)
			i++
		}
		for t := end.Add(-time.Hour); !t.After(end); t = t.Add(time.Minute) {
			sample(t, i)
			i++
		}
	}
}

// BenchmarkRuleEvaluations measures device-rule evaluations per second on
// one core: each op is one sample for one of 100,000 devices, which
// evaluates the 4 rules that do not depend on the clock (since_seen rules run on ticks).
func BenchmarkRuleEvaluations(b *testing.B) {
	const devices = 100_000
	set := benchSet(b)
	ev := rules.NewEvaluator(set, nil, 5*time.Minute)
	end := time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC)
	fillFleet(ev, devices, end)
	ids := make([]proactive.DeviceID, devices)
	for d := range ids {
		ids[d] = proactive.DeviceID(fmt.Sprintf("fridge-%06d", d))
	}
	metrics := map[string]float64{"compressor_current": 4.02, "cabinet_temp": 4.1, "suction_pressure": 1.199}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	t := end
	for i := 0; b.Loop(); i++ {
		d := i % devices
		if d == 0 {
			t = t.Add(time.Minute)
		}
		ev.Observe(proactive.Sample{Device: ids[d], Model: "fridge-a1", Time: t, Metrics: metrics})
	}
	evals := float64(b.N) * float64(len(benchRules)-1)
	b.ReportMetric(evals/time.Since(start).Seconds(), "evals/s")
}

// BenchmarkFleetMemory reports the window state per device-metric for a 7d
// window and the heap for 100,000 devices × 3 metrics under benchRules.
func BenchmarkFleetMemory(b *testing.B) {
	const devices = 100_000
	for b.Loop() {
		set := benchSet(b)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		ev := rules.NewEvaluator(set, nil, 5*time.Minute)
		fillFleet(ev, devices, time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC))
		runtime.GC()
		runtime.ReadMemStats(&after)
		w := rules.NewWindow(7*24*time.Hour, 5*time.Minute)
		b.ReportMetric(float64(w.SizeBytes()), "bytes/window-7d")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/devices, "heap-bytes/device")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB/100k-devices")
		runtime.KeepAlive(ev)
	}
}
