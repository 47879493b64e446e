package rules

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
)

// modelAt evaluates model_count, model_avg and model_stddev of temp over 1h
// for device id at now.
func modelAt(t *testing.T, ev *Evaluator, id proactive.DeviceID, now time.Time) (n, mean, sd float64) {
	t.Helper()
	l := ev.set.layout
	ws, ok := l.windows[windowKey{l.metrics["temp"], time.Hour}]
	if !ok {
		t.Fatal("no temp/1h window")
	}
	ev.env.dev, ev.env.now = ev.devices[id], now
	return ev.env.modelCount(ws), ev.env.modelAvg(ws), ev.env.modelStddev(ws)
}

func TestModelBaselinesJoinAndLeave(t *testing.T) {
	set, probs := Compile([]Spec{{Name: "outlier", Component: "c", Severity: proactive.SeverityWarning, File: "f", Line: 1,
		When: `model_count(temp, "1h") >= 3 && avg(temp, "1h") > model_avg(temp, "1h") + 1.3 * model_stddev(temp, "1h")`}})
	if probs != nil {
		t.Fatal(probs)
	}
	ev := NewEvaluator(set, nil, time.Minute)
	obs := func(id string, model string, at time.Duration, v float64) []proactive.Alert {
		return ev.Observe(proactive.Sample{Device: proactive.DeviceID(id), Model: model, Time: snapT0.Add(at), Metrics: map[string]float64{"temp": v}})
	}
	m := time.Minute
	obs("a", "m1", 0, 1)
	obs("b", "m1", m, 3)
	obs("x", "m2", m, 100) // another model: not in m1's baseline
	if n, mean, _ := modelAt(t, ev, "b", snapT0.Add(m)); n != 2 || mean != 2 {
		t.Errorf("two devices: count %v avg %v, want 2 and 2", n, mean)
	}
	obs("c", "m1", 2*m, 5)
	n, mean, sd := modelAt(t, ev, "c", snapT0.Add(2*m))
	if n != 3 || mean != 3 || math.Abs(sd-math.Sqrt(8.0/3)) > 1e-15 {
		t.Errorf("three devices: count %v avg %v stddev %v, want 3, 3, %v", n, mean, sd, math.Sqrt(8.0/3))
	}
	// c's own average moves: its contribution is replaced, not added.
	if got := obs("c", "m1", 3*m, 8); len(got) != 1 || got[0].Device != "c" {
		t.Errorf("c at avg 6.5 against a fleet avg of 3.5: alerts %v, want c firing", got)
	}
	if n, mean, _ := modelAt(t, ev, "c", snapT0.Add(3*m)); n != 3 || mean != 3.5 {
		t.Errorf("after c moved: count %v avg %v, want 3 and 3.5", n, mean)
	}
	if n, _, _ := modelAt(t, ev, "x", snapT0.Add(3*m)); n != 1 {
		t.Errorf("model m2: count %v, want 1", n)
	}
	// a's last sample is at 0: it leaves at 1h; b's at 1m leaves at 1h1m.
	if n, _, _ := modelAt(t, ev, "c", snapT0.Add(time.Hour-1)); n != 3 {
		t.Errorf("just before a's sample is 1h old: count %v, want 3", n)
	}
	obs("c", "m1", time.Hour, 7)
	// Each device contributes its own 1h average: c's is (5+8+7)/3.
	if n, mean, _ := modelAt(t, ev, "c", snapT0.Add(time.Hour)); n != 2 || !near(mean, (3+20.0/3)/2) {
		t.Errorf("a left: count %v avg %v, want 2 and %v", n, mean, (3+20.0/3)/2)
	}
	obs("c", "m1", time.Hour+m, 7)
	if n, mean, sd := modelAt(t, ev, "c", snapT0.Add(time.Hour+m)); n != 1 || mean != 6.75 || sd != 0 {
		t.Errorf("b left: count %v avg %v stddev %v, want 1, 6.75, 0", n, mean, sd)
	}
	// a comes back and joins again.
	obs("a", "m1", time.Hour+2*m, 9)
	if n, mean, _ := modelAt(t, ev, "c", snapT0.Add(time.Hour+2*m)); n != 2 || mean != 7.875 {
		t.Errorf("a back: count %v avg %v, want 2 and 7.875 (a's 9 with c's 6.75)", n, mean)
	}
	// Everyone silent for a window: empty, NaN.
	if n, mean, sd := modelAt(t, ev, "c", snapT0.Add(3*time.Hour)); n != 0 || !math.IsNaN(mean) || !math.IsNaN(sd) {
		t.Errorf("all silent: count %v avg %v stddev %v, want 0, NaN, NaN", n, mean, sd)
	}
}

