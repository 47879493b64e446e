package rules_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// An event reaches the rules through the engine and fires as a sample does.
func TestEngineConsumeEvents(t *testing.T) {
	rec := newRecorder()
	e, _ := startEngine(t, rules.Options{Notify: rec.notify})
	if probs := e.Load([]rules.Spec{spec("gated", `events("E1*", "1h") >= 2`)}); probs != nil {
		t.Fatal(probs)
	}
	ctx := t.Context()
	e.ConsumeEvents(ctx, []proactive.Event{{Device: "d1", Time: t0, Code: "E10"}})
	e.ConsumeEvents(ctx, []proactive.Event{{Device: "d1", Time: t0.Add(time.Minute), Code: "E11"}})
	got := rec.wait(t, 1)
	if got[0].Rule != "gated" || got[0].Device != "d1" || got[0].State != proactive.AlertFiring {
		t.Errorf("alert %+v, want gated firing for d1", got[0])
	}
}

// The feed hands the source's records to the engine, resumes after the last
// one it saw, and survives a failed request.
func TestMaintenanceFeed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		e := rules.New(rules.Options{Notify: rec.notify, Shards: 2, Now: func() time.Time { return t0 }})
		if probs := e.Load([]rules.Spec{spec("fresh", `since_maintenance() < duration("1h")`)}); probs != nil {
			t.Fatal(probs)
		}
		var mu sync.Mutex
		var stored []proactive.Maintenance
		var asked []int64
		fail := false
		src := rules.MaintenanceAfterFunc(func(_ context.Context, after int64, limit int) ([]proactive.Maintenance, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, after)
			if fail {
				fail = false
				return nil, errors.New("store down")
			}
			var out []proactive.Maintenance
			for _, m := range stored {
				if m.ID > after && len(out) < limit {
					out = append(out, m)
				}
			}
			return out, nil
		})
		add := func(m proactive.Maintenance) {
			mu.Lock()
			stored = append(stored, m)
			mu.Unlock()
		}
		add(proactive.Maintenance{ID: 1, Device: "d1", Time: t0.Add(-2 * time.Hour), Component: "compressor", Kind: proactive.MaintenanceReplaced})
		add(proactive.Maintenance{ID: 2, Device: "d2", Time: t0.Add(-2 * time.Hour), Component: "compressor", Kind: proactive.MaintenanceReplaced})
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { e.Run(ctx) })
		feed := rules.NewMaintenanceFeed(src, e, rules.FeedOptions{Limit: 1})
		wg.Go(func() { feed.Run(ctx) })
		synctest.Wait()
		if id := e.MaintenanceID(); id != 2 {
			t.Errorf("after the first poll, MaintenanceID = %d, want 2 (records in pages of 1)", id)
		}
		mu.Lock()
		fail = true
		mu.Unlock()
		time.Sleep(5 * time.Second) // synctest's fake clock: one poll interval passes
		synctest.Wait()
		add(proactive.Maintenance{ID: 3, Device: "d1", Time: t0.Add(-time.Minute), Component: "compressor", Kind: proactive.MaintenanceRepaired})
		time.Sleep(5 * time.Second) // synctest's fake clock: one poll interval passes
		synctest.Wait()
		if id := e.MaintenanceID(); id != 3 {
			t.Errorf("after a failed poll and a new record, MaintenanceID = %d, want 3", id)
		}
		e.Consume(ctx, []proactive.Sample{{Device: "d1", Time: t0, Metrics: map[string]float64{"x": 1}},
			{Device: "d2", Time: t0, Metrics: map[string]float64{"x": 1}}}, nil)
		synctest.Wait()
		cancel()
		wg.Wait()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.alerts) != 1 || rec.alerts[0].Device != "d1" {
			t.Errorf("alerts %v, want one for d1, repaired a minute ago", rec.alerts)
		}
		mu.Lock()
		defer mu.Unlock()
		if want := []int64{0, 1, 2, 2, 2, 3}; !equalInts(asked, want) {
			t.Errorf("asked after %v, want %v", asked, want)
		}
	})
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
