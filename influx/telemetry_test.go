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

func TestRangeEvery(t *testing.T) {
	for _, tc := range []struct {
		span   time.Duration
		points int
		want   time.Duration
	}{
		{time.Hour, 60, time.Minute},
		{time.Hour, 61, time.Minute},   // 59.02s rounds up to a whole second
		{time.Hour, 7200, time.Second}, // never below a second
		{time.Hour + 1, 60, 61 * time.Second},
		{24 * time.Hour, 500, 173 * time.Second},
		{10 * time.Second, 0, 10 * time.Second},
	} {
		if got := influx.RangeEvery(tc.span, tc.points); got != tc.want {
			t.Errorf("RangeEvery(%v, %d) = %v, want %v", tc.span, tc.points, got, tc.want)
		}
		if tc.points > 0 && tc.span > time.Duration(tc.points)*time.Second {
			if n := (tc.span + influx.RangeEvery(tc.span, tc.points) - 1) / influx.RangeEvery(tc.span, tc.points); int(n) > tc.points {
				t.Errorf("RangeEvery(%v, %d) gives %d windows", tc.span, tc.points, n)
			}
		}
	}
}

func TestTelemetry(t *testing.T) {
	srv := testenv.Influx(t)
	r := influx.New(influx.Options{URL: srv.URL(), Bucket: srv.Bucket()})
	t.Cleanup(r.Close)
	ctx := t.Context()

	// fr-1 sends current every 10 s for 10 minutes ending a minute ago (its
	// value is the minute index, so window means are predictable), and temp
	// once; its model tag changes half way. fr-2 is another device.
	end := time.Now().UTC().Truncate(time.Minute).Add(-time.Minute)
	start := end.Add(-10 * time.Minute)
	var lp strings.Builder
	for ts := start; ts.Before(end); ts = ts.Add(10 * time.Second) {
		model := "fridge-a"
		if ts.Sub(start) >= 5*time.Minute {
			model = "fridge-b"
		}
		minute := int(ts.Sub(start) / time.Minute)
		fmt.Fprintf(&lp, "telemetry,device_id=fr-1,model=%s current=%d %d\n", model, minute, ts.UnixMilli())
	}
	fmt.Fprintf(&lp, "telemetry,device_id=fr-1,model=fridge-a temp=4.5 %d\n", start.Add(time.Minute).UnixMilli())
	fmt.Fprintf(&lp, "telemetry,device_id=fr-2 current=99,temp=-1 %d\n", end.Add(-time.Second).UnixMilli())
	srv.Write(t, lp.String())

	t.Run("latest", func(t *testing.T) {
		got, err := r.Latest(ctx, "fr-1")
		if err != nil {
			t.Fatal(err)
		}
		want := []influx.MetricValue{
			{Metric: "current", Value: 9, Time: end.Add(-10 * time.Second)},
			{Metric: "temp", Value: 4.5, Time: start.Add(time.Minute)},
		}
		if len(got) != len(want) {
			t.Fatalf("latest = %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i].Metric != want[i].Metric || got[i].Value != want[i].Value || !got[i].Time.Equal(want[i].Time) {
				t.Errorf("latest[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
		if got, err := r.Latest(ctx, "nobody"); err != nil || len(got) != 0 {
			t.Errorf("latest of a silent device = %+v, %v; want empty", got, err)
		}
		if _, err := r.Latest(ctx, "bad id!"); proactive.ErrorCode(err) != proactive.EInvalid {
			t.Errorf("bad device id: %v", err)
		}
	})

	t.Run("range by minute", func(t *testing.T) {
		series, every, err := r.Range(ctx, "fr-1", []string{"current"}, start, end, 10)
		if err != nil {
			t.Fatal(err)
		}
		if every != time.Minute || len(series) != 1 || series[0].Metric != "current" {
			t.Fatalf("every %v, series %+v", every, series)
		}
		pts := series[0].Points
		if len(pts) != 10 {
			t.Fatalf("%d points, want 10: %+v", len(pts), pts)
		}
		for i, p := range pts {
			if !p.Time.Equal(start.Add(time.Duration(i)*time.Minute)) || p.Value != float64(i) {
				t.Errorf("point %d = %+v, want %v at %v", i, p, i, start.Add(time.Duration(i)*time.Minute))
			}
		}
	})

	t.Run("range bounded and all metrics", func(t *testing.T) {
		// 3 points over 10 minutes: windows of 200 s; the mean of the
		// first is of minutes 0..3 (samples 0..19): (6*0+6*1+6*2+2*3)/20.
		series, every, err := r.Range(ctx, "fr-1", nil, start, end, 3)
		if err != nil {
			t.Fatal(err)
		}
		if every != 200*time.Second || len(series) != 2 || series[0].Metric != "current" || series[1].Metric != "temp" {
			t.Fatalf("every %v, series %+v", every, series)
		}
		if n := len(series[0].Points); n > 3 || n < 3 {
			t.Fatalf("current has %d points, want 3", n)
		}
		if p := series[0].Points[0]; p.Value != 1.2 || !p.Time.Equal(start) {
			t.Errorf("first window %+v, want 1.2 at %v", p, start)
		}
		if len(series[1].Points) != 1 || series[1].Points[0].Value != 4.5 {
			t.Errorf("temp %+v", series[1])
		}
	})

	t.Run("range excludes to and other devices", func(t *testing.T) {
		series, _, err := r.Range(ctx, "fr-2", []string{"temp", "pressure"}, end.Add(-time.Second), end, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(series) != 1 || series[0].Metric != "temp" || len(series[0].Points) != 1 || series[0].Points[0].Value != -1 {
			t.Fatalf("fr-2 temp: %+v", series)
		}
		// A range ending exactly at a sample leaves it out, even on 1.8.
		series, _, err = r.Range(ctx, "fr-2", nil, end.Add(-time.Minute), end.Add(-time.Second), 100)
		if err != nil || len(series) != 0 {
			t.Errorf("range ending at the sample: %+v, %v", series, err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for name, f := range map[string]func() error{
			"device":  func() error { _, _, err := r.Range(ctx, "", nil, start, end, 10); return err },
			"metric":  func() error { _, _, err := r.Range(ctx, "fr-1", []string{"Current"}, start, end, 10); return err },
			"order":   func() error { _, _, err := r.Range(ctx, "fr-1", nil, end, start, 10); return err },
			"points":  func() error { _, _, err := r.Range(ctx, "fr-1", nil, start, end, 0); return err },
			"quoting": func() error { _, _, err := r.Range(ctx, `a"b`, nil, start, end, 10); return err },
		} {
			if err := f(); proactive.ErrorCode(err) != proactive.EInvalid {
				t.Errorf("%s: %v, want EInvalid", name, err)
			}
		}
	})
}
