package rules_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/rules"
)

// A restart rebuilds windows and alert states from InfluxDB: the rebuilt
// engine holds the same alerts as one that never stopped, notifies nothing
// while rebuilding, and fires next at the same time; whether it replays
// every sample of the lookback, loads the windows as bucket aggregates and
// replays only the tail, or falls back to the replay when aggregates fail.
func TestRestartRebuildsFromInflux(t *testing.T) {
	influx := testenv.Influx(t)
	specs := []rules.Spec{
		spec("wear", `avg(current, "1h") > 1.2 * avg(current, "1d")`),
		{Name: "slow", Component: "fan", Severity: "info", When: `avg(current, "30m") > 4.5`, For: 3 * time.Hour, File: "t.yaml", Line: 2, WhenLine: 2},
		// Reads every kind of window function, over buckets of several
		// samples (24m for 1d at 5-minute steps), and predicts.
		{Name: "spread", Component: "valve", Severity: "info", File: "t.yaml", Line: 3, WhenLine: 3, For: time.Hour,
			When:    `stddev(current, "1d") > 0.05 && slope(current, "1d") > 0 && delta(current, "2h") > 0 && max(current, "1d") - min(current, "1d") > 0.1 && count(current, "1d") > 10 && last(current, "1d") > sum(current, "1d") / count(current, "1d")`,
			Predict: `forecast(current, 9.0, "1d")`},
	}
	specs[0].For = 30 * time.Minute
	// Three devices, two days at 5-minute steps; one ramps up from hour 40.
	base := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Hour)
	var samples []proactive.Sample
	var lp []byte
	for i := range 48 * 12 {
		ts := base.Add(time.Duration(i) * 5 * time.Minute)
		for d := range 3 {
			v := 4.0 + 0.01*float64(i%5)
			if d == 0 && i >= 40*12 {
				v += 0.02 * float64(i-40*12)
			}
			dev := fmt.Sprintf("fridge-%d", d)
			samples = append(samples, proactive.Sample{Device: proactive.DeviceID(dev), Model: "fridge-a1", Time: ts, Metrics: map[string]float64{"current": v}})
			lp = fmt.Appendf(lp, "telemetry,device_id=%s,model=fridge-a1 current=%g %d\n", dev, v, ts.UnixMilli())
		}
	}
	influx.Write(t, string(lp))
	store := mustStore(t, influx)
	end := samples[len(samples)-1].Time.Add(time.Millisecond)
	history := rules.StoredHistory(store)

	var replayed int64 // samples the replay read, to compare
	cases := []struct {
		name string
		// tail, when set, is the span whose samples the rebuild evaluates:
		// an alert whose episode began before it comes back in the same
		// state, active from the tail's first evaluation.
		tail    time.Duration
		rebuild func(t *testing.T, e *rules.Engine) rules.RebuildReport
	}{
		{"replay", 0, func(t *testing.T, e *rules.Engine) rules.RebuildReport {
			if lb, want := e.Lookback(), 2*(24*time.Hour+24*time.Minute)+3*time.Hour; lb != want {
				t.Errorf("lookback %v, want %v: twice the longest window and its bucket, and the longest for", lb, want)
			}
			n, err := e.Rebuild(t.Context(), rules.StoredSamples(store, end.Add(-e.Lookback()), end, ""))
			if err != nil {
				t.Fatal(err)
			}
			replayed = n
			return rules.RebuildReport{Samples: n}
		}},
		{"aggregated", 6 * time.Hour, func(t *testing.T, e *rules.Engine) rules.RebuildReport {
			if tail, want := e.RebuildTail(), 6*time.Hour; tail != want {
				t.Errorf("tail %v, want %v: the longest for plus clear_for", tail, want)
			}
			rep, err := e.RebuildHistory(t.Context(), history, end)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Aggregated || rep.Buckets == 0 || rep.Fallback != nil {
				t.Errorf("report %+v: want windows loaded from aggregates", rep)
			}
			if replayed > 0 && rep.Samples*4 > replayed {
				t.Errorf("replayed %d samples of the tail, the full replay %d: want far fewer", rep.Samples, replayed)
			}
			return rep
		}},
		{"fallback", 0, func(t *testing.T, e *rules.Engine) rules.RebuildReport {
			h := history
			h.Buckets = func(ctx context.Context, reqs []rules.BucketRequest, fn func(rules.BucketAggregate) error) error {
				// Fail midway, after loading part of the windows.
				if err := history.Buckets(ctx, reqs[:1], fn); err != nil {
					return err
				}
				return errors.New("no aggregates here")
			}
			rep, err := e.RebuildHistory(t.Context(), h, end)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Aggregated || rep.Fallback == nil || rep.Samples == 0 {
				t.Errorf("report %+v: want a replay of samples, saying why", rep)
			}
			return rep
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The engine that never stopped.
			live := rules.NewEvaluator(mustCompile(t, specs...), nil, 5*time.Minute)
			for _, s := range samples {
				live.Observe(s)
			}
			want := live.Alerts()
			if len(want) < 3 {
				t.Fatalf("the data raises %d alerts, want one of each rule: the test would prove less", len(want))
			}

			// The restarted one.
			rec := newRecorder()
			e := rules.New(rules.Options{Notify: rec.notify, Shards: 2})
			if probs := e.Load(specs); probs != nil {
				t.Fatal(probs)
			}
			rep := c.rebuild(t, e)
			t.Logf("rebuilt: %+v", rep)
			got := e.Alerts()
			if c.tail > 0 {
				want = sinceTail(t, want, got, end.Add(-c.tail), specs)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("after the rebuild:\n%+v\nwithout a restart:\n%+v", got, want)
			}

			// The next samples cause the same alerts in both.
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- e.Run(ctx) }()
			defer func() { cancel(); <-done }()
			var next []proactive.Alert
			var batch []proactive.Sample
			for i := range 12 {
				s := proactive.Sample{Device: "fridge-0", Model: "fridge-a1", Time: end.Add(time.Duration(i) * 5 * time.Minute), Metrics: map[string]float64{"current": 2}}
				batch = append(batch, s)
				next = append(next, live.Observe(s)...)
			}
			if len(next) == 0 {
				t.Fatal("the next samples change nothing: the test would prove nothing")
			}
			e.Consume(t.Context(), batch, nil)
			gotNext := rec.wait(t, len(next))
			if len(gotNext) != len(next) {
				t.Fatalf("notified %d alerts (some during the rebuild?), want %d", len(gotNext), len(next))
			}
			for i := range next {
				if gotNext[i].Rule != next[i].Rule || gotNext[i].State != next[i].State || !gotNext[i].FiredAt.Equal(next[i].FiredAt) || !gotNext[i].ActiveAt.Equal(next[i].ActiveAt) {
					t.Errorf("alert %d: restarted %+v, never stopped %+v", i, gotNext[i], next[i])
				}
			}
		})
	}
}

// sinceTail returns want with the alerts whose episode began before from
// active since got's, which must be no earlier than from, and fired `for`
// later: what a rebuild evaluating from on derives.
func sinceTail(t *testing.T, want, got []rules.AlertStatus, from time.Time, specs []rules.Spec) []rules.AlertStatus {
	t.Helper()
	out := append([]rules.AlertStatus(nil), want...)
	older := 0
	for i := range out {
		if !out[i].ActiveAt.Before(from) || i >= len(got) || got[i].Rule != out[i].Rule || got[i].Device != out[i].Device {
			continue
		}
		older++
		if got[i].ActiveAt.Before(from) {
			t.Errorf("%s/%s active at %v, before the tail from %v", got[i].Rule, got[i].Device, got[i].ActiveAt, from)
		}
		out[i].ActiveAt = got[i].ActiveAt
		if out[i].State == proactive.AlertFiring {
			for _, s := range specs {
				if s.Name == out[i].Rule {
					out[i].FiredAt = got[i].ActiveAt.Add(s.For)
				}
			}
		}
	}
	if older == 0 {
		t.Error("no alert began before the tail: the test would not show what the rebuild does with one")
	}
	return out
}
