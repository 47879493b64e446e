package proactive

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// The defaults of a Backoff's zero fields.
const (
	DefaultBackoffBase = 100 * time.Millisecond
	DefaultBackoffMax  = 30 * time.Second
)

// Backoff is the one retry policy of the platform: the wait before retry n is
// Base doubled n-1 times, capped at Max, with equal jitter (half of it fixed,
// the other half random) so that many instances failing together do not
// retry in lockstep, while none retries much sooner than planned.
type Backoff struct {
	// Base is the first retry's delay before jitter, default
	// DefaultBackoffBase; Max caps it, default DefaultBackoffMax.
	Base, Max time.Duration
	// Rand draws the jitter; nil uses math/rand/v2's global source. A
	// seeded one (rand.New(rand.NewPCG(1, 2))) makes delays repeatable in
	// tests. A *rand.Rand is not safe for concurrent use: give each
	// goroutine its own, or leave it nil.
	Rand *rand.Rand
	// OnRetry, when set, is called by Retry after each failed attempt that
	// will be retried, with the attempt's number (from 1), the wait before
	// the next one and the attempt's error: for logs and metrics.
	OnRetry func(attempt int, wait time.Duration, err error)
}

// Step returns the delay before retry number attempt without jitter: Base
// doubled attempt-1 times, capped at Max. It is Delay's upper bound, for
// schedules that must be predictable, such as a persisted next attempt.
// attempt is counted from 1; a smaller one counts as 1.
func (b Backoff) Step(attempt int) time.Duration {
	base, max := b.Base, b.Max
	if base <= 0 {
		base = DefaultBackoffBase
	}
	if max <= 0 {
		max = DefaultBackoffMax
	}
	d := min(base, max)
	for i := 1; i < attempt && d < max; i++ {
		if d > max/2 {
			return max
		}
		d *= 2
	}
	return d
}

// Delay returns the wait before retry number attempt, counted from 1:
// between Step(attempt)/2 and Step(attempt), uniformly.
func (b Backoff) Delay(attempt int) time.Duration {
	step := b.Step(attempt)
	half := int64(step / 2)
	var j int64
	if b.Rand != nil {
		j = b.Rand.Int64N(half + 1)
	} else {
		j = rand.Int64N(half + 1)
	}
	return step - time.Duration(half) + time.Duration(j)
}

// Retry runs op until it succeeds, op says a retry cannot help, or ctx ends,
// waiting b.Delay(n) after failed attempt n. op gets the attempt's number,
// from 1, and returns retry = false for an error no retry can cure (a
// rejected message, an invalid value).
//
// Retry returns nil once op succeeds, op's error when op says not to retry,
// and, when ctx ends while waiting, an error that wraps both ctx.Err() and
// the last attempt's error. It waits on a timer, so testing/synctest can
// drive it.
func Retry(ctx context.Context, b Backoff, op func(ctx context.Context, attempt int) (retry bool, err error)) error {
	for attempt := 1; ; attempt++ {
		retry, err := op(ctx, attempt)
		if err == nil {
			return nil
		}
		if !retry {
			return err
		}
		wait := b.Delay(attempt)
		if b.OnRetry != nil {
			b.OnRetry(attempt, wait, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("gave up after %d attempts: %w (last error: %w)", attempt, ctx.Err(), err)
		case <-t.C:
		}
	}
}
