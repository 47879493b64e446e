package simulator_test

import (
	"context"
	"errors"
	"fmt"
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
// With a connection per device, each device announces itself online again
// on its new connection (the broker sent its will when the old one
// dropped).
func TestSimulatorResumesAfterDroppedConnection(t *testing.T) {
	t.Parallel()
	t.Run("shared", func(t *testing.T) { t.Parallel(); testResume(t, 200, 2) })
	t.Run("per device", func(t *testing.T) { t.Parallel(); testResume(t, 20, 0) })
}

func testResume(t *testing.T, devices, connections int) {
	sc := mustScenario(t, strings.NewReplacer("count: 3", fmt.Sprintf("count: %d", devices), "backfill: 3h", "backfill: 24h").Replace(small))
	distinct := func(b *broker) int {
		unique := map[string]bool{}
		for _, r := range readings(t, b.published()) {
			unique[r] = true
		}
		return len(unique)
	}
	// What a run without trouble delivers.
	ref := startBroker(t, "", "")
	sim, err := simulator.New(simulator.Options{Scenario: sc, Start: start, Broker: ref.url, Speed: math.Inf(1), Connections: connections})
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
		Scenario: sc, Start: start, Broker: "mqtt://" + proxy.Addr(), Speed: math.Inf(1), Connections: connections, MaxInflight: 100,
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
	if proxy.Accepted() <= sim.Stats().Connections {
		t.Errorf("%d connections through the proxy, want reconnections beyond the %d first", proxy.Accepted(), sim.Stats().Connections)
	}
	if connections == 0 {
		online := 0
		for _, m := range b.published() {
			if strings.HasSuffix(m.topic, "/status") && m.payload == `{"online":true}` {
				online++
			}
		}
		if online <= devices {
			t.Errorf("%d online statuses, want the %d first and more after the reconnections", online, devices)
		}
	}
}
