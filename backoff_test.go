package proactive_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proactivehq/proactive"
)

func TestBackoffStep(t *testing.T) {
	s := time.Second
	tests := []struct {
		name    string
		b       proactive.Backoff
		attempt int
		want    time.Duration
	}{
		{"first", proactive.Backoff{Base: s, Max: 10 * s}, 1, s},
		{"zero attempt counts as the first", proactive.Backoff{Base: s, Max: 10 * s}, 0, s},
		{"doubles", proactive.Backoff{Base: s, Max: 10 * s}, 2, 2 * s},
		{"doubles again", proactive.Backoff{Base: s, Max: 10 * s}, 4, 8 * s},
		{"capped", proactive.Backoff{Base: s, Max: 10 * s}, 5, 10 * s},
		{"capped for ever", proactive.Backoff{Base: s, Max: 10 * s}, 1000, 10 * s},
		{"base above max", proactive.Backoff{Base: time.Minute, Max: 10 * s}, 1, 10 * s},
		{"defaults", proactive.Backoff{}, 1, proactive.DefaultBackoffBase},
		{"default cap", proactive.Backoff{}, 1000, proactive.DefaultBackoffMax},
		{"no overflow", proactive.Backoff{Base: math.MaxInt64 / 3, Max: math.MaxInt64}, 3, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Step(tt.attempt); got != tt.want {
				t.Errorf("Step(%d) = %v, want %v", tt.attempt, got, tt.want)
			}
		})
	}
}

func TestBackoffDelay(t *testing.T) {
	seeded := func() proactive.Backoff {
		return proactive.Backoff{Base: time.Second, Max: time.Minute, Rand: rand.New(rand.NewPCG(1, 2))}
	}
	a, b := seeded(), seeded()
	var low, high bool
	for attempt := 1; attempt <= 200; attempt++ {
		step := a.Step(attempt)
		d := a.Delay(attempt)
		if d < step-step/2 || d > step {
			t.Fatalf("Delay(%d) = %v, want within [%v, %v]", attempt, d, step-step/2, step)
		}
		if again := b.Delay(attempt); again != d {
			t.Fatalf("Delay(%d) = %v, then %v from the same seed", attempt, d, again)
		}
		low = low || d < step*3/4
		high = high || d > step*3/4
	}
	if !low || !high {
		t.Errorf("200 delays all in one half of their range: no jitter (low %v, high %v)", low, high)
	}
	// Without a source, the global one draws, in the same range.
	if d := (proactive.Backoff{Base: time.Second}).Delay(1); d < time.Second/2 || d > time.Second {
		t.Errorf("Delay(1) = %v without Rand, want within [500ms, 1s]", d)
	}
}

func TestRetry(t *testing.T) {
	errDown := errors.New("store down")
	backoff := func(waits *[]time.Duration) proactive.Backoff {
		return proactive.Backoff{Base: time.Second, Max: 4 * time.Second, Rand: rand.New(rand.NewPCG(1, 2)),
			OnRetry: func(attempt int, wait time.Duration, err error) {
				if attempt != len(*waits)+1 || !errors.Is(err, errDown) {
					t.Errorf("OnRetry(%d, %v, %v) after %d retries", attempt, wait, err, len(*waits))
				}
				*waits = append(*waits, wait)
			}}
	}

	t.Run("succeeds after failures", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var waits []time.Duration
			var attempts []int
			err := proactive.Retry(t.Context(), backoff(&waits), func(_ context.Context, attempt int) (bool, error) {
				attempts = append(attempts, attempt)
				if attempt < 4 {
					return true, errDown
				}
				return false, nil
			})
			if err != nil || len(attempts) != 4 || attempts[3] != 4 || len(waits) != 3 {
				t.Fatalf("Retry = %v after attempts %v and waits %v", err, attempts, waits)
			}
		})
	})

	t.Run("stops when a retry cannot help", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			errRejected := errors.New("rejected")
			var waits []time.Duration
			calls := 0
			err := proactive.Retry(t.Context(), backoff(&waits), func(context.Context, int) (bool, error) {
				calls++
				if calls == 1 {
					return true, errDown
				}
				return false, errRejected
			})
			if !errors.Is(err, errRejected) || calls != 2 || len(waits) != 1 {
				t.Fatalf("Retry = %v after %d calls and waits %v", err, calls, waits)
			}
		})
	})

	t.Run("gives up when ctx ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var waits []time.Duration
			calls := 0
			err := proactive.Retry(ctx, backoff(&waits), func(context.Context, int) (bool, error) {
				calls++
				return true, errDown
			})
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errDown) {
				t.Fatalf("Retry = %v, want it to wrap the deadline and the last error", err)
			}
			// The waits are between half their step and their step (1s, 2s,
			// 4s, 4s, ...), so the 10s deadline ends the wait after attempt 4
			// (1+2+4+4 ≥ 10) at the earliest and 7 (.5+1+2+2+2+2+2 ≥ 10) at
			// the latest.
			if calls < 4 || calls > 7 || len(waits) != calls {
				t.Errorf("%d calls and waits %v before the deadline", calls, waits)
			}
		})
	})
}
