package simulator_test

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/simulator"
)

// eventPayload is an event as the platform's contract has it.
type eventPayload struct {
	TS        int64  `json:"ts"`
	Code      string `json:"code"`
	Component string `json:"component"`
	Severity  string `json:"severity"`
	Text      string `json:"text"`
}

// eventsOf returns the events of msgs by device, decoded from their
// payloads, and checks their topics.
func eventsOf(t *testing.T, msgs []simulator.Message) map[string][]eventPayload {
	t.Helper()
	out := map[string][]eventPayload{}
	for _, m := range msgs {
		if len(m.Events) == 0 {
			continue
		}
		if topic := m.Topic("devices"); topic != "devices/"+m.Device+"/events" {
			t.Errorf("event on topic %s", topic)
		}
		dec := json.NewDecoder(bytes.NewReader(m.Payload()))
		dec.DisallowUnknownFields()
		var e eventPayload
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("payload %s: %v", m.Payload(), err)
		}
		out[m.Device] = append(out[m.Device], e)
	}
	return out
}

// A fault's code precedes its breakdown by the lead (± jitter), repeats
// every 5h until the breakdown, and is the contract's JSON; a decoy with
// probability 0 reports no code; noise codes come on every device at
// about their rate.
func TestSimulatorEvents(t *testing.T) {
	sc := mustScenario(t, signalsScenario)
	_, msgs := collect(sc)
	events := eventsOf(t, msgs)
	breakdown := start.Add(2 * 24 * time.Hour) // backfill 1d, onset 1d, after 2d

	var e103 []time.Time
	noise := 0
	for dev, es := range events {
		for _, e := range es {
			switch e.Code {
			case "E103":
				if dev != "pump-001" {
					t.Errorf("E103 on %s, which has no fault", dev)
				}
				if e.Component != "bearing" || e.Severity != "error" || e.Text != "bearing overtemperature" {
					t.Errorf("E103 event %+v", e)
				}
				e103 = append(e103, time.UnixMilli(e.TS))
			case "W301":
				if e.Component != "" || e.Severity != "info" || e.Text != "controller restarted" {
					t.Errorf("noise event %+v", e)
				}
				noise++
			default:
				t.Errorf("event %+v", e)
			}
		}
	}
	if len(e103) == 0 {
		t.Fatal("no E103 before the breakdown")
	}
	first := breakdown.Sub(e103[0])
	if first < 18*time.Hour || first > 22*time.Hour {
		t.Errorf("first E103 %s before the breakdown, want 20h ± 2h", first)
	}
	for i := 1; i < len(e103); i++ {
		if d := e103[i].Sub(e103[i-1]); d != 5*time.Hour {
			t.Errorf("E103 %d came %s after the one before, want 5h", i, d)
		}
	}
	if last := e103[len(e103)-1]; !last.Before(breakdown) || breakdown.Sub(last) > 5*time.Hour {
		t.Errorf("last E103 at %s, breakdown at %s", last, breakdown)
	}
	// 4 devices, 5 days, 2 a day: 40 on average.
	if noise < 20 || noise > 60 {
		t.Errorf("%d noise events, want about 40", noise)
	}
	for _, dev := range []string{"pump-001", "pump-002", "pump-003", "pump-004"} {
		if len(events[dev]) == 0 {
			t.Errorf("%s reported no event", dev)
		}
	}
	// Messages stay in time order with the events among them.
	if !slices.IsSortedFunc(msgs, func(a, b simulator.Message) int { return a.At.Compare(b.At) }) {
		t.Error("messages out of time order")
	}
}

