package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
)

// cancelledTB is a recordingTB whose test context has already ended.
type cancelledTB struct {
	*recordingTB
	ctx context.Context
}

func (c cancelledTB) Context() context.Context { return c.ctx }

// TestEventually checks that Eventually returns once the condition holds, and
// otherwise fails the test quoting the condition's last error. The bubble's
// fake clock makes the waiting instant and the outcome independent of load.
func TestEventually(t *testing.T) {
	t.Run("becomes true", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			calls := 0
			got := testenv.EventuallyValue(rec, time.Minute, func() (int, error) {
				calls++
				if calls < 5 {
					return 0, fmt.Errorf("call %d", calls)
				}
				return calls, nil
			})
			if rec.fatal != "" || got != 5 {
				t.Errorf("EventuallyValue = %d with Fatalf %q, want 5 and no failure", got, rec.fatal)
			}
		})
	})
	t.Run("true at once", func(t *testing.T) {
		rec := &recordingTB{TB: t}
		calls := 0
		testenv.Eventually(rec, time.Minute, func() error { calls++; return nil })
		if rec.fatal != "" || calls != 1 {
			t.Errorf("Eventually called the condition %d times with Fatalf %q, want once and no failure", calls, rec.fatal)
		}
	})
	t.Run("never", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			calls := 0
			testenv.Eventually(rec, 0, func() error {
				calls++
				return fmt.Errorf("queue holds %d", calls)
			})
			last := fmt.Sprintf("queue holds %d", calls)
			if !strings.Contains(rec.fatal, last) || !strings.Contains(rec.fatal, testenv.DefaultTimeout.String()) {
				t.Errorf("Fatalf %q, want it to quote the last error %q and the timeout %v", rec.fatal, last, testenv.DefaultTimeout)
			}
			if calls < 2 {
				t.Errorf("condition called %d times, want it polled", calls)
			}
		})
	})
	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(t.Context())
		cancel(errors.New("test over"))
		rec := &recordingTB{TB: t}
		testenv.Eventually(cancelledTB{rec, ctx}, time.Hour, func() error { return errors.New("not yet") })
		if !strings.Contains(rec.fatal, "test over") || !strings.Contains(rec.fatal, "not yet") {
			t.Errorf("Fatalf %q, want it to give the context's cause and the last error", rec.fatal)
		}
	})
}
