package influx_test

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/internal/testenv"
)

// Every value, tag and timestamp the writer encodes must come back from
// InfluxDB as written, compressed or not.
func TestInfluxWriteStoresWhatItIsGiven(t *testing.T) {
	srv := testenv.Influx(t)
	ts := time.Date(2026, 11, 20, 8, 0, 0, 123_000_000, time.UTC)
	for i, c := range []struct {
		name        string
		compression influx.Compression
	}{{"auto (plain to loopback)", influx.CompressAuto}, {"none", influx.CompressNone}, {"gzip", influx.CompressGzip}} {
		t.Run(c.name, func(t *testing.T) {
			w := influx.New(influx.Options{URL: srv.URL(), Bucket: srv.Bucket(), Compression: c.compression})
			t.Cleanup(w.Close)
			dev := proactive.DeviceID("fridge-" + string(rune('a'+i)))
			at := ts.Add(time.Duration(i) * time.Hour)
			samples := []proactive.Sample{
				{Device: dev, Model: `Frost, 2000 =deluxe`, Time: at, Metrics: map[string]float64{
					"compressor_current": 5.25, "cabinet_temp": -18.5, "big": 1e21, "tiny": 1e-7, "zero": 0, "door_open": 1,
				}},
				{Device: dev, Time: at.Add(time.Millisecond), Metrics: map[string]float64{"compressor_current": math.MaxFloat64}},
			}
			statuses := []proactive.DeviceStatus{{Device: dev, Model: "m", Time: at, Online: true}}
			if err := w.Write(t.Context(), samples, statuses, nil); err != nil {
				t.Fatal(err)
			}
			got := map[time.Time]testenv.Point{}
			for _, p := range srv.Points(t, "telemetry") {
				if p.Tags["device_id"] == string(dev) {
					got[p.Time] = p
				}
			}
			if len(got) != len(samples) {
				t.Fatalf("stored %d points of %s, want %d: %+v", len(got), dev, len(samples), got)
			}
			for _, s := range samples {
				p, ok := got[s.Time]
				if !ok {
					t.Errorf("no point at %v", s.Time)
					continue
				}
				if p.Tags["model"] != s.Model {
					t.Errorf("model tag %q, want %q", p.Tags["model"], s.Model)
				}
				for k, v := range s.Metrics {
					if p.Fields[k] != v {
						t.Errorf("%s at %v = %v, want %v", k, s.Time, p.Fields[k], v)
					}
				}
			}
			var found bool
			for _, p := range srv.Points(t, "status") {
				if p.Tags["device_id"] == string(dev) {
					found = p.Fields["online"] == 1 && p.Time.Equal(at) && p.Tags["model"] == "m"
				}
			}
			if !found {
				t.Errorf("status of %s not stored as written", dev)
			}
		})
	}
}

// A write InfluxDB refuses for its content is marked ErrRejected (the
// ingester then dead-letters it); one that fails for want of the server is
// retryable.
func TestInfluxWriteClassifiesErrors(t *testing.T) {
	srv := testenv.Influx(t)
	w := influx.New(influx.Options{URL: srv.URL(), Bucket: srv.Bucket()})
	t.Cleanup(w.Close)
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	if err := w.Write(t.Context(), nil, nil, nil); err != nil {
		t.Fatalf("empty write: %v", err)
	}
	// A float into a boolean field of the same shard: a field type conflict.
	srv.Write(t, fmt.Sprintf("telemetry,device_id=d1 y=true %d\n", at.UnixMilli()))
	err := w.Write(t.Context(), []proactive.Sample{{Device: "d1", Time: at, Metrics: map[string]float64{"y": 2}}}, nil, nil)
	if !errors.Is(err, influx.ErrRejected) {
		t.Errorf("field type conflict: %v, want ErrRejected", err)
	}
	// ingest tells a rejection by its Permanent method.
	var p interface{ Permanent() bool }
	if !errors.As(err, &p) || !p.Permanent() {
		t.Errorf("field type conflict: %v does not say it is permanent", err)
	}
	// A point line protocol cannot carry is rejected before it is sent.
	for name, smp := range map[string]proactive.Sample{
		"NaN":                     {Device: "d1", Time: at, Metrics: map[string]float64{"x": math.NaN()}},
		"model ending in a slash": {Device: "d1", Model: `m\`, Time: at, Metrics: map[string]float64{"x": 1}},
	} {
		if err := w.Write(t.Context(), []proactive.Sample{smp}, nil, nil); !errors.Is(err, influx.ErrRejected) {
			t.Errorf("%s: %v, want ErrRejected", name, err)
		}
	}

	down := influx.New(influx.Options{URL: "http://" + testenv.FreeAddr(t), Bucket: srv.Bucket(), Timeout: time.Second})
	t.Cleanup(down.Close)
	err = down.Write(t.Context(), []proactive.Sample{{Device: "d1", Time: at, Metrics: map[string]float64{"x": 1}}}, nil, nil)
	if err == nil || errors.Is(err, influx.ErrRejected) || errors.As(err, &p) {
		t.Errorf("write to a closed port: %v, want a retryable error", err)
	}
}