// Many updates of large values: the running sums stay within float64
// rounding of the exact mean and deviation.
func TestModelBaselinesExactness(t *testing.T) {
	g := &baselineGroup{length: int64(time.Hour), members: map[proactive.DeviceID]*member{}}
	xs := map[proactive.DeviceID]float64{}
	for i := range 20000 {
		id := proactive.DeviceID(fmt.Sprint("d", i%300))
		x := 1e6 + float64(i%97)*0.001 + float64(i%300)
		g.update(id, x, int64(i))
		xs[id] = x
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	var m2 float64
	for _, x := range xs {
		m2 += (x - mean) * (x - mean)
	}
	sd := math.Sqrt(m2 / float64(len(xs)))
	n, gm, gsd := g.stats(20000)
	if n != len(xs) || math.Abs(gm-mean) > 1e-12*mean || math.Abs(gsd-sd) > 1e-9*sd {
		t.Errorf("count %d avg %v stddev %v, want %d %v %v", n, gm, gsd, len(xs), mean, sd)
	}
}

// The shards of an engine share the baselines, and a restored engine
// derives them from the restored windows.
func TestModelBaselinesEngineAndRestore(t *testing.T) {
	specs := []Spec{{Name: "outlier", Component: "c", Severity: proactive.SeverityWarning, File: "f", Line: 1,
		When: `avg(temp, "1h") > model_avg(temp, "1h") + 2 * model_stddev(temp, "1h")`}}
	e := newSnapEngine(t, 4, specs)
	for i := range 40 {
		observe(e, proactive.Sample{Device: proactive.DeviceID(fmt.Sprint("d", i)), Model: "m", Time: snapT0.Add(time.Duration(i) * time.Second),
			Metrics: map[string]float64{"temp": float64(i % 4)}})
	}
	restored := newSnapEngine(t, 3, specs)
	if _, err := restored.Restore(bytesReader(mustSnapshot(t, e))); err != nil {
		t.Fatal(err)
	}
	for _, eng := range []*Engine{e, restored} {
		ev := eng.shards[0].ev
		var id proactive.DeviceID
		for id = range ev.devices {
			break
		}
		n, mean, sd := modelAt(t, ev, id, snapT0.Add(time.Minute))
		if n != 40 || mean != 1.5 || math.Abs(sd-math.Sqrt(1.25)) > 1e-15 {
			t.Errorf("count %v avg %v stddev %v, want 40, 1.5, %v", n, mean, sd, math.Sqrt(1.25))
		}
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Abs(b) }

// BenchmarkModelBaselineMemory reports the memory of one fleet baseline
// (one model, metric and window) over 100,000 reporting devices, measured
// on the heap and as sizeBytes estimates it, and the time of an update.
func BenchmarkModelBaselineMemory(b *testing.B) {
	const devices = 100_000
	ids := make([]proactive.DeviceID, devices)
	for i := range ids {
		ids[i] = proactive.DeviceID(fmt.Sprintf("dev-%06d", i))
	}
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fleet := newBaselines()
		g := fleet.group("fridge-a1", 0, int64(time.Hour))
		for i, id := range ids {
			g.update(id, float64(i%100), int64(i))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB/100k-devices")
		b.ReportMetric(float64(g.sizeBytes())/devices, "est-bytes/device")
		start := time.Now()
		for i := range 1_000_000 {
			g.update(ids[i%devices], float64(i%97), int64(devices+i))
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/1e6, "ns/update")
		runtime.KeepAlive(fleet)
	}
}

// BenchmarkEventLogMemory reports the bytes of a device's event history
// with 3 codes and 24 events each (a day of hourly codes), and at the
// bounds (MaxEventCodes codes of MaxEventTimes events).
func BenchmarkEventLogMemory(b *testing.B) {
	for b.Loop() {
		var l eventLog
		for i := range 72 {
			l.add(fmt.Sprint("E10", i%3), int64(i)*int64(time.Hour), 48*time.Hour)
		}
		b.ReportMetric(float64(l.sizeBytes()), "bytes/device-typical")
		var worst eventLog
		for c := range MaxEventCodes {
			for i := range MaxEventTimes {
				worst.add(fmt.Sprintf("E%03d", c), int64(i), time.Hour)
			}
		}
		b.ReportMetric(float64(worst.sizeBytes()), "bytes/device-max")
	}
}
