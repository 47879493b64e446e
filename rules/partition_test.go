package rules_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// partitionOf puts device-N in partition N%2.
func partOf(id proactive.DeviceID) int32 {
	var n int
	fmt.Sscanf(string(id), "device-%d", &n)
	return int32(n % 2)
}

type partAlerts struct {
	mu     sync.Mutex
	alerts []proactive.Alert
}

func (l *partAlerts) notify(_ context.Context, as []proactive.Alert) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.alerts = append(l.alerts, as...)
}

func (l *partAlerts) firing(dev proactive.DeviceID) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.alerts {
		if a.Device == dev && a.State == proactive.AlertFiring {
			n++
		}
	}
	return n
}

func runPartEngine(t testing.TB, log *partAlerts, now func() time.Time) *rules.Engine {
	t.Helper()
	e := rules.New(rules.Options{Notify: log.notify, Now: now})
	if probs := e.Load([]rules.Spec{{Name: "wear", Component: "compressor", Severity: proactive.SeverityWarning,
		When: `avg(current, "1h") > 1.25 * avg(current, "7d")`, File: "r.yaml", Line: 1, WhenLine: 1}}); probs != nil {
		t.Fatal(probs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// A partition that moves between instances keeps its windows: the rule
// that needs 7 days of window fires on the new owner with the first sample
// after the move, as it would have on the old one; an engine that starts
// the partition empty does not fire.
func TestPartitionMoveKeepsWindows(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	end := t0.Add(7 * 24 * time.Hour)
	now := func() time.Time { return end }
	empty := rules.History{Samples: func(from, to time.Time) rules.SampleSource {
		return func(context.Context, func(proactive.Sample) error) error { return nil }
	}}
	opts := rules.PartitionOptions{Dir: dir, History: empty, Now: now}
	ctx := t.Context()

	var logA, logB, logC partAlerts
	a := runPartEngine(t, &logA, now)
	pa := rules.NewPartitions(a, opts)
	pa.Assign(ctx, []int32{0, 1}, partOf)
	var week []proactive.Sample
	for ts := t0; ts.Before(end); ts = ts.Add(10 * time.Minute) {
		for d := range 4 {
			week = append(week, proactive.Sample{Device: proactive.DeviceID(fmt.Sprintf("device-%d", d)), Time: ts,
				Metrics: map[string]float64{"current": 1}})
		}
	}
	a.Consume(ctx, week, nil)
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// Partition 1 moves from a to b.
	pa.Revoke(ctx, []int32{0, 1}, partOf)
	pa.Assign(ctx, []int32{0}, partOf)
	if _, err := os.Stat(filepath.Join(dir, "partition-1.snap")); err != nil {
		t.Fatalf("no snapshot of the revoked partition: %v", err)
	}
	b := runPartEngine(t, &logB, now)
	pb := rules.NewPartitions(b, opts)
	pb.Assign(ctx, []int32{1}, partOf)
	if got := pb.Owned(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("b owns %v, want [1]", got)
	}
	if got := pa.Owned(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("a owns %v, want [0]", got)
	}
	// An engine that never had the partition's history.
	c := runPartEngine(t, &logC, now)

	hot := []proactive.Sample{{Device: "device-1", Time: end, Metrics: map[string]float64{"current": 5}},
		{Device: "device-3", Time: end, Metrics: map[string]float64{"current": 5}}}
	for _, e := range []*rules.Engine{b, c} {
		e.Consume(ctx, hot, nil)
		if err := e.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, dev := range []proactive.DeviceID{"device-1", "device-3"} {
		if n := logB.firing(dev); n != 1 {
			t.Errorf("%s: %d firing alerts on the new owner, want 1 (its 7-day window came with the partition)", dev, n)
		}
		if n := logC.firing(dev); n != 0 {
			t.Errorf("%s: %d firing alerts on an engine without the window, want 0 (the test would prove nothing)", dev, n)
		}
	}
	// a dropped partition 1: its devices start afresh there.
	a.Consume(ctx, hot, nil)
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := logA.firing("device-1"); n != 0 {
		t.Errorf("device-1 fired on the old owner after the move")
	}
}

// A partition restored from history notifies the alerts that fired in the
// last minutes: its old owner may have stored their samples and died
// before it evaluated them. Older firings are not notified again.
func TestPartitionRestoreNotifiesRecentFirings(t *testing.T) {
	end := time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return end }
	samples := []proactive.Sample{
		{Device: "device-0", Time: end.Add(-25 * time.Minute), Metrics: map[string]float64{"current": 50}}, // fired before Renotify
		{Device: "device-1", Time: end.Add(-time.Minute), Metrics: map[string]float64{"current": 50}},
	}
	h := rules.History{Samples: func(from, to time.Time) rules.SampleSource {
		return func(_ context.Context, fn func(proactive.Sample) error) error {
			for _, s := range samples {
				if !s.Time.Before(from) && s.Time.Before(to) {
					if err := fn(s); err != nil {
						return err
					}
				}
			}
			return nil
		}
	}}
	var log partAlerts
	e := rules.New(rules.Options{Notify: log.notify, Now: now})
	if probs := e.Load([]rules.Spec{{Name: "hot", Component: "compressor", Severity: proactive.SeverityWarning,
		When: `max(current, "15m") > 10`, File: "r.yaml", Line: 1, WhenLine: 1}}); probs != nil {
		t.Fatal(probs)
	}
	rules.NewPartitions(e, rules.PartitionOptions{History: h, Now: now}).Assign(t.Context(), []int32{0, 1}, partOf)
	if n := log.firing("device-1"); n != 1 {
		t.Errorf("device-1 fired a minute ago: notified %d times, want 1", n)
	}
	if n := log.firing("device-0"); n != 0 {
		t.Errorf("device-0 fired 25 minutes ago: notified %d times, want 0", n)
	}
}
