package ingest_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
)

// handle hands the ingester a message and waits until it is settled,
// which for a stored one means written.
func handle(t *testing.T, in *ingest.Ingester, topic, payload string, at time.Time) {
	t.Helper()
	msg, d := message(topic, payload, at)
	if err := in.Handle(t.Context(), msg); err != nil {
		t.Fatalf("Handle %s: %v", topic, err)
	}
	d.wait(t)
	d.assertAcked(t)
}

func TestIngesterRateLimitsEachDevice(t *testing.T) {
	st := &store{}
	in, m := newIngester(t, ingest.Options{Writer: st, MaxRatePerDevice: 2, RateBurst: 3})
	mustRun(t, in)
	// Five at once from pump-1: its burst of three goes through.
	for i := range 5 {
		handle(t, in, "devices/pump-1/telemetry", fmt.Sprintf(`{"metrics": {"a": %d}}`, i), received)
	}
	// pump-2 has its own bucket, and statuses count as messages.
	handle(t, in, "devices/pump-2/status", `{"online": true}`, received)
	// Half a second later pump-1 has one token again.
	handle(t, in, "devices/pump-1/telemetry", `{"metrics": {"a": 5}}`, received.Add(500*time.Millisecond))
	handle(t, in, "devices/pump-1/telemetry", `{"metrics": {"a": 6}}`, received.Add(500*time.Millisecond))

	samples, statuses := st.stored()
	var got []float64
	for _, s := range samples {
		got = append(got, s.Metrics["a"])
	}
	if want := []float64{0, 1, 2, 5}; !slices.Equal(got, want) {
		t.Errorf("pump-1's values stored: %v, want %v", got, want)
	}
	if len(statuses) != 1 || statuses[0].Device != "pump-2" {
		t.Errorf("statuses stored: %+v, want pump-2's", statuses)
	}
	if got := deadLetterCount(t, m, ingest.ReasonRateLimited); got != 3 {
		t.Errorf("dead letters rate_limited = %v, want 3", got)
	}
	// One recent dead letter per episode: two episodes.
	var recent []ingest.DeadLetter
	for _, l := range in.DeadLetters().Recent(0) {
		if l.Reason == ingest.ReasonRateLimited {
			recent = append(recent, l)
		}
	}
	if len(recent) != 2 || recent[0].Device != "pump-1" || !strings.Contains(recent[0].Detail, "2 messages per second") {
		t.Errorf("recent rate_limited dead letters: %+v, want pump-1's two episodes", recent)
	}
}

func TestIngesterWithoutRateLimit(t *testing.T) {
	st := &store{}
	in, m := newIngester(t, ingest.Options{Writer: st})
	mustRun(t, in)
	for i := range 50 {
		handle(t, in, "devices/pump-1/telemetry", fmt.Sprintf(`{"metrics": {"a": %d}}`, i), received)
	}
	if samples, _ := st.stored(); len(samples) != 50 {
		t.Errorf("stored %d samples, want 50", len(samples))
	}
	if got := deadLetterCount(t, m, ingest.ReasonRateLimited); got != 0 {
		t.Errorf("dead letters rate_limited = %v, want none", got)
	}
}

