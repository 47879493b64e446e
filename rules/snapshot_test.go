package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
)

var snapT0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// snapshotSpecs read every kind of window function, with for, clear_for,
// cooldown and a prediction.
func snapshotSpecs() []Spec {
	return []Spec{
		{Name: "hot", Component: "compressor", Severity: proactive.SeverityWarning, When: `avg(current, "1h") > 5`,
			For: 30 * time.Minute, ClearFor: 30 * time.Minute, Cooldown: 8 * time.Hour, File: "s.yaml", Line: 1, WhenLine: 1},
		{Name: "trend", Component: "fan", Severity: proactive.SeverityInfo, File: "s.yaml", Line: 2, WhenLine: 2, For: time.Hour, ClearFor: time.Hour,
			When:    `slope(current, "1d") > 0 && stddev(current, "1d") > 0.01 && percentile(current, "1d", 90) > 4 && delta(current, "2h") >= 0 && rate(current, "2h") >= 0 && count(current, "1d") > 3 && sum(current, "1d") > 0 && min(current, "1d") < max(current, "1d") && last(current, "1d") > 0`,
			Predict: `forecast(current, 9.0, "1d")`},
		{Name: "warm", Component: "cabinet", Severity: proactive.SeverityInfo, When: `max(temp, "6h") > 8`, ClearFor: 20 * time.Minute, ClearForSet: true,
			File: "s.yaml", Line: 3, WhenLine: 3},
	}
}

// snapshotSamples: two days at 5-minute steps for four devices; fridge-0
// runs hot twice, the second time inside the cooldown of the first; some
// samples come late. The values are sums of powers of two, so that every
// moment is exact in float32 whatever the order of addition.
func snapshotSamples() []proactive.Sample {
	var out []proactive.Sample
	for i := range 2 * 24 * 12 {
		ts := snapT0.Add(time.Duration(i) * 5 * time.Minute)
		for d := range 4 {
			cur := 4 + 0.25*float64(i%4)
			h := i / 12
			if d == 0 && (h >= 20 && h < 24 || h >= 26 && h < 30) {
				cur = 6
			}
			if d == 1 && h >= 30 {
				cur = 4 + 0.125*float64(i-30*12)
			}
			s := proactive.Sample{Device: proactive.DeviceID(fmt.Sprintf("fridge-%d", d)), Model: "fridge-a1", Time: ts,
				Metrics: map[string]float64{"current": cur}}
			if d != 3 {
				s.Metrics["temp"] = 4 + float64(i%3)
				if d == 2 && h%7 == 0 {
					s.Metrics["temp"] = 9
				}
			}
			out = append(out, s)
		}
	}
	// Every 50th sample of fridge-2 arrives after the next one (late, within
	// the tolerance).
	for i := 8; i+4 < len(out); i += 200 {
		out[i], out[i+4] = out[i+4], out[i]
	}
	return out
}

func newSnapEngine(t *testing.T, shards int, specs []Spec) *Engine {
	t.Helper()
	e := New(Options{Shards: shards})
	if probs := e.Load(specs); probs != nil {
		t.Fatal(probs)
	}
	return e
}

