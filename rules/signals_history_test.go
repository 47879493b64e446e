package rules

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
)

// timeline is snapshotSamples with events and maintenance among them, in
// time order: what a store would give back.
type timeline struct {
	samples []proactive.Sample
	events  []proactive.Event
	maint   []proactive.Maintenance
}

func signalTimeline() timeline {
	var tl timeline
	tl.samples = snapshotSamples()
	for i, s := range tl.samples {
		switch {
		case i%37 == 0:
			tl.events = append(tl.events, proactive.Event{Device: s.Device, Time: s.Time, Code: fmt.Sprintf("E1%d", i%3)})
		case i%401 == 0:
			tl.maint = append(tl.maint, proactive.Maintenance{ID: int64(len(tl.maint) + 1), Device: s.Device, Time: s.Time,
				Component: "compressor", Kind: proactive.MaintenanceReplaced})
		}
	}
	return tl
}

// live feeds samples [from, to) of tl to e as the engine takes them live,
// with the events and maintenance at or before each sample's time first.
func (tl timeline) live(e *Engine, from, to int) (alerts []proactive.Alert) {
	q := &signalQueue{events: tl.events, maint: tl.maint}
	if from > 0 { // those up to the sample before from are fed already
		q.upTo(tl.samples[from-1].Time, func(proactive.Maintenance) {}, func(proactive.Event) {})
	}
	for _, s := range tl.samples[from:to] {
		sh := e.shards[e.shardOf(s.Device)]
		q.upTo(s.Time, func(m proactive.Maintenance) {
			sh := e.shards[e.shardOf(m.Device)]
			sh.mu.Lock()
			sh.ev.ObserveMaintenance(m)
			sh.mu.Unlock()
		}, func(ev proactive.Event) {
			sh := e.shards[e.shardOf(ev.Device)]
			sh.mu.Lock()
			alerts = append(alerts, sh.ev.ObserveEvent(ev)...)
			sh.mu.Unlock()
		})
		sh.mu.Lock()
		alerts = append(alerts, sh.ev.Observe(s)...)
		sh.mu.Unlock()
	}
	return alerts
}

func (tl timeline) history(end int) History {
	h := sliceHistory(tl.samples[:end])
	last := tl.samples[end-1].Time
	h.Events = func(from, to time.Time) EventSource {
		var in []proactive.Event
		for _, e := range tl.events {
			if !e.Time.Before(from) && e.Time.Before(to) && !e.Time.After(last) {
				in = append(in, e)
			}
		}
		return SliceEvents(in)
	}
	h.Maintenance = MaintenanceAfterFunc(func(_ context.Context, after int64, limit int) ([]proactive.Maintenance, error) {
		var out []proactive.Maintenance
		for _, m := range tl.maint {
			if m.ID > after && len(out) < limit && !m.Time.After(last) {
				out = append(out, m)
			}
		}
		return out, nil
	})
	return h
}

// A snapshot and the gap replayed from a history with events and
// maintenance: the engine holds what the one that never stopped holds,
// events counted once.
func TestSnapshotGapReplaySignals(t *testing.T) {
	tl := signalTimeline()
	cut, end := (25*12+6)*4, 27*12*4+2
	live := newSnapEngine(t, 2, signalSpecs())
	tl.live(live, 0, cut)
	snap := mustSnapshot(t, live)
	tl.live(live, cut, end)

	restored := newSnapEngine(t, 3, signalSpecs())
	info, err := restored.Restore(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restored.RebuildSince(t.Context(), tl.history(end), info, tl.samples[end-1].Time.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	compareEngines(t, restored, live, nil)
	want, got := tl.live(live, end, len(tl.samples)), tl.live(restored, end, len(tl.samples))
	if describeAlerts(got) != describeAlerts(want) {
		t.Errorf("after the rebuild: alerts\n%s\nnever stopped\n%s", describeAlerts(got), describeAlerts(want))
	}
}

// A rebuild from history alone feeds events and maintenance: the alerts
// after it are those of the engine that never stopped.
func TestRebuildHistorySignals(t *testing.T) {
	tl := signalTimeline()
	end := 30 * 12 * 4
	live := newSnapEngine(t, 2, signalSpecs())
	tl.live(live, 0, end)
	rebuilt := newSnapEngine(t, 2, signalSpecs())
	h := tl.history(end)
	if _, err := rebuilt.RebuildHistory(t.Context(), h, tl.samples[end-1].Time.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if rebuilt.MaintenanceID() != live.MaintenanceID() {
		t.Errorf("maintenance ID %d, want %d", rebuilt.MaintenanceID(), live.MaintenanceID())
	}
	// Alert states come from the tail (see doc.go): an alert active since
	// before it comes back active from the tail's start. Compare the
	// episodes of the rule that reads events begun after the rebuild.
	gated := func(as []proactive.Alert) []proactive.Alert {
		return slices.DeleteFunc(as, func(a proactive.Alert) bool {
			return a.Rule != "gated" || !a.ActiveAt.After(tl.samples[end-1].Time)
		})
	}
	want, got := gated(tl.live(live, end, len(tl.samples))), gated(tl.live(rebuilt, end, len(tl.samples)))
	if len(want) == 0 || describeAlerts(got) != describeAlerts(want) {
		t.Errorf("after the rebuild: alerts\n%s\nnever stopped\n%s", describeAlerts(got), describeAlerts(want))
	}
}

// A backtest feeds events and maintenance at their times: it fires what
// the engine fired live.
func TestBacktestSignals(t *testing.T) {
	tl := signalTimeline()
	// No since_ function: the backtest then has no clock ticks, which the
	// live feed of this test does not make.
	specs := []Spec{{Name: "gated", Component: "compressor", Severity: proactive.SeverityWarning,
		When:               `events("E1*", "6h") >= 2 && avg(current, "1h") > 4.2`,
		ResetOnMaintenance: true, File: "s.yaml", Line: 4, WhenLine: 4}}
	live := newSnapEngine(t, 1, specs)
	want := tl.live(live, 0, len(tl.samples))
	set, probs := Compile(specs)
	if probs != nil {
		t.Fatal(probs)
	}
	rep, err := Backtest(t.Context(), set, SliceSource(tl.samples), BacktestOptions{Events: SliceEvents(tl.events), Maintenance: tl.maint})
	if err != nil {
		t.Fatal(err)
	}
	var gated []proactive.Alert
	for _, a := range want {
		if a.Rule == "gated" {
			gated = append(gated, a)
		}
	}
	var got []proactive.Alert
	for _, a := range rep.Alerts {
		if a.Rule == "gated" {
			got = append(got, a)
		}
	}
	if len(gated) == 0 || describeAlerts(got) != describeAlerts(gated) {
		t.Errorf("backtest gated alerts\n%s\nlive\n%s", describeAlerts(got), describeAlerts(gated))
	}
}
