package rules_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

// fleetSamples returns every 5 minutes over [from, from+span) one sample
// per device, with the value value(device, t), in time order across
// devices; a device whose value is NaN at t sends nothing then.
func fleetSamples(from time.Time, span time.Duration, devices []string, value func(dev string, at time.Duration) (float64, bool)) []proactive.Sample {
	var out []proactive.Sample
	for at := time.Duration(0); at < span; at += 5 * time.Minute {
		for _, d := range devices {
			v, ok := value(d, at)
			if !ok {
				continue
			}
			out = append(out, proactive.Sample{Device: proactive.DeviceID(d), Model: "fridge-a1", Time: from.Add(at),
				Metrics: map[string]float64{"temp": v}})
		}
	}
	return out
}

// hotFleet is two days of three fridges: f1 runs hot from 12:00 to 14:00
// on day one, f2 from 06:00 to 08:00 on both days, f3 never.
func hotFleet() []proactive.Sample {
	h := time.Hour
	return fleetSamples(t0, 48*h, []string{"f1", "f2", "f3"}, func(dev string, at time.Duration) (float64, bool) {
		hot := false
		switch dev {
		case "f1":
			hot = at >= 12*h && at < 14*h
		case "f2":
			tod := at % (24 * h)
			hot = tod >= 6*h && tod < 8*h
		}
		if hot {
			return 12, true
		}
		return 4, true
	})
}

func mustBacktest(t *testing.T, set *rules.RuleSet, src rules.SampleSource, o rules.BacktestOptions) *rules.BacktestReport {
	t.Helper()
	rep, err := rules.Backtest(t.Context(), set, src, o)
	if err != nil {
		t.Fatalf("Backtest: %v", err)
	}
	return rep
}

func TestBacktestCounts(t *testing.T) {
	set := mustCompile(t,
		rules.Spec{Name: "hot", When: "temp > 10", For: 30 * time.Minute},
		rules.Spec{Name: "never", Component: "door", When: "temp > 100"},
	)
	rep := mustBacktest(t, set, rules.SliceSource(hotFleet()), rules.BacktestOptions{From: t0, To: t0.Add(48 * time.Hour)})

	if rep.Samples != 3*48*12 || rep.Devices != 3 {
		t.Errorf("samples %d devices %d, want %d and 3", rep.Samples, rep.Devices, 3*48*12)
	}
	if !rep.From.Equal(t0) || !rep.To.Equal(t0.Add(48*time.Hour)) || rep.Days() != 2 {
		t.Errorf("period %v..%v (%v days), want two days from t0", rep.From, rep.To, rep.Days())
	}
	if len(rep.Rules) != 2 || rep.Rules[0].Rule != "hot" || rep.Rules[1].Rule != "never" {
		t.Fatalf("rules %+v, want hot and never in load order", rep.Rules)
	}
	hot := rep.Rules[0]
	// Tickets and texts come only from a replay through the notifier
	// (BacktestOptions.Outreach).
	if hot.Fires != 3 || hot.Devices != 2 || hot.Tickets != 0 || hot.TicketsPerDay != 0 || rep.Outreach != nil {
		t.Errorf("hot: fires %d devices %d tickets %d (%v/day), want 3, 2, 0", hot.Fires, hot.Devices, hot.Tickets, hot.TicketsPerDay)
	}
	// f2 fires at 06:30, f1 at 12:30 on day one.
	wantFirst := []rules.FirstFire{
		{Device: "f2", At: t0.Add(6*time.Hour + 30*time.Minute)},
		{Device: "f1", At: t0.Add(12*time.Hour + 30*time.Minute)},
	}
	if !slices.Equal(hot.FirstFires, wantFirst) {
		t.Errorf("first fires %+v, want %+v", hot.FirstFires, wantFirst)
	}
	if n := rep.Rules[1]; n.Fires != 0 || n.Devices != 0 || n.TicketsPerDay != 0 || len(n.FirstFires) != 0 {
		t.Errorf("never: %+v, want nothing", n)
	}
	// Every transition, in order: three fires, each resolved 30m (clear_for
	// = for) after the condition ends.
	var got []string
	for _, a := range rep.Alerts {
		got = append(got, string(a.Device)+":"+string(a.State)+"@"+a.FiredAt.Sub(t0).String())
	}
	want := []string{"f2:firing@6h30m0s", "f2:resolved@6h30m0s", "f1:firing@12h30m0s", "f1:resolved@12h30m0s",
		"f2:firing@30h30m0s", "f2:resolved@30h30m0s"}
	if !slices.Equal(got, want) {
		t.Errorf("alerts\n got %v\nwant %v", got, want)
	}
	// Without failures there is nothing to score.
	if hot.Score != nil || rep.Components != nil || rep.Scored() {
		t.Errorf("scored without failures: %+v", hot)
	}
}