// observe feeds s as live evaluation does and returns the alerts it causes.
func observe(e *Engine, s proactive.Sample) []proactive.Alert {
	sh := e.shards[e.shardOf(s.Device)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return append([]proactive.Alert(nil), sh.ev.Observe(s)...)
}

func devicesOf(e *Engine) map[proactive.DeviceID]*device {
	out := map[proactive.DeviceID]*device{}
	for _, sh := range e.shards {
		for id, d := range sh.ev.devices {
			out[id] = d
		}
	}
	return out
}

// compareEngines fails unless got holds what want holds: devices, latest
// values, times, every window (ring and every function's result) and
// every alert state. windows, when not nil, limits the windows compared.
func compareEngines(t *testing.T, got, want *Engine, windows []int) {
	t.Helper()
	g, w := devicesOf(got), devicesOf(want)
	if len(g) != len(w) {
		t.Fatalf("%d devices, want %d", len(g), len(w))
	}
	for id, wd := range w {
		gd := g[id]
		if gd == nil {
			t.Errorf("device %s missing", id)
			continue
		}
		if gd.info.Model != wd.info.Model || !sameBits(gd.info.AgeDays, wd.info.AgeDays) ||
			!gd.lastSeen.Equal(wd.lastSeen) || !gd.lastEval.Equal(wd.lastEval) {
			t.Errorf("%s: info %+v seen %v eval %v, want %+v %v %v", id, gd.info, gd.lastSeen, gd.lastEval, wd.info, wd.lastSeen, wd.lastEval)
		}
		if !slices.EqualFunc(gd.latest, wd.latest, sameBits) {
			t.Errorf("%s: latest %v, want %v", id, gd.latest, wd.latest)
		}
		for ws := range wd.windows {
			if windows != nil && !slices.Contains(windows, ws) {
				continue
			}
			compareWindows(t, fmt.Sprintf("%s window %d", id, ws), gd.windows[ws], wd.windows[ws], wd.lastSeen)
		}
		if len(gd.alerts) != len(wd.alerts) || len(gd.holder) != len(wd.holder) || len(gd.firedAt) != len(wd.firedAt) {
			t.Errorf("%s: alerts %v holders %v fired %v, want %v %v %v", id, gd.alerts, gd.holder, gd.firedAt, wd.alerts, wd.holder, wd.firedAt)
			continue
		}
		for name, wa := range wd.alerts {
			ga := gd.alerts[name]
			if ga == nil || ga.state != wa.state || !ga.activeAt.Equal(wa.activeAt) || !ga.firedAt.Equal(wa.firedAt) ||
				!ga.falseSince.Equal(wa.falseSince) || ga.ttf != wa.ttf {
				t.Errorf("%s: alert %s %+v, want %+v", id, name, ga, wa)
			}
		}
		for comp, rule := range wd.holder {
			if gd.holder[comp] != rule {
				t.Errorf("%s: holder of %s %q, want %q", id, comp, gd.holder[comp], rule)
			}
		}
		for comp, at := range wd.firedAt {
			if !gd.firedAt[comp].Equal(at) {
				t.Errorf("%s: fired at %s %v, want %v", id, comp, gd.firedAt[comp], at)
			}
		}
		if !maps.Equal(gd.maint, wd.maint) {
			t.Errorf("%s: maintenance %v, want %v", id, gd.maint, wd.maint)
		}
		var ge, we []eventSeries
		if gd.events != nil {
			ge = gd.events.codes
		}
		if wd.events != nil {
			we = wd.events.codes
		}
		if !slices.EqualFunc(ge, we, func(a, b eventSeries) bool {
			return a.code == b.code && a.last == b.last && slices.Equal(a.times, b.times)
		}) {
			t.Errorf("%s: events %v, want %v", id, ge, we)
		}
	}
}

func compareWindows(t *testing.T, what string, g, w *Window, now time.Time) {
	t.Helper()
	if (g == nil || !g.hasData) != (w == nil || !w.hasData) {
		t.Errorf("%s: %v, want %v", what, g, w)
		return
	}
	if w == nil || !w.hasData {
		return
	}
	if g.ring != w.ring || g.head != w.head || g.newest != w.newest || g.length != w.length || g.tolerance != w.tolerance {
		t.Errorf("%s: ring or head differs (head %d newest %d, want %d %d)", what, g.head, g.newest, w.head, w.newest)
	}
	for _, at := range []time.Time{now, now.Add(-w.length / 3), now.Add(w.length / 7)} {
		gf, gok := g.Forecast(at, 9)
		wf, wok := w.Forecast(at, 9)
		for _, c := range []struct {
			name string
			g, w float64
		}{
			{"avg", g.Avg(at), w.Avg(at)}, {"sum", g.Sum(at), w.Sum(at)}, {"count", float64(g.Count(at)), float64(w.Count(at))},
			{"min", g.Min(at), w.Min(at)}, {"max", g.Max(at), w.Max(at)}, {"last", g.Last(at), w.Last(at)},
			{"delta", g.Delta(at), w.Delta(at)}, {"rate", g.Rate(at), w.Rate(at)}, {"slope", g.Slope(at), w.Slope(at)},
			{"stddev", g.Stddev(at), w.Stddev(at)}, {"p90", g.Percentile(at, 90), w.Percentile(at, 90)},
			{"forecast", float64(gf), float64(wf)},
		} {
			if !sameBits(c.g, c.w) {
				t.Errorf("%s: %s at %v = %v, want %v", what, c.name, at, c.g, c.w)
			}
		}
		if gok != wok {
			t.Errorf("%s: forecast ok %v, want %v", what, gok, wok)
		}
	}
}

func mustSnapshot(t *testing.T, e *Engine) []byte {
	t.Helper()
	var buf bytes.Buffer
	info, err := e.Snapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if info.Bytes != int64(buf.Len()) {
		t.Errorf("info says %d bytes, wrote %d", info.Bytes, buf.Len())
	}
	return buf.Bytes()
}

// A snapshot restores into an engine (of another shard count) that holds
// exactly what the engine that took it held, and goes on exactly as it
// does: the same alerts at the same times, including a firing held back
// by a cooldown that began before the snapshot.
func TestSnapshotRoundTrip(t *testing.T) {
	samples := snapshotSamples()
	cut := (25*12 + 6) * 4 // 25:30: fridge-0's first alert fired and resolved, its cooldown runs
	live := newSnapEngine(t, 2, snapshotSpecs())
	for _, s := range samples[:cut] {
		observe(live, s)
	}
	d0 := devicesOf(live)["fridge-0"]
	if _, ok := d0.firedAt["compressor"]; !ok || d0.alerts["hot"] != nil {
		t.Fatalf("fridge-0 at the snapshot: alerts %v fired %v; want its hot alert resolved, in cooldown", d0.alerts, d0.firedAt)
	}
	snap := mustSnapshot(t, live)

	restored := newSnapEngine(t, 3, snapshotSpecs())
	info, err := restored.Restore(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	if info.Devices != 4 || len(info.Skipped) > 0 || len(info.Missing) > 0 || !info.Time.Equal(samples[cut-1].Time) {
		t.Errorf("info %+v", info)
	}
	compareEngines(t, restored, live, nil)

	var firedAfter int
	for _, s := range samples[cut:] {
		want, got := observe(live, s), observe(restored, s)
		if len(want) != len(got) {
			t.Fatalf("at %v: %d alerts, never stopped %d", s.Time, len(got), len(want))
		}
		for i := range want {
			if got[i].Rule != want[i].Rule || got[i].State != want[i].State || !got[i].ActiveAt.Equal(want[i].ActiveAt) ||
				!got[i].FiredAt.Equal(want[i].FiredAt) || got[i].TimeToFailure != want[i].TimeToFailure {
				t.Errorf("at %v: %+v, never stopped %+v", s.Time, got[i], want[i])
			}
			if want[i].Rule == "hot" && want[i].State == proactive.AlertFiring {
				firedAfter++
			}
		}
	}
	if firedAfter == 0 {
		t.Error("hot never fires after the snapshot: the cooldown is not tested")
	}
	compareEngines(t, restored, live, nil)
}

// sliceHistory is a History over samples in time order, with aggregates
// built as StoredHistory builds them.
func sliceHistory(samples []proactive.Sample) History {
	sorted := slices.Clone(samples)
	slices.SortStableFunc(sorted, func(a, b proactive.Sample) int { return a.Time.Compare(b.Time) })
	return History{
		Samples: func(from, to time.Time) SampleSource {
			var in []proactive.Sample
			for _, s := range sorted {
				if !s.Time.Before(from) && s.Time.Before(to) {
					in = append(in, s)
				}
			}
			return SliceSource(in)
		},
		Buckets: func(ctx context.Context, reqs []BucketRequest, fn func(BucketAggregate) error) error {
			for _, r := range reqs {
				builders := map[proactive.DeviceID]*bucketBuilder{}
				models := map[proactive.DeviceID]string{}
				var order []proactive.DeviceID
				for _, s := range sorted {
					v, ok := s.Metrics[r.Metric]
					if !ok || s.Time.Before(r.From) || !s.Time.Before(r.To) {
						continue
					}
					bb := builders[s.Device]
					if bb == nil {
						bb = newBucketBuilder(r.Length)
						builders[s.Device], models[s.Device] = bb, s.Model
						order = append(order, s.Device)
					}
					if a, done := bb.add(s.Time.UnixNano(), v); done {
						a.Device, a.Model, a.Metric = s.Device, s.Model, r.Metric
						if err := fn(a); err != nil {
							return err
						}
					}
				}
				for _, dev := range order {
					if a, ok := builders[dev].flush(); ok {
						a.Device, a.Model, a.Metric = dev, models[dev], r.Metric
						if err := fn(a); err != nil {
							return err
						}
					}
				}
			}
			return nil
		},
	}
}

// A snapshot older than the newest data: the gap is replayed from history,
// samples that reached the engine after the snapshot (late ones included)
// count once, and the engine ends where one that never stopped stands.
func TestSnapshotGapReplay(t *testing.T) {
	samples := snapshotSamples()
	cut, end := (25*12+6)*4, 27*12*4+2
	live := newSnapEngine(t, 2, snapshotSpecs())
	for _, s := range samples[:cut] {
		observe(live, s)
	}
	snap := mustSnapshot(t, live)
	// The engine goes on after the snapshot (and then crashes): a late
	// sample of before the snapshot's time arrives too.
	late := proactive.Sample{Device: "fridge-3", Model: "fridge-a1", Time: samples[cut-1].Time.Add(-2 * time.Minute),
		Metrics: map[string]float64{"current": 4.5}}
	observe(live, late)
	for _, s := range samples[cut:end] {
		observe(live, s)
	}
	history := sliceHistory(append(slices.Clone(samples[:end]), late))

	restored := newSnapEngine(t, 2, snapshotSpecs())
	info, err := restored.Restore(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := restored.RebuildSince(t.Context(), history, info, samples[end-1].Time.Add(time.Millisecond))
	if err != nil || rep.Fallback != nil {
		t.Fatal(err, rep.Fallback)
	}
	if rep.Samples == 0 || rep.Samples > int64(end-cut)*4 {
		t.Errorf("replayed %d samples for a gap of %d", rep.Samples, end-cut)
	}
	t.Logf("gap: %+v", rep)
	compareEngines(t, restored, live, nil)
	for _, s := range samples[end:] {
		want, got := observe(live, s), observe(restored, s)
		if len(want) != len(got) {
			t.Fatalf("at %v: %d alerts, never stopped %d", s.Time, len(got), len(want))
		}
		for i := range want {
			if got[i].Rule != want[i].Rule || got[i].State != want[i].State || !got[i].FiredAt.Equal(want[i].FiredAt) {
				t.Errorf("at %v: %+v, never stopped %+v", s.Time, got[i], want[i])
			}
		}
	}
}

// Restored under a changed rule set, the windows both read come from the
// snapshot, a new rule's from history (aggregates, then the gap), a gone
// rule's are dropped; the alerts of rules that stay carry over.
func TestSnapshotChangedRules(t *testing.T) {
	samples := snapshotSamples()
	cut := 25 * 12 * 4
	old := snapshotSpecs()[:2] // hot and trend
	live := newSnapEngine(t, 2, old)
	for _, s := range samples[:cut] {
		observe(live, s)
	}
	snap := mustSnapshot(t, live)

	changed := []Spec{snapshotSpecs()[0], snapshotSpecs()[2]} // trend gone, warm new
	restored := newSnapEngine(t, 2, changed)
	info, err := restored.Restore(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Skipped, []string{"current/1d", "current/2h"}) || !slices.Equal(info.Missing, []string{"temp/6h"}) {
		t.Errorf("skipped %v missing %v", info.Skipped, info.Missing)
	}
	end := samples[cut-1].Time.Add(time.Millisecond)
	if _, err := restored.RebuildSince(t.Context(), sliceHistory(samples[:cut]), info, end); err != nil {
		t.Fatal(err)
	}
	// The engine that always ran the changed rules.
	want := newSnapEngine(t, 1, changed)
	for _, s := range samples[:cut] {
		observe(want, s)
	}
	l := restored.set.layout
	hot := l.windows[windowKey{l.metrics["current"], time.Hour}]
	warm := l.windows[windowKey{l.metrics["temp"], 6 * time.Hour}]
	compareEnginesWindows(t, restored, want, hot, warm)
	for _, d := range devicesOf(restored) {
		if d.alerts["trend"] != nil || d.holder["fan"] != "" {
			t.Errorf("%s: the gone rule's alert was restored", d.id)
		}
	}
	if got, w := devicesOf(restored)["fridge-0"].firedAt["compressor"], devicesOf(live)["fridge-0"].firedAt["compressor"]; !got.Equal(w) {
		t.Errorf("cooldown start %v, want %v", got, w)
	}
}

func compareEnginesWindows(t *testing.T, got, want *Engine, slots ...int) {
	t.Helper()
	g := devicesOf(got)
	for id, wd := range devicesOf(want) {
		for _, ws := range slots {
			if g[id] == nil {
				t.Fatalf("device %s missing", id)
			}
			// The slots are the restored engine's; the other compiled the
			// same rules in the same order but from an empty layout.
			wl, gl := want.set.layout, got.set.layout
			k := gl.windowKeys[ws]
			wws := wl.windows[windowKey{wl.metrics[gl.metricNames[k.metric]], k.length}]
			compareWindows(t, fmt.Sprintf("%s %s/%v", id, gl.metricNames[k.metric], k.length), g[id].windows[ws], wd.windows[wws], wd.lastSeen)
		}
	}
}

// A file that is not a whole snapshot of this version is refused with
// ErrSnapshot, and the engine keeps what it had.
func TestSnapshotRefusesBadFiles(t *testing.T) {
	samples := snapshotSamples()[:400]
	e := newSnapEngine(t, 2, snapshotSpecs())
	for _, s := range samples {
		observe(e, s)
	}
	snap := mustSnapshot(t, e)
	flip := func(i int) []byte { b := slices.Clone(snap); b[i] ^= 0x10; return b }
	version := slices.Clone(snap)
	version[len(snapshotMagic)] = 9
	cases := map[string][]byte{
		"empty":       nil,
		"not one":     []byte("rules:\n  - name: x\n"),
		"version":     version,
		"truncated":   snap[:len(snap)/2],
		"no checksum": snap[:len(snap)-4],
		"bit flipped": flip(len(snap) / 3),
		"checksum":    flip(len(snap) - 1),
		"trailing":    append(slices.Clone(snap), 0),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			fresh := newSnapEngine(t, 2, snapshotSpecs())
			observe(fresh, samples[0])
			_, err := fresh.Restore(bytes.NewReader(b))
			if !errors.Is(err, ErrSnapshot) {
				t.Fatalf("err = %v, want ErrSnapshot", err)
			}
			t.Log(err)
			if n := len(devicesOf(fresh)); n != 1 {
				t.Errorf("the engine holds %d devices after a refused restore, want its 1", n)
			}
		})
	}
}

// FuzzRestore: whatever the bytes, Restore returns an error or a state,
// never panics.
func FuzzRestore(f *testing.F) {
	e := New(Options{Shards: 2})
	if probs := e.Load(snapshotSpecs()); probs != nil {
		f.Fatal(probs)
	}
	for _, s := range snapshotSamples()[:300] {
		observe(e, s)
	}
	var buf bytes.Buffer
	if _, err := e.Snapshot(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:100])
	f.Add([]byte(snapshotMagic))
	r := New(Options{Shards: 2})
	if probs := r.Load(snapshotSpecs()); probs != nil {
		f.Fatal(probs)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := r.Restore(bytes.NewReader(b)); err != nil && !errors.Is(err, ErrSnapshot) {
			t.Fatalf("error not wrapping ErrSnapshot: %v", err)
		}
	})
}

