package rules_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// The platform's own outage makes no device silent: while intake is down the
// clock fires no since_seen() rule, and once it is back silence counts from
// then. 20 devices, the broker gone for two minutes (and, in the second case,
// for three hours), on synctest's fake clock.
func TestEngineIntakeOutageIsNoSilence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		outage time.Duration
	}{
		{"two minutes", 2 * time.Minute},
		{"three hours", 3 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var got []proactive.Alert
				notify := func(_ context.Context, a []proactive.Alert) { mu.Lock(); got = append(got, a...); mu.Unlock() }
				fired := func() int { synctest.Wait(); mu.Lock(); defer mu.Unlock(); return len(got) }
				e := rules.New(rules.Options{Notify: notify, Shards: 2, TickInterval: time.Minute, IntakeDown: true})
				if probs := e.Load([]rules.Spec{spec("silent", `since_seen() > duration("2h")`)}); probs != nil {
					t.Fatal(probs)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error)
				go func() { done <- e.Run(ctx) }()
				defer func() { cancel(); <-done }()

				e.SetIntake(true)
				var samples []proactive.Sample
				for i := range 20 {
					samples = append(samples, proactive.Sample{Device: proactive.DeviceID(fmt.Sprintf("d%02d", i)),
						Time: time.Now(), Metrics: map[string]float64{"temp": 4}})
				}
				e.Consume(ctx, samples, nil)
				time.Sleep(time.Hour) // synctest's fake clock: an hour of ticks with every device fresh
				e.SetIntake(false)
				time.Sleep(tc.outage) // fake clock: the outage, during which the devices send nothing we can see
				if n := fired(); n != 0 {
					t.Fatalf("%d alerts during our own outage, want none", n)
				}
				e.SetIntake(true)
				time.Sleep(2*time.Hour - time.Minute) // fake clock: silence since the resume stays under 2h
				if n := fired(); n != 0 {
					t.Fatalf("%d alerts within 2h of intake resuming, want none (silence counts from the resume)", n)
				}
				time.Sleep(3 * time.Minute) // fake clock: now 2h have passed since the resume with no sample
				if n := fired(); n != 20 {
					t.Fatalf("%d alerts once the devices were silent 2h after intake resumed, want 20", n)
				}
			})
		})
	}
}

// An engine that starts with intake down (serve, after a restart) evaluates
// no since_seen() rule until intake is reported up.
func TestEngineStartsWithIntakeDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		n := 0
		notify := func(_ context.Context, a []proactive.Alert) { mu.Lock(); n += len(a); mu.Unlock() }
		e := rules.New(rules.Options{Notify: notify, Shards: 1, TickInterval: time.Minute, IntakeDown: true})
		if probs := e.Load([]rules.Spec{spec("silent", `since_seen() > duration("1h")`)}); probs != nil {
			t.Fatal(probs)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- e.Run(ctx) }()
		defer func() { cancel(); <-done }()
		// A device known from before the restart (its windows restored), last
		// seen long ago.
		e.Consume(ctx, []proactive.Sample{{Device: "f1", Time: time.Now().Add(-48 * time.Hour), Metrics: map[string]float64{"temp": 1}}}, nil)
		time.Sleep(3 * time.Hour) // fake clock: hours of ticks while no broker is connected
		synctest.Wait()
		mu.Lock()
		if n != 0 {
			t.Fatalf("%d alerts before intake came up, want none", n)
		}
		mu.Unlock()
		e.SetIntake(true)
		time.Sleep(90 * time.Minute) // fake clock: silent for 1h30 since intake came up
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if n != 1 {
			t.Fatalf("%d alerts 1h30 after intake came up, want the one silent device", n)
		}
	})
}
