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

// sliceStore is a HistoryStore over samples in time order.
type sliceStore []proactive.Sample

func (s sliceStore) Samples(ctx context.Context, from, to time.Time, device proactive.DeviceID, fn func(proactive.Sample) error) error {
	for _, smp := range s {
		if !smp.Time.Before(from) && smp.Time.Before(to) && (device == "" || smp.Device == device) {
			if err := fn(smp); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

func (s sliceStore) Values(ctx context.Context, from, to time.Time, metrics []string, fn func(proactive.DeviceID, string, string, time.Time, float64) error) error {
	var devices []proactive.DeviceID
	for _, smp := range s {
		if !slices.Contains(devices, smp.Device) {
			devices = append(devices, smp.Device)
		}
	}
	for _, d := range devices {
		for _, m := range metrics {
			for _, smp := range s {
				v, ok := smp.Metrics[m]
				if ok && smp.Device == d && !smp.Time.Before(from) && smp.Time.Before(to) {
					if err := fn(d, smp.Model, m, smp.Time, v); err != nil {
						return err
					}
				}
			}
		}
	}
	return ctx.Err()
}

// A restart rebuild from the stored history, with the maintenance records
// of the store as serve hands them over (History.Maintenance), brings back a
// reset_on_maintenance rule as the live engine has it: a compressor replaced
// four hours ago no longer counts the current it drew before, a fan
// replaced on another device does not reset a compressor rule. Without the
// records the rebuilt engine would fire on the old part's current.
func TestRebuildHistoryMaintenanceResets(t *testing.T) {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	step := 5 * time.Minute
	replaced := start.Add(20 * time.Hour)
	maint := []proactive.Maintenance{
		{ID: 1, Device: "d2", Time: start.Add(10 * time.Hour), Component: "fan", Kind: proactive.MaintenanceReplaced},
		{ID: 2, Device: "d1", Time: replaced, Component: "compressor", Kind: proactive.MaintenanceReplaced},
	}
	var samples []proactive.Sample
	for at := start; at.Before(start.Add(26 * time.Hour)); at = at.Add(step) {
		d1 := 9.0
		if !at.Before(replaced) {
			d1 = 4 // the new compressor draws less: over the last 6h the old and new average 5.67
		}
		samples = append(samples,
			proactive.Sample{Device: "d1", Model: "m", Time: at, Metrics: map[string]float64{"current": d1}},
			proactive.Sample{Device: "d2", Model: "m", Time: at, Metrics: map[string]float64{"current": 9}})
	}
	specs := []Spec{{Name: "hot", Component: "compressor", Severity: proactive.SeverityWarning,
		When: `avg(current, "6h") > 5`, For: 30 * time.Minute, ResetOnMaintenance: true, File: "m.yaml", Line: 1, WhenLine: 2}}
	cut := slices.IndexFunc(samples, func(s proactive.Sample) bool { return s.Time.Equal(start.Add(24 * time.Hour)) })
	end := samples[cut-1].Time.Add(time.Millisecond)

	// live feeds samples [from, to) with the records at or before each
	// sample's time first, as the maintenance feed would have, and
	// describes the alerts each sample caused, with its time.
	live := func(e *Engine, from, to int) (alerts string) {
		for i := from; i < to; i++ {
			s := samples[i]
			for _, m := range maint {
				if !m.Time.After(s.Time) && (i == 0 || m.Time.After(samples[i-1].Time)) {
					sh := e.shards[e.shardOf(m.Device)]
					sh.mu.Lock()
					sh.ev.ObserveMaintenance(m)
					sh.mu.Unlock()
				}
			}
			for _, a := range observe(e, s) {
				alerts += fmt.Sprintf("%v: %s %s %s %v %v\n", s.Time, a.Rule, a.Device, a.State, a.ActiveAt, a.FiredAt)
			}
		}
		return alerts
	}
	states := func(e *Engine) string {
		var b []byte
		for _, a := range e.Alerts() {
			b = fmt.Appendf(b, "%s %s %s\n", a.Rule, a.Device, a.State)
		}
		return string(b)
	}

	want := newSnapEngine(t, 2, specs)
	if got := live(want, 0, cut); got == "" {
		t.Fatal("the live engine fired nothing: the rule is not tested")
	}
	if got := states(want); got != "hot d2 firing\n" {
		t.Fatalf("live engine: alerts\n%s", got)
	}

	records := MaintenanceAfterFunc(func(_ context.Context, after int64, limit int) ([]proactive.Maintenance, error) {
		var out []proactive.Maintenance
		for _, m := range maint {
			if m.ID > after && len(out) < limit {
				out = append(out, m)
			}
		}
		return out, nil
	})
	history := StoredHistory(sliceStore(samples[:cut]))
	history.Maintenance = records
	rebuilt := newSnapEngine(t, 3, specs)
	rep, err := rebuilt.RebuildHistory(t.Context(), history, end)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Aggregated {
		t.Errorf("rebuild replayed samples (%v); want windows from aggregates, as at a restart", rep.Fallback)
	}
	if got, want := states(rebuilt), states(want); got != want {
		t.Errorf("rebuilt engine: alerts\n%swant\n%s", got, want)
	}
	if rebuilt.MaintenanceID() != want.MaintenanceID() {
		t.Errorf("maintenance ID %d, want %d", rebuilt.MaintenanceID(), want.MaintenanceID())
	}
	gotDev, wantDev := devicesOf(rebuilt), devicesOf(want)
	for _, id := range []proactive.DeviceID{"d1", "d2"} {
		if fmt.Sprint(gotDev[id].maint) != fmt.Sprint(wantDev[id].maint) {
			t.Errorf("%s: maintenance %v, want %v", id, gotDev[id].maint, wantDev[id].maint)
		}
	}
	// Two more hours: both engines go on alike.
	if got, want := live(rebuilt, cut, len(samples)), live(want, cut, len(samples)); got != want {
		t.Errorf("after the rebuild: alerts\n%s\nnever stopped\n%s", got, want)
	}

	// The control: without the records, d1's old compressor fires again.
	blind := newSnapEngine(t, 3, specs)
	history.Maintenance = nil
	if _, err := blind.RebuildHistory(t.Context(), history, end); err != nil {
		t.Fatal(err)
	}
	if got := states(blind); got != "hot d1 firing\nhot d2 firing\n" {
		t.Errorf("rebuilt without maintenance: alerts\n%s", got)
	}

	// A snapshot taken before the replacement, and the gap with it
	// replayed: the alert of d1 resolves as it did live.
	at := func(d time.Duration) int {
		return slices.IndexFunc(samples, func(s proactive.Sample) bool { return s.Time.Equal(start.Add(d)) })
	}
	snapAt, restartAt := at(19*time.Hour+40*time.Minute), at(20*time.Hour+30*time.Minute)
	never := newSnapEngine(t, 2, specs)
	live(never, 0, snapAt)
	if got := states(never); got != "hot d1 firing\nhot d2 firing\n" {
		t.Fatalf("live engine at the snapshot: alerts\n%s", got)
	}
	snap := mustSnapshot(t, never)
	live(never, snapAt, restartAt)
	restored := newSnapEngine(t, 3, specs)
	info, err := restored.Restore(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	history = StoredHistory(sliceStore(samples[:restartAt]))
	history.Maintenance = records
	if rep, err := restored.RebuildSince(t.Context(), history, info, samples[restartAt-1].Time.Add(time.Millisecond)); err != nil || rep.Fallback != nil {
		t.Fatalf("RebuildSince: %v, fallback %v", err, rep.Fallback)
	}
	if got, want := states(restored), states(never); got != want {
		t.Errorf("restored engine: alerts\n%swant\n%s", got, want)
	}
	if got, want := live(restored, restartAt, len(samples)), live(never, restartAt, len(samples)); got != want || got == "" {
		t.Errorf("after the restart: alerts\n%s\nnever stopped\n%s", got, want)
	}
}
