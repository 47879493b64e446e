package rules

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proactivehq/proactive"
)

// Run writes the snapshot every interval and once more when stopped; a
// checkpoint of a new engine restores from that last one and replays only
// the gap, ending where the engine that stopped stood.
func TestCheckpointRunAndRestore(t *testing.T) {
	samples := snapshotSamples()
	cut, end := 25*12*4, 27*12*4
	clock := func() time.Time { return samples[end-1].Time.Add(time.Millisecond) }
	path := filepath.Join(t.TempDir(), "data", "rules.snapshot")
	live := New(Options{Shards: 2, Now: clock})
	if probs := live.Load(snapshotSpecs()); probs != nil {
		t.Fatal(probs)
	}
	synctest.Test(t, func(t *testing.T) {
		cp := NewCheckpoint(live, CheckpointOptions{Path: path, Interval: time.Minute, Now: clock})
		if !cp.Enabled() {
			t.Fatal("not enabled with a path and rules")
		}
		for _, s := range samples[:cut] {
			observe(live, s)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- cp.Run(ctx) }()
		synctest.Wait()
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("snapshot before the first interval: %v", err)
		}
		time.Sleep(time.Minute) // synctest's fake clock: one snapshot interval passes
		synctest.Wait()
		periodic, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("no snapshot after an interval: %v", err)
		}
		for _, s := range samples[cut:end] {
			observe(live, s)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		final, err := os.ReadFile(path)
		if err != nil || bytes.Equal(final, periodic) {
			t.Fatalf("final snapshot: %v, or the one of the first interval: the shutdown wrote none", err)
		}
		if tmp, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*")); len(tmp) != 1 {
			t.Errorf("files beside the snapshot: %q", tmp)
		}
	})

	restored := newSnapEngine(t, 2, snapshotSpecs())
	// The history has samples after the snapshot: only those are replayed.
	more := samples[end : end+8]
	history := sliceHistory(append(append([]proactive.Sample(nil), samples[:end]...), more...))
	NewCheckpoint(restored, CheckpointOptions{Path: path, History: history, Now: func() time.Time { return more[len(more)-1].Time.Add(time.Millisecond) }}).
		Restore(t.Context())
	for _, s := range more {
		observe(live, s)
	}
	compareEngines(t, restored, live, nil)
}

// Without a snapshot, or with a corrupt one, Restore rebuilds from history;
// a checkpoint without a path or rules keeps no snapshot.
func TestCheckpointRestoreFallsBack(t *testing.T) {
	samples := snapshotSamples()[:27*12*4]
	clock := func() time.Time { return samples[len(samples)-1].Time.Add(time.Millisecond) }
	live := newSnapEngine(t, 2, snapshotSpecs())
	for _, s := range samples {
		observe(live, s)
	}
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.snapshot")
	if err := os.WriteFile(corrupt, []byte("PRORULES but not a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"none": "", "missing": filepath.Join(dir, "missing.snapshot"), "corrupt": corrupt} {
		t.Run(name, func(t *testing.T) {
			e := newSnapEngine(t, 2, snapshotSpecs())
			NewCheckpoint(e, CheckpointOptions{Path: path, History: sliceHistory(samples), Now: clock}).Restore(t.Context())
			compareEnginesWindows(t, e, live, 0)
		})
	}
	if NewCheckpoint(newSnapEngine(t, 1, nil), CheckpointOptions{Path: corrupt}).Enabled() {
		t.Error("enabled without rules")
	}
	if NewCheckpoint(live, CheckpointOptions{}).Enabled() {
		t.Error("enabled without a path")
	}
}

// With Stopped, the shutdown snapshot waits for the engine's stop: an
// engine that did not stop leaves the previous snapshot as it was.
func TestCheckpointSkipsSnapshotOfRunningEngine(t *testing.T) {
	live := newSnapEngine(t, 1, snapshotSpecs())
	for _, s := range snapshotSamples()[:100] {
		observe(live, s)
	}
	path := filepath.Join(t.TempDir(), "rules.snapshot")
	for _, stopped := range []bool{false, true} {
		done := make(chan struct{})
		if stopped {
			close(done)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := NewCheckpoint(live, CheckpointOptions{Path: path, Stopped: done}).Run(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); (err == nil) != stopped {
			t.Errorf("engine stopped %v: snapshot %v", stopped, err)
		}
	}
}
