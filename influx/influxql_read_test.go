package influx_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/internal/testenv"
)

// Series longer than a response chunk (10,000 rows) come back whole and in
// order: Values yields each series in one run, Samples every point once,
// in time order.
func TestReadsAcrossResponseChunks(t *testing.T) {
	srv := testenv.Influx(t)
	s := influx.New(influx.Options{URL: srv.URL(), Bucket: srv.Bucket()})
	t.Cleanup(s.Close)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	const n = 25_000
	var lp strings.Builder
	for i := range n {
		at := start.Add(time.Duration(i) * time.Second).UnixMilli()
		fmt.Fprintf(&lp, "telemetry,device_id=d-a,model=m a=%d,b=%d %d\n", i, -i, at)
		if i%10 == 0 {
			fmt.Fprintf(&lp, "telemetry,device_id=d-b a=%d %d\n", i, at)
		}
	}
	srv.Write(t, lp.String())
	end := start.Add(n * time.Second)

	type key struct {
		device        proactive.DeviceID
		model, metric string
	}
	counts := map[key]int{}
	var last key
	var lastT time.Time
	err := s.Values(t.Context(), start, end, []string{"b", "a", "a"}, func(d proactive.DeviceID, model, metric string, at time.Time, v float64) error {
		k := key{d, model, metric}
		if k != last {
			if counts[k] > 0 {
				return fmt.Errorf("series %+v came in two parts", k)
			}
			last, lastT = k, time.Time{}
		}
		if !at.After(lastT) {
			return fmt.Errorf("series %+v: %v after %v", k, at, lastT)
		}
		lastT = at
		counts[k]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[key]int{{"d-a", "m", "a"}: n, {"d-a", "m", "b"}: n, {"d-b", "", "a"}: n / 10}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("values per series %v, want %v", counts, want)
	}

	var got int
	var prev proactive.Sample
	err = s.Samples(t.Context(), start, end, "", func(smp proactive.Sample) error {
		if got > 0 && (smp.Time.Before(prev.Time) || smp.Time.Equal(prev.Time) && smp.Device <= prev.Device) {
			return fmt.Errorf("sample %s at %v after %s at %v", smp.Device, smp.Time, prev.Device, prev.Time)
		}
		i := int(smp.Time.Sub(start) / time.Second)
		if smp.Device == "d-a" && (smp.Metrics["a"] != float64(i) || smp.Metrics["b"] != -float64(i) || smp.Model != "m") {
			return fmt.Errorf("sample %+v", smp)
		}
		got++
		prev = smp
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != n+n/10 {
		t.Errorf("%d samples, want %d", got, n+n/10)
	}
}

// Latest of a device with more metrics than fit a URL (the statements go
// as a POST form) finds every one.
func TestLatestOfManyMetrics(t *testing.T) {
	srv := testenv.Influx(t)
	s := influx.New(influx.Options{URL: srv.URL(), Bucket: srv.Bucket()})
	t.Cleanup(s.Close)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	var lp strings.Builder
	const metrics = 120
	for i := range metrics {
		fmt.Fprintf(&lp, "telemetry,device_id=d-a metric_with_a_rather_long_name_to_make_the_query_long_%03d=%d %d\n", i, i, at.UnixMilli())
	}
	fmt.Fprintf(&lp, "telemetry,device_id=d-b other=1 %d\n", at.UnixMilli())
	srv.Write(t, lp.String())
	got, err := s.Latest(t.Context(), "d-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != metrics {
		t.Fatalf("%d metrics, want %d", len(got), metrics)
	}
	for i, mv := range got {
		if want := fmt.Sprintf("metric_with_a_rather_long_name_to_make_the_query_long_%03d", i); mv.Metric != want || mv.Value != float64(i) || !mv.Time.Equal(at) {
			t.Errorf("metric %d = %+v, want %s = %d at %v", i, mv, want, i, at)
		}
	}
}

// What InfluxDB refuses comes back as an error that says why.
func TestReadErrors(t *testing.T) {
	srv := testenv.Influx(t)
	s := influx.New(influx.Options{URL: srv.URL(), Bucket: "nosuchdb/autogen"})
	t.Cleanup(s.Close)
	now := time.Now()
	err := s.Samples(t.Context(), now.Add(-time.Hour), now, "", func(proactive.Sample) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "database not found") {
		t.Errorf("Samples of a missing database: %v", err)
	}
	if _, err := s.Latest(t.Context(), "d-a"); err == nil || !strings.Contains(err.Error(), "database not found") {
		t.Errorf("Latest of a missing database: %v", err)
	}
}
