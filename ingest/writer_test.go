package ingest_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
)

// permanentError is a store's error that does not wrap ErrRejected but says
// a retry cannot help, as influx.ErrRejected does.
type permanentError struct{}

func (permanentError) Error() string   { return "rejected by the store's own sentinel" }
func (permanentError) Permanent() bool { return true }

// A writer's error with Permanent() true is a rejection, as one wrapping
// ErrRejected is: the message is dead-lettered at once, not retried.
func TestIngesterTreatsPermanentErrorsAsRejected(t *testing.T) {
	var calls atomic.Int64
	w := writerFunc(func(context.Context, []proactive.Sample, []proactive.DeviceStatus) error {
		calls.Add(1)
		return permanentError{}
	})
	in, m := newIngester(t, ingest.Options{Writer: w})
	mustRun(t, in)

	msg, d := message("devices/f1/telemetry", `{"metrics": {"current": 1}}`, received)
	if err := in.Handle(t.Context(), msg); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	d.wait(t)
	d.assertAcked(t)
	if n := calls.Load(); n != 1 {
		t.Errorf("writer called %d times, want 1: a permanent error must not be retried", n)
	}
	if got := deadLetterCount(t, m, ingest.ReasonWriteRejected); got != 1 {
		t.Errorf("dead letters write_rejected = %v, want 1", got)
	}
	if got := value(t, m.WriteErrors.WithLabelValues("false")); got != 1 {
		t.Errorf("non-retryable write errors = %v, want 1", got)
	}
}