// A decoy drifts as the fault does, then fades and is gone: no breakdown,
// a decoy in the truth. A repair ends the fault's effects, and its
// maintenance record is in the truth and in Maintenance.
func TestSimulatorDecoyAndRepair(t *testing.T) {
	sc := mustScenario(t, signalsScenario)
	g := simulator.NewGenerator(sc, start)
	got, _ := collect(sc)
	peak := start.Add(2 * 24 * time.Hour)
	repaired := peak.Add(12 * time.Hour)
	fault, decoy := got["pump-001"]["vibration"], got["pump-002"]["vibration"]
	for _, tc := range []struct {
		what string
		s    *series
		from time.Time
		d    time.Duration
		want float64
	}{
		{"fault and decoy before onset", fault, start.Add(-6 * time.Hour), 6 * time.Hour, 2},
		{"decoy before onset", decoy, start.Add(-6 * time.Hour), 6 * time.Hour, 2},
		{"fault half way", fault, start.Add(23 * time.Hour), 2 * time.Hour, 3.5},
		{"decoy half way, as the fault", decoy, start.Add(23 * time.Hour), 2 * time.Hour, 3.5},
		{"fault held after breakdown", fault, peak.Add(2 * time.Hour), 8 * time.Hour, 5},
		{"decoy fading", decoy, peak.Add(2 * time.Hour), 2 * time.Hour, 3.5},
		{"decoy gone", decoy, peak.Add(7 * time.Hour), 12 * time.Hour, 2},
		{"fault repaired", fault, repaired, 12 * time.Hour, 2},
	} {
		if m := tc.s.mean(tc.from, tc.from.Add(tc.d)); math.Abs(m-tc.want) > 0.2 {
			t.Errorf("%s: mean %.2f, want %.1f", tc.what, m, tc.want)
		}
	}

	var b bytes.Buffer
	for _, tr := range g.Truth() {
		b.Write(tr.AppendJSON(nil))
		b.WriteByte('\n')
	}
	want := `{"device":"pump-001","model":"pump-p1","component":"bearing","fault":"bearing_wear","kind":"fault","shape":"linear","onset":"2026-03-02T09:00:00Z","breakdown":"2026-03-04T09:00:00Z","then":"hold","repaired":"2026-03-04T21:00:00Z"}
{"device":"pump-002","model":"pump-p1","component":"bearing","fault":"bearing_drift","kind":"decoy","shape":"linear","onset":"2026-03-02T09:00:00Z"}
`
	if b.String() != want {
		t.Errorf("truth:\n%s\nwant:\n%s", b.String(), want)
	}
	wantMaint := []proactive.Maintenance{{Device: "pump-001", Time: repaired, Component: "bearing", Kind: proactive.MaintenanceReplaced,
		Notes: "simulated: ends fault bearing_wear"}}
	if m := g.Maintenance(); !slices.Equal(m, wantMaint) {
		t.Errorf("maintenance %+v, want %+v", m, wantMaint)
	}
	for _, m := range g.Maintenance() {
		if err := m.Validate(); err != nil {
			t.Error(err)
		}
	}
}