func TestIngesterCapsMetricNamesPerDevice(t *testing.T) {
	st := &store{}
	in, m := newIngester(t, ingest.Options{Writer: st, MaxMetricsPerDevice: 3})
	mustRun(t, in)
	steps := []struct {
		device, payload string
		// want is what is stored of the message, its names in order;
		// dropped the entries and names dead-lettered.
		want    [][]string
		dropped map[int]string
	}{
		{"pump-1", `{"metrics": {"a": 1, "b": 1}}`, [][]string{{"a", "b"}}, nil},
		{"pump-1", `{"metrics": {"e": 1, "d": 1, "c": 1}}`, [][]string{{"c"}}, map[int]string{-1: "metrics d, e not stored"}},
		{"pump-1", `{"metrics": {"a": 2, "z": 2}}`, [][]string{{"a"}}, map[int]string{-1: "metrics z not stored"}},
		{"pump-1", `{"metrics": {"y": 3}}`, nil, map[int]string{-1: "metrics y not stored"}},
		// Entries are named by their index, past the decoder's errors.
		{"pump-1", `[{"ts": 1, "metrics": {"a": 4}}, {"metrics": {"b": 4, "x": 4}}, {"metrics": {"c": 4}}]`,
			[][]string{{"b"}, {"c"}}, map[int]string{1: "metrics x not stored"}},
		// Another device has names of its own.
		{"pump-2", `{"metrics": {"x": 1, "y": 1, "z": 1}}`, [][]string{{"x", "y", "z"}}, nil},
	}
	for i, step := range steps {
		before := len(in.DeadLetters().Recent(0))
		samplesBefore, _ := st.stored()
		handle(t, in, "devices/"+step.device+"/telemetry", step.payload, received)
		samples, _ := st.stored()
		var got [][]string
		for _, s := range samples[len(samplesBefore):] {
			got = append(got, slices.Sorted(maps.Keys(s.Metrics)))
		}
		if !slices.EqualFunc(got, step.want, slices.Equal) {
			t.Errorf("step %d: stored %v, want %v", i, got, step.want)
		}
		var fresh []ingest.DeadLetter
		if n := len(in.DeadLetters().Recent(0)) - before; n > 0 {
			fresh = in.DeadLetters().Recent(n)
		}
		for _, l := range fresh {
			if l.Reason != ingest.ReasonTooManyMetrics {
				continue
			}
			want, ok := step.dropped[l.Entry]
			if !ok || !strings.HasPrefix(l.Detail, want) || l.Device != step.device {
				t.Errorf("step %d: dead letter %+v, want entry → %v", i, l, step.dropped)
			}
			delete(step.dropped, l.Entry)
		}
		if len(step.dropped) > 0 {
			t.Errorf("step %d: no too_many_metrics dead letter for %v", i, step.dropped)
		}
	}
	if got := deadLetterCount(t, m, ingest.ReasonTooManyMetrics); got != 4 {
		t.Errorf("dead letters too_many_metrics = %v, want 4", got)
	}
}

func TestIngesterRefusesBadTimestampsAndDuplicateMetrics(t *testing.T) {
	st := &store{}
	in, m := newIngester(t, ingest.Options{Writer: st, MaxClockSkew: time.Hour})
	mustRun(t, in)
	for _, p := range []struct{ topic, payload string }{
		{"devices/pump-1/telemetry", `{"ts": 1, "metrics": {"a": 1}}`},
		{"devices/pump-1/telemetry", fmt.Sprintf(`{"ts": %d, "metrics": {"a": 1}}`, received.Add(61*time.Minute).UnixMilli())},
		{"devices/pump-1/events", `{"ts": "1999-12-31T23:00:00Z", "code": "E1"}`},
		{"devices/pump-1/telemetry", `{"metrics": {"a": 1, "a": 2}}`},
	} {
		handle(t, in, p.topic, p.payload, received)
	}
	handle(t, in, "devices/pump-1/telemetry", fmt.Sprintf(`{"ts": %d, "metrics": {"a": 3}}`, received.Add(59*time.Minute).UnixMilli()), received)
	samples, _ := st.stored()
	want := []proactive.Sample{{Device: "pump-1", Time: received.Add(59 * time.Minute), Metrics: map[string]float64{"a": 3}}}
	assertSamples(t, samples, want)
	if got := deadLetterCount(t, m, ingest.ReasonBadTimestamp); got != 3 {
		t.Errorf("dead letters bad_timestamp = %v, want 3", got)
	}
	if got := deadLetterCount(t, m, ingest.ReasonDuplicateMetric); got != 1 {
		t.Errorf("dead letters duplicate_metric = %v, want 1", got)
	}
}
