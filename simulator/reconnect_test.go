package simulator_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/simulator"
)

// A connection dropped in the middle of a burst (the broker's side closes
// it, as a write deadline would) is reconnected and the burst resumes:
// every reading reaches the broker, at least once, and the run ends.
func TestSimulatorResumesAfterDroppedConnection(t *testing.T) {
	t.Parallel()
	sc := mustScenario(t, strings.NewReplacer("count: 3", "count: 200", "backfill: 3h", "backfill: 24h").Replace(small))
	distinct := func(b *broker) int {
		unique := map[string]bool{}
		for _, r := range readings(t, b.published()) {
			unique[r] = true
		}
		return len(unique)
	}
	// What a run without trouble delivers.
	ref := startBroker(t, "", "")
	sim, err := simulator.New(simulator.Options{Scenario: sc, Start: start, Broker: ref.url, Speed: math.Inf(1), Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := distinct(ref)

	b := startBroker(t, "", "")
	proxy := testenv.NewProxy(t, strings.TrimPrefix(b.url, "mqtt://"))
	sim, err = simulator.New(simulator.Options{
		Scenario: sc, Start: start, Broker: "mqtt://" + proxy.Addr(), Speed: math.Inf(1), Connections: 2, MaxInflight: 100,
	})
	if err != nil {
		t.Fatal(err)
	}

	// Cut every connection twice mid-burst, from the broker's side, when
	// it has taken a tenth and a fifth of the messages.
	total := len(ref.published())
	var cuts atomic.Int32
	b.mu.Lock()
	b.onPublish = func(n int) {
		if n == total/10 || n == total/5 {
			proxy.Cut()
			cuts.Add(1)
		}
	}
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	err = sim.Run(ctx)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("the run stalled after the connection was cut: %v", err)
	}
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := cuts.Load(); n != 2 {
		t.Fatalf("%d cuts, want 2", n)
	}
	if got := distinct(b); got != want {
		t.Errorf("%d distinct readings reached the broker, want %d as without the cuts", got, want)
	}
	if proxy.Accepted() < 4 {
		t.Errorf("%d connections through the proxy, want the 2 first and 2 reconnections", proxy.Accepted())
	}
}
