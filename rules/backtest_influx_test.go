package rules_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	influxstore "github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/rules"
)

// degradingFleet returns days of telemetry at 5-minute steps from start for
// devices fridges, in time order: compressor current about 4 A and cabinet
// temperature about 4 °C with noise; fridge-2's current climbs from the
// middle of the second day towards 9 A, and fridge-4 has no model tag and
// sends no temperature.
func degradingFleet(start time.Time, days, fridges int) []proactive.Sample {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []proactive.Sample
	for at := time.Duration(0); at < time.Duration(days)*24*time.Hour; at += 5 * time.Minute {
		for i := range fridges {
			id := fmt.Sprintf("fridge-%d", i)
			current := 4 + 0.2*rng.NormFloat64()
			if i == 2 && at > 36*time.Hour {
				current += 5 * (at - 36*time.Hour).Hours() / float64(days*24-36)
			}
			s := proactive.Sample{Device: proactive.DeviceID(id), Model: "fridge-a1", Time: start.Add(at),
				Metrics: map[string]float64{"compressor_current": current, "cabinet_temp": 4 + 0.3*rng.NormFloat64()}}
			if i == 4 {
				s.Model = ""
				delete(s.Metrics, "cabinet_temp")
			}
			out = append(out, s)
		}
	}
	return out
}

// lineProtocol writes samples as ingest stores them.
func lineProtocol(samples []proactive.Sample) string {
	var b strings.Builder
	for _, s := range samples {
		b.WriteString("telemetry,device_id=")
		b.WriteString(string(s.Device))
		if s.Model != "" {
			b.WriteString(",model=")
			b.WriteString(s.Model)
		}
		sep := byte(' ')
		for k, v := range s.Metrics {
			b.WriteByte(sep)
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			sep = ','
		}
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(s.Time.UnixMilli(), 10))
		b.WriteByte('\n')
	}
	return b.String()
}

// mustStore returns the history store of the throwaway influxd's bucket.
func mustStore(tb testing.TB, s *testenv.InfluxServer) *influxstore.Store {
	tb.Helper()
	st := influxstore.New(influxstore.Options{URL: s.URL(), Bucket: s.Bucket(), Timeout: time.Hour})
	tb.Cleanup(st.Close)
	return st
}

func TestBacktestInfluxMatchesLiveEvaluation(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	samples := degradingFleet(start, 3, 6)
	influx.Write(t, lineProtocol(samples))
	// Another measurement and another time range must not leak in.
	influx.Write(t, fmt.Sprintf("status,device_id=fridge-1 online=true %d\ntelemetry,device_id=fridge-1 compressor_current=50 %d\n",
		start.Add(time.Hour).UnixMilli(), start.Add(-time.Hour).UnixMilli()))

	set := mustCompile(t,
		rules.Spec{Name: "compressor_wear", When: `avg(compressor_current, "1h") > 1.25 * avg(compressor_current, "1d")`,
			For: 30 * time.Minute, Predict: `forecast(compressor_current, 9.0)`, Cooldown: 24 * time.Hour},
		rules.Spec{Name: "current_spike", Component: "power", When: `compressor_current > 4.5`, For: 10 * time.Minute},
		rules.Spec{Name: "warm", Component: "cabinet", When: `avg(cabinet_temp, "30m") > 4.2`, For: 15 * time.Minute},
	)
	store := mustStore(t, influx)
	end := start.Add(72 * time.Hour)
	src := rules.StoredSamples(store, start, end, "")

	// The source yields exactly what was written, in time order.
	var n int
	var prev time.Time
	byKey := map[string]proactive.Sample{}
	for _, s := range samples {
		byKey[string(s.Device)+"@"+s.Time.String()] = s
	}
	err := src(t.Context(), func(s proactive.Sample) error {
		if s.Time.Before(prev) {
			return fmt.Errorf("sample of %s at %v after one at %v", s.Device, s.Time, prev)
		}
		prev = s.Time
		want, ok := byKey[string(s.Device)+"@"+s.Time.String()]
		if !ok {
			return fmt.Errorf("unexpected sample %+v", s)
		}
		if s.Model != want.Model || len(s.Metrics) != len(want.Metrics) {
			return fmt.Errorf("sample %+v, want %+v", s, want)
		}
		for k, v := range want.Metrics {
			if s.Metrics[k] != v {
				return fmt.Errorf("%s at %v: %s = %v, want %v", s.Device, s.Time, k, s.Metrics[k], v)
			}
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("StoredSamples: %v", err)
	}
	if n != len(samples) {
		t.Fatalf("StoredSamples yielded %d samples, want %d", n, len(samples))
	}

	rep, err := rules.Backtest(t.Context(), set, src, rules.BacktestOptions{From: start, To: end})
	if err != nil {
		t.Fatalf("Backtest: %v", err)
	}
	live := rules.NewEvaluator(set, nil, 5*time.Minute)
	var want []proactive.Alert
	for _, s := range samples {
		want = append(want, live.Observe(s)...)
	}
	if rep.Samples != int64(len(samples)) || rep.Devices != 6 {
		t.Errorf("replayed %d samples of %d devices, want %d of 6", rep.Samples, rep.Devices, len(samples))
	}
	if len(want) == 0 {
		t.Fatal("no alerts live: the fixture does not exercise the rules")
	}
	if len(rep.Alerts) != len(want) {
		t.Errorf("%d alerts in the backtest, %d live", len(rep.Alerts), len(want))
	}
	for i := range min(len(want), len(rep.Alerts)) {
		g, w := rep.Alerts[i], want[i]
		if g.Rule != w.Rule || g.Device != w.Device || g.State != w.State || !g.FiredAt.Equal(w.FiredAt) || g.TimeToFailure != w.TimeToFailure {
			t.Errorf("alert %d:\nbacktest %s %s %s fired %v ttf %v\n    live %s %s %s fired %v ttf %v", i,
				g.Rule, g.Device, g.State, g.FiredAt, g.TimeToFailure, w.Rule, w.Device, w.State, w.FiredAt, w.TimeToFailure)
		}
	}
	wear := rep.Rules[0]
	if wear.Devices != 1 || len(wear.FirstFires) != 1 || wear.FirstFires[0].Device != "fridge-2" || wear.FirstFires[0].TimeToFailure <= 0 {
		t.Errorf("compressor_wear: %+v, want one fire, on fridge-2, with a prediction", wear)
	}
	for _, r := range rep.Rules {
		t.Logf("%s: %d fires on %d devices, %.2f a day", r.Rule, r.Fires, r.Devices, float64(r.Fires)/rep.Days())
	}

	// One device.
	var only []proactive.Sample
	err = rules.StoredSamples(store, start, end, "fridge-4")(t.Context(), func(s proactive.Sample) error {
		only = append(only, s)
		return nil
	})
	if err != nil {
		t.Fatalf("StoredSamples for fridge-4: %v", err)
	}
	if len(only) != 3*24*12 {
		t.Errorf("fridge-4: %d samples, want %d", len(only), 3*24*12)
	}
	for _, s := range only {
		if s.Device != "fridge-4" || s.Model != "" || len(s.Metrics) != 1 {
			t.Fatalf("fridge-4: got %+v", s)
		}
	}
	if err := rules.StoredSamples(store, start, end, `x" or true or "`)(t.Context(), func(proactive.Sample) error { return nil }); err == nil {
		t.Error("a device id that is not one was accepted")
	}
}