func TestBacktestCooldownLimitsTickets(t *testing.T) {
	set := mustCompile(t, rules.Spec{Name: "hot", When: "temp > 10", For: 30 * time.Minute, Cooldown: 7 * 24 * time.Hour})
	rep := mustBacktest(t, set, rules.SliceSource(hotFleet()), rules.BacktestOptions{})
	// f2's second day falls within its cooldown.
	if hot := rep.Rules[0]; hot.Fires != 2 || hot.Devices != 2 {
		t.Errorf("fires %d on %d devices, want 2 on 2", hot.Fires, hot.Devices)
	}
	// Open period: from the first sample to the last.
	if !rep.From.Equal(t0) || !rep.To.Equal(t0.Add(48*time.Hour-5*time.Minute)) {
		t.Errorf("period %v..%v, want the first and last sample", rep.From, rep.To)
	}
}

func TestBacktestLeadTimes(t *testing.T) {
	h := time.Hour
	set := mustCompile(t,
		rules.Spec{Name: "hot", When: "temp > 10", For: 30 * time.Minute},
		rules.Spec{Name: "door_open", Component: "door", When: "temp > 10"},
	)
	failures := []rules.Failure{
		{Device: "f1", Time: t0.Add(20 * h), Component: "compressor"},                 // caught at 12:30: 7h30m lead
		{Device: "f3", Time: t0.Add(30 * h), Component: "compressor"},                 // never fired: missed
		{Device: "f2", Time: t0.Add(6*h + 10*time.Minute), Component: "door"},         // door_open fired at 06:00: 10m lead
		{Device: "f2", Time: t0.Add(31 * h), Component: "door"},                       // fired again at 30:00, after the previous failure: 1h lead
		{Device: "f1", Time: t0.Add(-time.Hour), Component: "compressor"},             // before From: ignored
		{Device: "f2", Time: t0.Add(12*time.Hour + 10*time.Minute), Component: "fan"}, // no rule watches fans
	}
	rep := mustBacktest(t, set, rules.SliceSource(hotFleet()), rules.BacktestOptions{From: t0, To: t0.Add(48 * h), Failures: failures})
	hot, door := *rep.Rules[0].Score, *rep.Rules[1].Score

	if hot.Failures != 2 || hot.Detected != 1 || !slices.Equal(hot.Leads, []time.Duration{7*h + 30*time.Minute}) || hot.LeadMedian != 7*h+30*time.Minute {
		t.Errorf("hot: %d of %d detected, leads %v median %v, want 1 of 2, [7h30m], 7h30m", hot.Detected, hot.Failures, hot.Leads, hot.LeadMedian)
	}
	// f2 fired twice and has no compressor failure: two of three alerts
	// are false.
	if hot.Alerts != 3 || hot.FalseAlerts != 2 || *hot.Precision != 1.0/3 {
		t.Errorf("hot: %d alerts, %d false, precision %v; want 3, 2, 1/3", hot.Alerts, hot.FalseAlerts, *hot.Precision)
	}
	wantOutcomes := []rules.FailureOutcome{
		{Failure: failures[0], Detected: true, Rule: "hot", FiredAt: t0.Add(12*h + 30*time.Minute), Lead: 7*h + 30*time.Minute},
		{Failure: failures[1]},
	}
	if !slices.Equal(hot.Outcomes, wantOutcomes) {
		t.Errorf("hot outcomes\n got %+v\nwant %+v", hot.Outcomes, wantOutcomes)
	}

	// door_open fires at once: on f2 at 06:00 on both days, and on f1 at
	// 12:00, which has no door failure.
	if door.Detected != 2 || door.Failures != 2 || !slices.Equal(door.Leads, []time.Duration{10 * time.Minute, h}) {
		t.Errorf("door_open: %d of %d detected, leads %v, want 2 of 2, [10m 1h]", door.Detected, door.Failures, door.Leads)
	}
	if door.LeadMedian != 35*time.Minute {
		t.Errorf("door_open: median lead %v, want 35m (mean of the middle two)", door.LeadMedian)
	}
	if door.FalseAlerts != 1 {
		t.Errorf("door_open: false alerts %d, want 1 (f1)", door.FalseAlerts)
	}
	// Per component: the fans no rule watches are listed, missed.
	var comps []string
	for _, c := range rep.Components {
		comps = append(comps, fmt.Sprintf("%s:%d/%d", c.Component, c.Detected, c.Failures))
	}
	if want := []string{"compressor:1/2", "door:2/2", "fan:0/1"}; !slices.Equal(comps, want) {
		t.Errorf("components %v, want %v", comps, want)
	}
}

