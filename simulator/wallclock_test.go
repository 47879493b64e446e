package simulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/simulator"
)

// With catch_up, the live part starts in the past, runs at speed until its
// clock reaches the wall clock, then follows it: no sample is ever ahead
// of the wall clock (the demo's tickets then say "Alert 10:42, opened
// 10:43", not an alert days ahead), and the fleet keeps running past the
// catch-up. The wall clock is a fake one set on 10 March 2026 that moves
// with real time.
func TestSimulatorCatchUpFollowsWallClock(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)
	real0 := time.Now()
	var mu sync.Mutex
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return t0.Add(time.Since(real0))
	}
	b := startBroker(t, "", "")
	b.clock = clock
	sc := mustScenario(t, `seed: 4
backfill: 1h
catch_up: 2h
speed: 7200
models:
  - name: fridge-a1
    count: 2
    id: fridge-%03d
    interval: 30s
    metrics:
      cabinet_temp: {baseline: 4, noise: 0.1, decimals: 2}
`)
	sim, err := simulator.New(simulator.Options{Scenario: sc, Broker: b.url, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	// Past the catch-up (2h at 7200x: a second), samples come at the wall
	// clock's pace; wait for one stamped after the fake start.
	testenv.Eventually(t, 0, func() error {
		for _, m := range b.published() {
			for _, ts := range sampleTimes(m) {
				if !ts.Before(t0) {
					return nil
				}
			}
		}
		return fmt.Errorf("no sample at or after %s yet (simulated clock %s)", t0, sim.Stats().Clock)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	var first, history time.Time
	for _, m := range b.published() {
		for _, ts := range sampleTimes(m) {
			if ts.After(m.at) {
				t.Errorf("sample at %s published at %s: ahead of the wall clock", ts, m.at)
			}
			if first.IsZero() || ts.Before(first) {
				first = ts
			}
			if strings.HasPrefix(m.payload, "[") && ts.After(history) {
				history = ts
			}
		}
	}
	// The history (3h before t0 to the live start 2h before it) came as
	// batches; the live part then ran from 2h before t0 on.
	if want := t0.Add(-3 * time.Hour); first.Before(want) || first.After(want.Add(time.Minute)) {
		t.Errorf("first sample at %s, want the backfill's start %s", first, want)
	}
	if want := t0.Add(-2 * time.Hour); history.After(want) {
		t.Errorf("history up to %s, want it to end at the live start %s", history, want)
	}
}

// sampleTimes are the reading times of a telemetry message.
func sampleTimes(m published) []time.Time {
	if !strings.HasSuffix(m.topic, "/telemetry") {
		return nil
	}
	var entries []struct {
		TS int64 `json:"ts"`
	}
	p := m.payload
	if !strings.HasPrefix(p, "[") {
		p = "[" + p + "]"
	}
	if json.Unmarshal([]byte(p), &entries) != nil {
		return nil
	}
	var out []time.Time
	for _, e := range entries {
		out = append(out, time.UnixMilli(e.TS).UTC())
	}
	return out
}
