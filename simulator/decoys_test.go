package simulator_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
	"github.com/proactivehq/proactive/simulator"
)

// fleetHistory is a generated run in memory, as the platform would have
// stored it: samples and events in time order, and the maintenance records.
type fleetHistory struct {
	samples []proactive.Sample
	events  []proactive.Event
	maint   []proactive.Maintenance
	truth   []simulator.Truth
	end     time.Time
}

func generate(tb testing.TB, sc *simulator.Scenario, start time.Time) fleetHistory {
	tb.Helper()
	g := simulator.NewGenerator(sc, start)
	model := map[string]string{}
	for _, d := range g.Devices() {
		model[d.ID] = d.Model
	}
	h := fleetHistory{maint: g.Maintenance(), truth: g.Truth(), end: g.End()}
	for m, ok := g.Next(); ok; m, ok = g.Next() {
		for _, r := range m.Readings {
			s := proactive.Sample{Device: proactive.DeviceID(m.Device), Model: model[m.Device], Time: r.Time,
				Metrics: make(map[string]float64, len(r.Metrics))}
			for _, v := range r.Metrics {
				s.Metrics[v.Name] = v.V
			}
			h.samples = append(h.samples, s)
		}
		for _, e := range m.Events {
			h.events = append(h.events, proactive.Event{Device: proactive.DeviceID(m.Device), Model: model[m.Device],
				Time: e.Time, Code: e.Code, Component: e.Component, Severity: e.Severity, Text: e.Text})
		}
	}
	// A late burst carries older readings: the store holds them by time.
	slices.SortStableFunc(h.samples, func(a, b proactive.Sample) int { return a.Time.Compare(b.Time) })
	return h
}

// The figures of issue 14 on the decoys scenario: the telemetry-only example
// rule cannot tell a drift that leads to a failure from one that leads
// nowhere; the one gated on the pump's bearing code can. Both run through
// rules.Backtest with the scenario's events and maintenance, and are scored
// with Score against its ground truth.
func TestDecoysFigures(t *testing.T) {
	sc, err := simulator.Builtin("decoys")
	if err != nil {
		t.Fatal(err)
	}
	h := generate(t, sc, time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC))
	faults, decoys := 0, 0
	for _, tr := range h.truth {
		if tr.IsDecoy() {
			decoys++
		} else {
			faults++
		}
	}
	t.Logf("decoys scenario: %d samples, %d events, %d maintenance records, %d faults, %d decoys",
		len(h.samples), len(h.events), len(h.maint), faults, decoys)
	if faults < 20 || decoys < 2*faults-5 || len(h.maint) == 0 {
		t.Fatalf("%d faults, %d decoys, %d repairs: want about two decoys a fault and some repairs", faults, decoys, len(h.maint))
	}

	type figures struct {
		detected, faults, alerts, falseAlerts int
		early                                 int // detected at least 24h before the breakdown
		medianLead                            time.Duration
		falseShare                            float64
	}
	run := func(file string) figures {
		t.Helper()
		set, errs := rules.CompileFiles([]string{"../rules/examples/" + file})
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		var infos []simulator.RuleInfo
		for _, r := range set.Rules() {
			infos = append(infos, simulator.RuleInfo{Name: r.Name, Component: r.Component})
		}
		rep, err := rules.Backtest(t.Context(), set, rules.SliceSource(h.samples), rules.BacktestOptions{
			To: h.end, Events: rules.SliceEvents(h.events), Maintenance: h.maint})
		if err != nil {
			t.Fatal(err)
		}
		sr := simulator.Score(h.truth, rep.Alerts, simulator.ScoreOptions{End: h.end, Rules: infos})
		rs := sr.Rules[0]
		f := figures{detected: rs.Detected, faults: rs.Failures, alerts: rs.Alerts, falseAlerts: rs.FalseAlerts, medianLead: rs.LeadMedian}
		for _, l := range rs.Leads {
			if l >= 24*time.Hour {
				f.early++
			}
		}
		if f.alerts > 0 {
			f.falseShare = float64(f.falseAlerts) / float64(f.alerts)
		}
		t.Logf("%-24s detected %d/%d (%d at least 24h ahead), median lead %s, %d alerts, %d false (%d on decoys): %.1f%% false",
			rs.Rule, f.detected, f.faults, f.early, fmtLead(f.medianLead), f.alerts, f.falseAlerts, sr.FalseOnDecoys, 100*f.falseShare)
		return f
	}
	telemetry := run("bearing_wear.yaml")
	gated := run("bearing_wear_confirmed.yaml")
	run("bearing_wear_fleet.yaml") // for the record: it sees the drifts as the first does

	if float64(gated.early) < 0.9*float64(gated.faults) {
		t.Errorf("event-gated rule: %d of %d faults detected at least 24h ahead, want at least 90%%", gated.early, gated.faults)
	}
	if gated.falseShare > 0.05 {
		t.Errorf("event-gated rule: %.1f%% of its alerts false, want at most 5%%", 100*gated.falseShare)
	}
	if telemetry.falseShare <= 0.30 {
		t.Errorf("telemetry-only rule: %.1f%% of its alerts false, want over 30%%: the decoys should fool it", 100*telemetry.falseShare)
	}
}

func fmtLead(d time.Duration) string {
	return fmt.Sprintf("%.1fh", d.Hours())
}