func TestBacktestTicksForSilentDevices(t *testing.T) {
	h := time.Hour
	set := mustCompile(t, rules.Spec{Name: "silent", Component: "connectivity", When: `since_seen() > duration("2h")`})
	// f1 stops at 10:00, is back at 20:00 and stops for good at 34:00; f2
	// stops for good at 30:00.
	samples := fleetSamples(t0, 36*h, []string{"f1", "f2"}, func(dev string, at time.Duration) (float64, bool) {
		if dev == "f1" && (at >= 10*h && at < 20*h || at >= 34*h) || dev == "f2" && at >= 30*h {
			return 0, false
		}
		return 4, true
	})

	describeAll := func(alerts []proactive.Alert, at func(proactive.Alert) time.Duration) []string {
		var out []string
		for _, a := range alerts {
			out = append(out, string(a.Device)+":"+string(a.State)+"@"+at(a).String())
		}
		return out
	}
	fired := func(a proactive.Alert) time.Duration { return a.FiredAt.Sub(t0) }

	t.Run("ticks during and after the samples", func(t *testing.T) {
		rep := mustBacktest(t, set, rules.SliceSource(samples), rules.BacktestOptions{From: t0, To: t0.Add(48 * h)})
		// f1's last sample before its first silence is at 09:55: silent for
		// more than 2h at the 11:56 tick; it resolves when f1 speaks at
		// 20:00. f2 falls silent at 29:55 while f1 keeps sending; f1 falls
		// silent at 33:55, the last sample, and is caught by the ticks
		// after the samples, up to To.
		got := describeAll(rep.Alerts, fired)
		want := []string{"f1:firing@11h56m0s", "f1:resolved@11h56m0s", "f2:firing@31h56m0s", "f1:firing@35h56m0s"}
		if !slices.Equal(got, want) {
			t.Errorf("alerts %v, want %v", got, want)
		}
		if r := rep.Rules[0]; r.Fires != 3 || r.Devices != 2 {
			t.Errorf("fires %d on %d devices, want 3 on 2", r.Fires, r.Devices)
		}
	})
	t.Run("coarser ticks", func(t *testing.T) {
		rep := mustBacktest(t, set, rules.SliceSource(samples), rules.BacktestOptions{From: t0, To: t0.Add(48 * h), Tick: h})
		got := describeAll(rep.Alerts, fired)
		want := []string{"f1:firing@12h0m0s", "f1:resolved@12h0m0s", "f2:firing@32h0m0s", "f1:firing@36h0m0s"}
		if !slices.Equal(got, want) {
			t.Errorf("alerts %v, want %v", got, want)
		}
	})
	t.Run("open period ends at the last sample", func(t *testing.T) {
		rep := mustBacktest(t, set, rules.SliceSource(samples), rules.BacktestOptions{})
		got := describeAll(rep.Alerts, fired)
		want := []string{"f1:firing@11h56m0s", "f1:resolved@11h56m0s", "f2:firing@31h56m0s"}
		if !slices.Equal(got, want) {
			t.Errorf("alerts %v, want %v", got, want)
		}
	})
}

func TestBacktestWarmUpBeforeFrom(t *testing.T) {
	h := time.Hour
	set := mustCompile(t, rules.Spec{Name: "hot", When: "temp > 10", For: 30 * time.Minute})
	// From 13:00: f1 fired at 12:30 (not reported) and resolves in the
	// period; f2 fires at 30:30, inside it.
	rep := mustBacktest(t, set, rules.SliceSource(hotFleet()), rules.BacktestOptions{From: t0.Add(13 * h), To: t0.Add(40 * h)})
	var got []string
	for _, a := range rep.Alerts {
		got = append(got, string(a.Device)+":"+string(a.State))
	}
	if want := []string{"f1:resolved", "f2:firing", "f2:resolved"}; !slices.Equal(got, want) {
		t.Errorf("alerts %v, want %v", got, want)
	}
	if r := rep.Rules[0]; r.Fires != 1 || r.Devices != 1 {
		t.Errorf("fires %d on %d devices, want 1 on 1", r.Fires, r.Devices)
	}
	// Samples at or after To are not replayed.
	if want := int64(3 * 40 * 12); rep.Samples != want {
		t.Errorf("samples %d, want %d", rep.Samples, want)
	}
}

