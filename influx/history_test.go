package influx_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/internal/testenv"
)

// historyFixture writes three hours of samples at one-minute steps from
// start, of three devices (one without a model, one with a model line
// protocol must escape, sending one metric only), through the store, and
// returns them in time and then device order.
func historyFixture(t *testing.T, s *influx.Store, start time.Time) []proactive.Sample {
	t.Helper()
	var out []proactive.Sample
	for i := range 180 {
		at := start.Add(time.Duration(i) * time.Minute)
		out = append(out,
			proactive.Sample{Device: "d-a", Model: "m1", Time: at, Metrics: map[string]float64{"current": float64(i), "temp": 4 + float64(i%7)/8}},
			proactive.Sample{Device: "d-b", Time: at, Metrics: map[string]float64{"current": -float64(i), "temp": 3.5}},
			proactive.Sample{Device: "d-c", Model: "m, 2=x", Time: at, Metrics: map[string]float64{"current": float64(i) / 3}},
		)
	}
	if err := s.Write(t.Context(), out, []proactive.DeviceStatus{{Device: "d-a", Time: start, Online: true}}, nil); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSamplesAndValues(t *testing.T) {
	srv := testenv.Influx(t)
	s := influx.New(influx.Options{URL: srv.URL(), Bucket: srv.Bucket()})
	t.Cleanup(s.Close)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	all := historyFixture(t, s, start)
	// A point before the range and one of another measurement must not leak in.
	srv.Write(t, fmt.Sprintf("telemetry,device_id=d-a current=500 %d\nother,device_id=d-a current=600 %d\n",
		start.Add(-time.Hour).UnixMilli(), start.Add(time.Hour).UnixMilli()))
	from, to := start.Add(10*time.Minute), start.Add(170*time.Minute)
	var in []proactive.Sample
	for _, smp := range all {
		if !smp.Time.Before(from) && smp.Time.Before(to) {
			in = append(in, smp)
		}
	}

	t.Run("samples", func(t *testing.T) {
		for _, device := range []proactive.DeviceID{"", "d-c"} {
			var want []proactive.Sample
			for _, smp := range in {
				if device == "" || smp.Device == device {
					want = append(want, smp)
				}
			}
			var got []proactive.Sample
			err := s.Samples(t.Context(), from, to, device, func(smp proactive.Sample) error {
				got = append(got, smp)
				return nil
			})
			if err != nil {
				t.Fatalf("Samples of %q: %v", device, err)
			}
			if len(got) != len(want) {
				t.Fatalf("Samples of %q: %d samples, want %d", device, len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.Device != w.Device || g.Model != w.Model || !g.Time.Equal(w.Time) || len(g.Metrics) != len(w.Metrics) {
					t.Fatalf("Samples of %q: sample %d is %+v, want %+v", device, i, g, w)
				}
				for k, v := range w.Metrics {
					if g.Metrics[k] != v {
						t.Fatalf("Samples of %q: %s of %s at %v = %v, want %v", device, k, w.Device, w.Time, g.Metrics[k], v)
					}
				}
			}
		}
		if err := s.Samples(t.Context(), from, to, `x" or true or "`, func(proactive.Sample) error { return nil }); err == nil {
			t.Error("a device id that is not one was accepted")
		}
		stop := errors.New("stop")
		if err := s.Samples(t.Context(), from, to, "", func(proactive.Sample) error { return stop }); err != stop {
			t.Errorf("Samples returned %v, want fn's error", err)
		}
	})

	t.Run("values", func(t *testing.T) {
		type key struct {
			device        proactive.DeviceID
			model, metric string
		}
		type value struct {
			t time.Time
			v float64
		}
		want := map[key][]value{}
		for _, smp := range in {
			want[key{smp.Device, smp.Model, "current"}] = append(want[key{smp.Device, smp.Model, "current"}], value{smp.Time, smp.Metrics["current"]})
		}
		got := map[key][]value{}
		var last key
		err := s.Values(t.Context(), from, to, []string{"current"}, func(d proactive.DeviceID, model, metric string, at time.Time, v float64) error {
			k := key{d, model, metric}
			if k != last && got[k] != nil {
				return fmt.Errorf("series %+v came in two parts", k)
			}
			last = k
			if vs := got[k]; len(vs) > 0 && !vs[len(vs)-1].t.Before(at) {
				return fmt.Errorf("series %+v: %v after %v", k, at, vs[len(vs)-1].t)
			}
			if at.After(to) || at.Before(from) {
				return fmt.Errorf("series %+v: value at %v, outside [%v, %v]", k, at, from, to)
			}
			if at.Before(to) { // values at to may come too
				got[k] = append(got[k], value{at, v})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d series, want %d: %v", len(got), len(want), slices.Collect(maps.Keys(got)))
		}
		for k, w := range want {
			if !slices.EqualFunc(got[k], w, func(a, b value) bool { return a.t.Equal(b.t) && a.v == b.v }) {
				t.Errorf("series %+v: got %d values, want %d", k, len(got[k]), len(w))
			}
		}
		if err := s.Values(t.Context(), from, to, []string{"Bad"}, nil); err == nil {
			t.Error("a metric name that is not one was accepted")
		}
	})
}
