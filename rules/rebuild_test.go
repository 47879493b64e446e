package rules_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/rules"
)

// A restart rebuilds windows and alert states from InfluxDB: the rebuilt
// engine holds the same alerts as one that never stopped, notifies nothing
// while rebuilding, and fires next at the same time.
func TestRestartRebuildsFromInflux(t *testing.T) {
	influx := testenv.Influx(t)
	specs := []rules.Spec{
		spec("wear", `avg(current, "1h") > 1.2 * avg(current, "1d")`),
		{Name: "slow", Component: "fan", Severity: "info", When: `avg(current, "30m") > 4.5`, For: 3 * time.Hour, File: "t.yaml", Line: 2, WhenLine: 2},
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

	// The engine that never stopped.
	live := rules.NewEvaluator(mustCompile(t, specs...), nil, 5*time.Minute)
	for _, s := range samples {
		live.Observe(s)
	}
	want := live.Alerts()
	if len(want) == 0 {
		t.Fatal("the data raises no alert: the test would prove nothing")
	}

	// The restarted one.
	rec := newRecorder()
	e := rules.New(rules.Options{Notify: rec.notify, Shards: 2})
	if probs := e.Load(specs); probs != nil {
		t.Fatal(probs)
	}
	if lb, want := e.Lookback(), 2*(24*time.Hour+24*time.Minute)+3*time.Hour; lb != want {
		t.Errorf("lookback %v, want %v: twice the longest window and its bucket, and the longest for", lb, want)
	}
	client := influxdb2.NewClient(influx.URL(), "")
	defer client.Close()
	end := samples[len(samples)-1].Time.Add(time.Millisecond)
	n, err := e.Rebuild(t.Context(), rules.InfluxSource(client, "", influx.Bucket(), end.Add(-e.Lookback()), end, ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rebuilt from %d samples", n)
	got := e.Alerts()
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
		for _, a := range live.Observe(s) {
			next = append(next, a)
		}
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
}