func TestBacktestProgressAndErrors(t *testing.T) {
	set := mustCompile(t, rules.Spec{Name: "hot", When: "temp > 10"})
	samples := hotFleet()

	var calls []int64
	var clock time.Time
	mustBacktest(t, set, rules.SliceSource(samples), rules.BacktestOptions{Progress: func(done int64, at time.Time) {
		calls = append(calls, done)
		clock = at
	}})
	if len(calls) == 0 || calls[len(calls)-1] != int64(len(samples)) || !clock.Equal(samples[len(samples)-1].Time) {
		t.Errorf("progress calls %v ending at %v, want the last with %d samples at the last sample's time", calls, clock, len(samples))
	}
	if !sort.SliceIsSorted(calls, func(i, j int) bool { return calls[i] < calls[j] }) {
		t.Errorf("progress went back: %v", calls)
	}

	broken := errors.New("connection reset")
	src := func(ctx context.Context, fn func(proactive.Sample) error) error {
		if err := fn(samples[0]); err != nil {
			return err
		}
		return broken
	}
	if _, err := rules.Backtest(t.Context(), set, src, rules.BacktestOptions{}); !errors.Is(err, broken) {
		t.Errorf("source error: got %v, want it wrapped", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := rules.Backtest(ctx, set, rules.SliceSource(samples), rules.BacktestOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}

func TestBacktestMatchesLiveEvaluation(t *testing.T) {
	set := mustCompile(t,
		rules.Spec{Name: "wear", When: `avg(temp, "1h") > 1.2 * avg(temp, "1d")`, For: 20 * time.Minute, Predict: `forecast(temp, 20)`},
		rules.Spec{Name: "hot", Component: "door", When: "temp > 10", For: 30 * time.Minute, Cooldown: 6 * time.Hour},
	)
	samples := hotFleet()
	rep := mustBacktest(t, set, rules.SliceSource(samples), rules.BacktestOptions{})
	live := rules.NewEvaluator(set, nil, 5*time.Minute)
	var want []proactive.Alert
	for _, s := range samples {
		want = append(want, live.Observe(s)...)
	}
	if len(want) == 0 || len(rep.Alerts) != len(want) {
		t.Fatalf("%d alerts in the backtest, %d live", len(rep.Alerts), len(want))
	}
	for i := range want {
		g, w := rep.Alerts[i], want[i]
		if g.Rule != w.Rule || g.Device != w.Device || g.State != w.State || !g.FiredAt.Equal(w.FiredAt) || g.TimeToFailure != w.TimeToFailure || g.Summary != w.Summary {
			t.Errorf("alert %d: backtest %+v, live %+v", i, g, w)
		}
	}
}

func TestMedianDuration(t *testing.T) {
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3}, 3},
		{[]time.Duration{5, 1, 3}, 3},
		{[]time.Duration{4, 1, 3, 2}, 2},
		{[]time.Duration{10, 1}, 5},
	} {
		in := slices.Clone(c.in)
		if got := rules.MedianDuration(in); got != c.want {
			t.Errorf("MedianDuration(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("MedianDuration modified its input: %v", in)
		}
	}
}

func TestBacktestDeviceLookup(t *testing.T) {
	set := mustCompile(t, rules.Spec{Name: "old_and_hot", When: "temp > 10 && device.age_days > 365"})
	lookup := func(id proactive.DeviceID) (rules.DeviceInfo, bool) {
		if id == "f2" {
			return rules.DeviceInfo{Model: "fridge-a1", AgeDays: 400}, true
		}
		return rules.DeviceInfo{}, false
	}
	rep := mustBacktest(t, set, rules.SliceSource(hotFleet()), rules.BacktestOptions{Device: lookup})
	if r := rep.Rules[0]; r.Fires != 2 || r.Devices != 1 || r.FirstFires[0].Device != "f2" {
		t.Errorf("%+v, want f2's two hot spells only: f1 is hot but of unknown age", r)
	}
}
