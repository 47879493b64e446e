package rules_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// benchSet is the example rule set, rules/examples/*.yaml.
func benchSet(b *testing.B) *rules.RuleSet {
	specs, probs := rules.LoadFiles([]string{"examples/*.yaml"})
	if probs != nil {
		b.Fatal(probs)
	}
	set, probs := rules.Compile(specs)
	if probs != nil {
		b.Fatal(probs)
	}
	return set
}

// The fleet: half fridges, half heat pumps, with the metrics the examples read.
func benchSample(d int, t time.Time, i int) proactive.Sample {
	dev := proactive.DeviceID(fmt.Sprintf("dev-%06d", d))
	if d%2 == 0 {
		return proactive.Sample{Device: dev, Model: "fridge-a1", Time: t, Metrics: map[string]float64{
			"compressor_current": 4 + float64(i%7)*0.01, "cabinet_temp": 4 + float64(i%5)*0.1,
			"suction_pressure": 1.4 - float64(i%3)*0.001, "duty_cycle": 0.4 + float64(i%4)*0.01,
		}}
	}
	return proactive.Sample{Device: dev, Model: "heatpump-x2", Time: t, Metrics: map[string]float64{
		"fan_vibration": 1.2 + float64(i%5)*0.02, "filter_dp": 100 + float64(i%7), "airflow": 1200 + float64(i%9),
	}}
}

// rulesPerSample is how many rules one sample of device d evaluates.
func rulesPerSample(set *rules.RuleSet, d int) int {
	model := "heatpump-x2"
	if d%2 == 0 {
		model = "fridge-a1"
	}
	n := 0
	for _, r := range set.Rules() {
		if r.Matches(model) {
			n++
		}
	}
	return n
}

// fillFleet gives n devices a week of history: one sample per 7d bucket
// (every 2.8h) and the last hour at 5-minute steps, which fills every
// bucket of the 7d windows and the recent ones.
func fillFleet(ev *rules.Evaluator, n int, end time.Time) {
	step := 7 * 24 * time.Hour / rules.Buckets
	for d := range n {
		i := 0
		for t := end.Add(-7 * 24 * time.Hour); t.Before(end.Add(-time.Hour)); t = t.Add(step) {
			ev.Observe(benchSample(d, t, i))
			i++
		}
		for t := end.Add(-time.Hour); !t.After(end); t = t.Add(5 * time.Minute) {
			ev.Observe(benchSample(d, t, i))
			i++
		}
	}
}

// signalSpecs are rules reading events, maintenance and fleet baselines,
// as the examples would: one per model, besides the example set.
var signalSpecs = []rules.Spec{
	{Name: "bench_gated_compressor", Component: "compressor", Models: []string{"fridge-*"}, Severity: proactive.SeverityWarning,
		When:               `avg(compressor_current, "1h") > 1.1 * avg(compressor_current, "7d") && events("E1*", "24h") >= 2 && since_maintenance() > duration("7d")`,
		ResetOnMaintenance: true},
	{Name: "bench_fleet_outlier", Component: "fan", Models: []string{"heatpump-*"}, Severity: proactive.SeverityInfo,
		When: `model_count(fan_vibration, "1h") >= 10 && avg(fan_vibration, "1h") > model_avg(fan_vibration, "1h") + 3 * model_stddev(fan_vibration, "1h") && since_event("F7") < duration("2h")`},
	{Name: "bench_math", Component: "filter", Models: []string{"heatpump-*"}, Severity: proactive.SeverityInfo,
		When: `sqrt(max(filter_dp, "1h")) > 1.5 * log(exp(sqrt(avg(filter_dp, "7d"))))`},
}

// BenchmarkRuleEvaluations measures device-rule evaluations per second on
// one core: each op is one sample of one of 100,000 devices (a minute after
// its last), which evaluates every rule for its model. "examples" runs the
// example rule set; "signals" adds rules reading events, maintenance, the
// fleet baselines and the math functions, with every device carrying a few
// events and a maintenance record.
func BenchmarkRuleEvaluations(b *testing.B) {
	b.Run("examples", func(b *testing.B) { benchEvaluations(b, false) })
	b.Run("signals", func(b *testing.B) { benchEvaluations(b, true) })
}

func benchEvaluations(b *testing.B, signals bool) {
	const devices = 100_000
	set := benchSet(b)
	if signals {
		specs, probs := rules.LoadFiles([]string{"examples/*.yaml"})
		if probs != nil {
			b.Fatal(probs)
		}
		for _, s := range signalSpecs {
			s.File, s.Line = "bench", 1
			specs = append(specs, s)
		}
		if set, probs = rules.Compile(specs); probs != nil {
			b.Fatal(probs)
		}
	}
	ev := rules.NewEvaluator(set, nil, 5*time.Minute)
	end := time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC)
	fillFleet(ev, devices, end)
	if signals {
		for d := range devices {
			dev := proactive.DeviceID(fmt.Sprintf("dev-%06d", d))
			ev.ObserveMaintenance(proactive.Maintenance{ID: int64(d + 1), Device: dev, Time: end.Add(-30 * 24 * time.Hour),
				Component: "compressor", Kind: proactive.MaintenanceReplaced})
			for k, code := range []string{"E101", "E102", "F7"} {
				ev.ObserveEvent(proactive.Event{Device: dev, Time: end.Add(-time.Duration(k+1) * time.Hour), Code: code})
			}
		}
	}
	samples := make([]proactive.Sample, devices)
	perSample := make([]int, devices)
	for d := range samples {
		samples[d] = benchSample(d, end, 0)
		perSample[d] = rulesPerSample(set, d)
	}
	b.ReportAllocs()
	evals := 0
	start := time.Now()
	t := end
	for i := 0; b.Loop(); i++ {
		d := i % devices
		if d == 0 {
			t = t.Add(time.Minute)
		}
		s := samples[d]
		s.Time = t
		ev.Observe(s)
		evals += perSample[d]
	}
	b.ReportMetric(float64(evals)/time.Since(start).Seconds(), "evals/s")
}

// BenchmarkFleetMemory reports the window state per device-metric for a 7d
// window and the heap for 100,000 devices (3 or 4 metrics each) under the
// example rules.
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