// Truth with kinds and repairs goes through JSON and CSV and back; the CSV
// leaves a decoy's failure time empty; truth files of before read as
// faults.
func TestSimulatorTruthKinds(t *testing.T) {
	g := simulator.NewGenerator(mustScenario(t, signalsScenario), start)
	var js, cs bytes.Buffer
	cs.WriteString(simulator.TruthCSVHeader + "\n")
	for _, tr := range g.Truth() {
		js.Write(append(tr.AppendJSON(nil), '\n'))
		cs.Write(append(tr.AppendCSV(nil), '\n'))
	}
	wantCSV := simulator.TruthCSVHeader + "\n" +
		"pump-001,pump-p1,bearing,bearing_wear,fault,linear,2026-03-02T09:00:00Z,2026-03-04T09:00:00Z,hold,2026-03-04T21:00:00Z,2026-03-04T09:00:00Z\n" +
		"pump-002,pump-p1,bearing,bearing_drift,decoy,linear,2026-03-02T09:00:00Z,,,,\n"
	if cs.String() != wantCSV {
		t.Errorf("CSV:\n%s\nwant:\n%s", cs.String(), wantCSV)
	}
	for name, in := range map[string]*bytes.Buffer{"json": &js, "csv": &cs} {
		back, err := simulator.ReadTruth(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(back, g.Truth()) {
			t.Errorf("%s: read back %+v, want %+v", name, back, g.Truth())
		}
	}
	old := "device,model,component,fault,shape,onset,breakdown,then,time\n" +
		"pump-001,pump-p1,bearing,bearing_wear,linear,2026-03-02T09:00:00Z,2026-03-04T09:00:00Z,hold,2026-03-04T09:00:00Z\n"
	back, err := simulator.ReadTruth(strings.NewReader(old))
	if err != nil || len(back) != 1 || back[0].Kind != simulator.KindFault || back[0].IsDecoy() || back[0].Then != simulator.Hold {
		t.Errorf("old CSV: %+v, %v", back, err)
	}
	back, err = simulator.ReadTruth(strings.NewReader(`{"device":"d","model":"m","component":"c","fault":"f","shape":"step","onset":"2026-03-02T09:00:00Z","then":"hold"}`))
	if err != nil || len(back) != 1 || back[0].Kind != simulator.KindFault {
		t.Errorf("old JSON: %+v, %v", back, err)
	}
	if _, err := simulator.ReadTruth(strings.NewReader(`{"device":"d","model":"m","component":"c","fault":"f","kind":"ghost","shape":"step","onset":"2026-03-02T09:00:00Z"}`)); err == nil || !strings.Contains(err.Error(), `kind "ghost"`) {
		t.Errorf("bad kind: %v", err)
	}
}

// Score counts no decoy as a fault: an alert on one is false.
func TestScoreDecoys(t *testing.T) {
	truth := []simulator.Truth{fault("f1", "bearing", 0, 48), fault("f2", "bearing", 0, 48)}
	truth[1].Kind, truth[1].Breakdown = simulator.KindDecoy, time.Time{}
	rep := simulator.Score(truth, []proactive.Alert{alert("r", "f1", "bearing", 20), alert("r", "f2", "bearing", 20)},
		simulator.ScoreOptions{Rules: []simulator.RuleInfo{{Name: "r", Component: "bearing"}}})
	rs := rep.Rules[0]
	if len(rep.Faults) != 1 || rep.Detected != 1 || rep.Decoys != 1 || rep.FalseOnDecoys != 1 || len(rep.FalseAlerts) != 1 ||
		!rep.FalseAlerts[0].Decoy || !rep.FalseAlerts[0].HealthyDevice || rs.Failures != 1 || rs.FalseAlerts != 1 || rs.Alerts != 2 {
		t.Errorf("report %+v, rule %+v", rep, rs)
	}
	var b bytes.Buffer
	if err := rep.WriteTable(&b, "truth.csv", "alerts.json"); err != nil || !strings.Contains(b.String(), "Decoys (drifts with no failure behind them): 1, with 1 false alert(s) on them.") {
		t.Errorf("table:\n%s", b.String())
	}
}

// A device's first sample may come before its schedule by its jitter:
// its signals stay numbers.
func TestSimulatorJitterNoNaN(t *testing.T) {
	got, _ := collect(mustScenario(t, minimal))
	for dev, ms := range got {
		for name, s := range ms {
			for i, v := range s.v {
				if math.IsNaN(v) {
					t.Fatalf("%s %s at %s is NaN", dev, name, s.t[i])
				}
			}
		}
	}
}

// A fault that avoids another picks none of its devices.
func TestSimulatorAvoid(t *testing.T) {
	sc := mustScenario(t, `seed: 2
duration: 1h
models:
  - {name: pump-p1, count: 10, id: pump-%03d, metrics: {vibration: {baseline: 2}}}
faults:
  - {name: wear, component: bearing, count: 5, onset: 0s, shape: step, effects: {vibration: {add: 1}}}
  - {name: drift, component: bearing, avoid: [wear], count: 5, onset: 0s, shape: step, decoy: true, breakdown: {after: 1h}, effects: {vibration: {add: 1}}}
`)
	g := simulator.NewGenerator(sc, start)
	seen := map[string]string{}
	for _, tr := range g.Truth() {
		if other, ok := seen[tr.Device]; ok {
			t.Errorf("%s has %s and %s", tr.Device, other, tr.Fault)
		}
		seen[tr.Device] = tr.Fault
	}
	if len(seen) != 10 {
		t.Errorf("%d devices picked, want all 10: %v", len(seen), seen)
	}
}