// signalSpecs gate on events and maintenance and reset on it.
func signalSpecs() []Spec {
	return append(snapshotSpecs(), Spec{Name: "gated", Component: "compressor", Severity: proactive.SeverityWarning,
		When:               `events("E1*", "6h") >= 2 && since_maintenance() > duration("1h") && avg(current, "1h") > 4.2`,
		ResetOnMaintenance: true, File: "s.yaml", Line: 4, WhenLine: 4})
}

// feed gives the engine the i-th sample and, every so often, an event or a
// maintenance record of its device.
func feed(e *Engine, samples []proactive.Sample, from, to int) (alerts []proactive.Alert) {
	for i := from; i < to; i++ {
		s := samples[i]
		alerts = append(alerts, observe(e, s)...)
		sh := e.shards[e.shardOf(s.Device)]
		sh.mu.Lock()
		switch {
		case i%37 == 0:
			alerts = append(alerts, sh.ev.ObserveEvent(proactive.Event{Device: s.Device, Time: s.Time, Code: fmt.Sprintf("E1%d", i%3)})...)
		case i%53 == 0:
			alerts = append(alerts, sh.ev.ObserveEvent(proactive.Event{Device: s.Device, Time: s.Time.Add(-time.Minute), Code: "W7"})...)
		case i%401 == 0:
			sh.ev.ObserveMaintenance(proactive.Maintenance{ID: int64(i), Device: s.Device, Time: s.Time, Component: "compressor", Kind: proactive.MaintenanceReplaced})
		}
		sh.mu.Unlock()
	}
	return alerts
}

