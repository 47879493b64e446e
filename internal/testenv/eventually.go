package testenv

import (
	"context"
	"testing"
	"time"
)

// DefaultTimeout is how long Eventually waits when given no timeout. It is long
// because CI is a loaded 2-core machine, and only a failing test waits it out.
const DefaultTimeout = 30 * time.Second

// Polling starts at once and backs off, so that a condition that is nearly met
// costs a millisecond and one that takes seconds costs few calls.
const (
	firstPoll = time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// Eventually calls cond until it returns nil: at once, then at intervals growing
// from 1 ms to 100 ms. If cond still fails after timeout (DefaultTimeout when
// timeout <= 0), or tb.Context() ends first, Eventually fails the test with
// tb.Fatalf quoting cond's last error, so the failure says what was still wrong.
// Like Fatalf, it must be called from the goroutine running the test.
func Eventually(tb testing.TB, timeout time.Duration, cond func() error) {
	tb.Helper()
	EventuallyValue(tb, timeout, func() (struct{}, error) { return struct{}{}, cond() })
}

// EventuallyValue is Eventually for a condition that yields something: it
// returns the value that came with cond's first nil error. If the test fails
// instead (and tb.Fatalf returns, as a fake's may), it returns the zero value.
func EventuallyValue[T any](tb testing.TB, timeout time.Duration, cond func() (T, error)) T {
	tb.Helper()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx := tb.Context()
	deadline := time.Now().Add(timeout)
	interval := firstPoll
	for {
		v, err := cond()
		if err == nil {
			return v
		}
		left := time.Until(deadline)
		if left <= 0 {
			tb.Fatalf("still not so after %v: %v", timeout, err)
			var zero T
			return zero
		}
		timer := time.NewTimer(min(interval, left))
		select {
		case <-ctx.Done():
			timer.Stop()
			tb.Fatalf("stopped waiting (%v): %v", context.Cause(ctx), err)
			var zero T
			return zero
		case <-timer.C:
		}
		interval = min(2*interval, maxPoll)
	}
}
