package rules_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/rules"
)

// recorder is a NotifyFunc that keeps what it gets.
type recorder struct {
	mu     sync.Mutex
	alerts []proactive.Alert
	got    chan struct{}
}

func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 1000)} }

func (r *recorder) notify(_ context.Context, alerts []proactive.Alert) {
	r.mu.Lock()
	r.alerts = append(r.alerts, alerts...)
	r.mu.Unlock()
	for range alerts {
		r.got <- struct{}{}
	}
}

func (r *recorder) wait(t *testing.T, n int) []proactive.Alert {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-r.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d alerts, want %d", i, n)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]proactive.Alert(nil), r.alerts...)
}

func spec(name, when string) rules.Spec {
	return rules.Spec{Name: name, Component: "compressor", Severity: proactive.SeverityWarning, When: when, File: "t.yaml", Line: 1, WhenLine: 1}
}

func startEngine(t *testing.T, o rules.Options) (*rules.Engine, context.CancelFunc) {
	t.Helper()
	e := rules.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return e, cancel
}

func TestEngineShardsDevicesAndNotifies(t *testing.T) {
	rec := newRecorder()
	reg := prometheus.NewRegistry()
	e, _ := startEngine(t, rules.Options{Notify: rec.notify, Shards: 4, Registerer: reg})
	if probs := e.Load([]rules.Spec{spec("hot", `avg(temp, "10m") > 10`)}); probs != nil {
		t.Fatal(probs)
	}
	var batch []proactive.Sample
	for d := range 50 {
		dev := proactive.DeviceID("f" + string(rune('a'+d%26)) + string(rune('a'+d/26)))
		for i := range 3 {
			v := 5.0
			if d%5 == 0 {
				v = 20
			}
			batch = append(batch, proactive.Sample{Device: dev, Time: t0.Add(time.Duration(i) * time.Minute), Metrics: map[string]float64{"temp": v}})
		}
	}
	e.Consume(t.Context(), batch, nil)
	got := rec.wait(t, 10)
	devices := map[proactive.DeviceID]bool{}
	for _, a := range got {
		if a.State != proactive.AlertFiring || a.Rule != "hot" {
			t.Errorf("alert %+v", a)
		}
		devices[a.Device] = true
	}
	if len(devices) != 10 {
		t.Errorf("alerts for %d devices, want the 10 hot ones", len(devices))
	}
	// The ten alerts can arrive while other shards still evaluate their
	// devices' last samples.
	testenv.Eventually(t, 0, func() error {
		if st := e.Rules(); len(st) != 1 || st[0].Firing != 10 || st[0].Evaluations != 150 || st[0].Health != "ok" {
			return fmt.Errorf("rule status %+v", st)
		}
		return nil
	})
	if n := len(e.Alerts()); n != 10 {
		t.Errorf("Alerts() lists %d, want 10", n)
	}
}

// A reload with a broken rule keeps the running rules; a good reload keeps
// the windows and alert states of rules that keep their names.
func TestEngineReload(t *testing.T) {
	rec := newRecorder()
	e, _ := startEngine(t, rules.Options{Notify: rec.notify, Shards: 1})
	if probs := e.Load([]rules.Spec{spec("hot", `count(temp, "1h") >= 3`)}); probs != nil {
		t.Fatal(probs)
	}
	feed := func(i int) {
		e.Consume(t.Context(), []proactive.Sample{{Device: "f1", Time: t0.Add(time.Duration(i) * time.Minute), Metrics: map[string]float64{"temp": 1}}}, nil)
	}
	feed(0)
	feed(1)

	probs := e.Load([]rules.Spec{spec("hot", `count(temp, "1h") >= 3`), spec("broken", `nope(temp)`)})
	if len(probs) != 1 || !strings.Contains(probs.Error(), "nope") {
		t.Fatalf("problems %v", probs)
	}
	if st := e.Rules(); len(st) != 1 || st[0].Name != "hot" {
		t.Fatalf("after a bad reload the rules are %+v, want hot still running", st)
	}
	if probs := e.Load([]rules.Spec{spec("hot", `count(temp, "1h") >= 3`), spec("cold", `temp < -100`)}); probs != nil {
		t.Fatal(probs)
	}
	feed(2) // the third sample in the hour: the window survived both reloads
	got := rec.wait(t, 1)
	if got[0].Rule != "hot" || got[0].State != proactive.AlertFiring {
		t.Errorf("alert %+v", got[0])
	}
}

func TestEngineTicksSinceSeen(t *testing.T) {
	rec := newRecorder()
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e, _ := startEngine(t, rules.Options{Notify: rec.notify, Shards: 2, TickInterval: 5 * time.Millisecond, Now: clock})
	if probs := e.Load([]rules.Spec{spec("silent", `since_seen() > duration("1h")`)}); probs != nil {
		t.Fatal(probs)
	}
	e.Consume(t.Context(), []proactive.Sample{{Device: "f1", Time: t0, Metrics: map[string]float64{"temp": 1}}}, nil)
	mu.Lock()
	now = t0.Add(2 * time.Hour)
	mu.Unlock()
	got := rec.wait(t, 1)
	if got[0].Rule != "silent" || got[0].Device != "f1" {
		t.Errorf("alert %+v", got[0])
	}
}

// A reload that renames a firing rule drops the old alert and lets the new
// rule fire for the component.
func TestEngineReloadDropsRemovedRules(t *testing.T) {
	rec := newRecorder()
	e, _ := startEngine(t, rules.Options{Notify: rec.notify, Shards: 1})
	if probs := e.Load([]rules.Spec{spec("hot", `temp > 10`)}); probs != nil {
		t.Fatal(probs)
	}
	e.Consume(t.Context(), []proactive.Sample{{Device: "f1", Time: t0, Metrics: map[string]float64{"temp": 20}}}, nil)
	rec.wait(t, 1)
	if probs := e.Load([]rules.Spec{spec("hot_renamed", `temp > 10`)}); probs != nil {
		t.Fatal(probs)
	}
	e.Consume(t.Context(), []proactive.Sample{{Device: "f1", Time: t0.Add(time.Minute), Metrics: map[string]float64{"temp": 20}}}, nil)
	got := rec.wait(t, 1)
	if len(got) != 2 || got[1].Rule != "hot_renamed" || got[1].State != proactive.AlertFiring {
		t.Errorf("after the rename: %+v", got[1])
	}
	for _, a := range e.Alerts() {
		if a.Rule == "hot" {
			t.Errorf("the removed rule's alert is still listed: %+v", a)
		}
	}
}