// A snapshot holds the event histories and maintenance times bit for bit,
// and the restored engine goes on as the one that never stopped.
func TestSnapshotRoundTripSignals(t *testing.T) {
	samples := snapshotSamples()
	cut := (25*12 + 6) * 4
	live := newSnapEngine(t, 2, signalSpecs())
	before := feed(live, samples, 0, cut)
	snap := mustSnapshot(t, live)
	restored := newSnapEngine(t, 3, signalSpecs())
	info, err := restored.Restore(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != SnapshotVersion || info.MaintenanceID != live.MaintenanceID() || restored.MaintenanceID() != info.MaintenanceID || info.MaintenanceID == 0 {
		t.Errorf("info %+v, engine maintenance ID %d", info, live.MaintenanceID())
	}
	compareEngines(t, restored, live, nil)
	want, got := feed(live, samples, cut, len(samples)), feed(restored, samples, cut, len(samples))
	if describeAlerts(got) != describeAlerts(want) {
		t.Errorf("after the snapshot: alerts\n%s\nnever stopped\n%s", describeAlerts(got), describeAlerts(want))
	}
	fired := 0
	for _, a := range append(before, want...) {
		if a.Rule == "gated" {
			fired++
		}
	}
	if fired == 0 {
		t.Error("the gated rule never fires: events are not tested")
	}
	compareEngines(t, restored, live, nil)
}

func describeAlerts(alerts []proactive.Alert) string {
	var b bytes.Buffer
	for _, a := range alerts {
		fmt.Fprintf(&b, "%s %s %s %v %v %v\n", a.Rule, a.Device, a.State, a.ActiveAt, a.FiredAt, a.TimeToFailure)
	}
	return b.String()
}

// A version 1 snapshot (testdata/snapshot/v1.bin, written before events
// and maintenance joined the rule state, by an engine fed the first 25.5 h
// of snapshotSamples) still restores, with no events and no maintenance.
func TestSnapshotRestoresVersion1(t *testing.T) {
	old, err := os.ReadFile("testdata/snapshot/v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	restored := newSnapEngine(t, 2, snapshotSpecs())
	info, err := restored.Restore(bytes.NewReader(old))
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != 1 || info.Devices != 4 || info.MaintenanceID != 0 {
		t.Errorf("info %+v", info)
	}
	live := newSnapEngine(t, 2, snapshotSpecs())
	for _, s := range snapshotSamples()[:(25*12+6)*4] {
		observe(live, s)
	}
	compareEngines(t, restored, live, nil)
}
