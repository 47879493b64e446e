package simulator_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/proactivehq/proactive/simulator"
)

const withEvents = `seed: 9
backfill: 6h
duration: 6h
models:
  - name: pump-p1
    count: 2
    id: pump-%03d
    interval: 10m
    metrics:
      vibration: {baseline: 2, noise: 0.05, decimals: 2}
    events:
      - {code: W301, severity: info, text: "controller \"main\" restarted", rate: 8}
faults:
  - name: bearing_wear
    component: bearing
    devices: [pump-001]
    onset: 1h
    shape: linear
    effects: {vibration: {add: 3}}
    breakdown: {after: 8h}
    events:
      - {code: E103, severity: error, lead: 7h, every: 1h}
    repair: {after: 1h, kind: repaired}
`

// Events go out on devices/{id}/events with QoS 1, in the history (batched)
// and in the live part, each as the generator made it; the maintenance
// records go to Options.Maintenance in the import format.
func TestSimulatorRunEvents(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "", "")
	var maint bytes.Buffer
	sim, err := simulator.New(simulator.Options{
		Scenario: mustScenario(t, withEvents), Start: start, Broker: b.url, Speed: 36000, Maintenance: &maint,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	var want []string
	live := 0
	g := simulator.NewGenerator(mustScenario(t, withEvents), start)
	for m, ok := g.Next(); ok; m, ok = g.Next() {
		for _, e := range m.Events {
			one := simulator.Message{Device: m.Device, Events: []simulator.DeviceEvent{e}}
			want = append(want, m.Device+" "+string(one.Payload()))
			if !m.At.Before(start) {
				live++
			}
		}
	}
	var got []string
	for _, m := range b.published() {
		if !strings.HasSuffix(m.topic, "/events") {
			continue
		}
		if m.qos != 1 {
			t.Errorf("event with QoS %d", m.qos)
		}
		dev := strings.Split(m.topic, "/")[1]
		var entries []json.RawMessage
		if strings.HasPrefix(m.payload, "[") {
			if err := json.Unmarshal([]byte(m.payload), &entries); err != nil {
				t.Fatal(err)
			}
		} else {
			entries = []json.RawMessage{json.RawMessage(m.payload)}
		}
		for _, e := range entries {
			got = append(got, dev+" "+string(e))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if live == 0 || live == len(want) {
		t.Errorf("%d of %d events in the live part: want some in the history and some live", live, len(want))
	}
	if !slices.Equal(got, want) {
		t.Errorf("published events:\n%s\ngenerated:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(strings.Join(got, "\n"), `"text":"controller \"main\" restarted"`) {
		t.Errorf("texts not escaped as JSON:\n%s", strings.Join(got, "\n"))
	}
	// Onset 1h into the history (5h before the live start), breakdown 8h
	// later, repaired 1h after it: 4h into the live part.
	wantMaint := simulator.MaintenanceCSVHeader + "\n" +
		"pump-001,2026-03-02T13:00:00Z,bearing,repaired,simulated: ends fault bearing_wear\n"
	if maint.String() != wantMaint {
		t.Errorf("maintenance:\n%s\nwant:\n%s", maint.String(), wantMaint)
	}
	if st := sim.Stats(); st.Failed != 0 || st.Sent != st.Acked {
		t.Errorf("stats %+v", st)
	}
}
