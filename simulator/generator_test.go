package simulator_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/simulator"
)

var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func mustScenario(tb testing.TB, yaml string) *simulator.Scenario {
	tb.Helper()
	sc, err := simulator.ParseScenario("test.yaml", []byte(yaml))
	if err != nil {
		tb.Fatal(err)
	}
	return sc
}

// stream returns every message of a run as "topic payload" lines.
func stream(sc *simulator.Scenario, st time.Time) []string {
	g := simulator.NewGenerator(sc, st)
	var out []string
	for {
		m, ok := g.Next()
		if !ok {
			return out
		}
		out = append(out, m.At.Format(time.RFC3339Nano)+" "+m.Topic("devices")+" "+string(m.Payload()))
	}
}

// The same seed gives the same messages, payload for payload; another seed
// gives others.
func TestSimulatorDeterminism(t *testing.T) {
	demo, err := simulator.Builtin("demo")
	if err != nil {
		t.Fatal(err)
	}
	demo.Backfill, demo.Duration = 2*24*time.Hour, 12*time.Hour
	a, b := stream(demo, start), stream(demo, start)
	if len(a) < 10000 {
		t.Fatalf("only %d messages", len(a))
	}
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("message %d differs:\n%s\n%s", i, a[i], b[i])
			}
		}
	}
	demo.Seed++
	c := stream(demo, start)
	same := 0
	for i := range min(len(a), len(c)) {
		if a[i] == c[i] {
			same++
		}
	}
	if same > len(a)/100 {
		t.Errorf("seed %d and %d share %d of %d messages", demo.Seed-1, demo.Seed, same, len(a))
	}
	// Every payload is what the platform takes: JSON with ts and metrics.
	for _, line := range a[:100] {
		payload := line[strings.LastIndexByte(line, ' ')+1:]
		if strings.Contains(line, "/status ") {
			continue
		}
		var v struct {
			TS      int64              `json:"ts"`
			Metrics map[string]float64 `json:"metrics"`
		}
		dec := json.NewDecoder(strings.NewReader(payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil || v.TS == 0 || len(v.Metrics) != 4 {
			t.Errorf("payload %s: %+v %v", payload, v, err)
		}
	}
}

// series collects one metric of one device, by the reading's time.
type series struct {
	t []time.Time
	v []float64
}

func (s series) at(t time.Time) float64 {
	for i := range s.t {
		if !s.t[i].Before(t) {
			return s.v[i]
		}
	}
	return math.NaN()
}

func (s series) mean(from, to time.Time) float64 {
	sum, n := 0.0, 0
	for i := range s.t {
		if !s.t[i].Before(from) && s.t[i].Before(to) {
			sum += s.v[i]
			n++
		}
	}
	return sum / float64(n)
}

func collect(sc *simulator.Scenario) (map[string]map[string]*series, []simulator.Message) {
	g := simulator.NewGenerator(sc, start)
	out := map[string]map[string]*series{}
	var msgs []simulator.Message
	for {
		m, ok := g.Next()
		if !ok {
			return out, msgs
		}
		msgs = append(msgs, m)
		for _, r := range m.Readings {
			if out[m.Device] == nil {
				out[m.Device] = map[string]*series{}
			}
			for _, v := range r.Metrics {
				s := out[m.Device][v.Name]
				if s == nil {
					s = &series{}
					out[m.Device][v.Name] = s
				}
				s.t = append(s.t, r.Time)
				s.v = append(s.v, v.V)
			}
		}
	}
}

// shapes is a fleet of noiseless devices, one per fault shape, and a
// healthy one. The fault starts at 1d and breaks down at 3d.
const shapes = `seed: 1
backfill: 1d
duration: 3d
models:
  - name: pump
    count: 6
    id: pump-%d
    interval: 1h
    metrics:
      current: {baseline: 4, decimals: 6}
      flow: {baseline: 100, decimals: 6}
      temp: {baseline: 20, decimals: 6}
faults:
  - {name: lin, component: motor, devices: [pump-1], onset: 1d, shape: linear, effects: {current: {add: 2}}, breakdown: {after: 2d}}
  - {name: exp, component: motor, devices: [pump-2], onset: 1d, shape: exponential, steepness: 4, effects: {current: {add: 2}}, breakdown: {after: 2d}}
  - {name: step, component: motor, devices: [pump-3], onset: 1d, shape: step, effects: {flow: {multiply: 0.5}}, breakdown: {after: 2d, then: stop}}
  - {name: int, component: motor, devices: [pump-4], onset: 1d, shape: intermittent, duty: 0.25, effects: {temp: {add: 10}}}
  - {name: pin, component: motor, devices: [pump-5], onset: 1d, shape: linear, effects: {current: {add: 2}}, breakdown: {after: 1d, then: pin, pin: {current: 0, flow: 0}}}
`

// Each fault shape moves its metrics, and only those, the way it says.
func TestSimulatorFaultShapes(t *testing.T) {
	got, msgs := collect(mustScenario(t, shapes))
	onset := start // backfill 1d, onset 1d: the live start
	h := func(n int) time.Time { return onset.Add(time.Duration(n) * time.Hour) }
	// Sample times are phase-shifted per device: read at the first sample
	// at or after the hour asked.
	for _, tc := range []struct {
		name        string
		dev, metric string
		at          time.Time
		want        float64
		tol         float64
	}{
		{"healthy before onset", "pump-1", "current", h(-2), 4, 0},
		{"linear: a quarter of the way", "pump-1", "current", h(12), 4 + 2*0.25, 2.0 / 48},
		{"linear: half way", "pump-1", "current", h(24), 5, 2.0 / 48},
		{"linear: full at breakdown, and held", "pump-1", "current", h(49), 6, 0},
		{"linear leaves the other metrics", "pump-1", "flow", h(30), 100, 0},
		{"exponential: slow at first", "pump-2", "current", h(24), 4 + 2*math.Expm1(2)/math.Expm1(4), 0.05},
		{"exponential: fast at the end", "pump-2", "current", h(42), 4 + 2*math.Expm1(3.5)/math.Expm1(4), 0.1},
		{"step: full at once, multiplied", "pump-3", "flow", h(1), 50, 0},
		{"step: current untouched", "pump-3", "current", h(1), 4, 0},
		{"pin: pinned after breakdown", "pump-5", "current", h(25), 0, 0},
		{"pin: a pinned metric without effect", "pump-5", "flow", h(25), 0, 0},
		{"pin: unpinned metrics go on", "pump-5", "temp", h(25), 20, 0},
		{"healthy device untouched", "pump-6", "current", h(40), 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if v := got[tc.dev][tc.metric].at(tc.at); math.Abs(v-tc.want) > tc.tol+1e-9 {
				t.Errorf("%s %s at +%s = %v, want %v ± %v", tc.dev, tc.metric, tc.at.Sub(onset), v, tc.want, tc.tol)
			}
		})
	}
	// Linear and exponential rise monotonically from onset to breakdown.
	for _, dev := range []string{"pump-1", "pump-2"} {
		s := got[dev]["current"]
		for i := 1; i < len(s.v); i++ {
			if s.v[i] < s.v[i-1] {
				t.Errorf("%s current falls at %s: %v after %v", dev, s.t[i], s.v[i], s.v[i-1])
			}
		}
	}
	// Intermittent: full magnitude or nothing, in about a quarter of the
	// samples after onset.
	on, n := 0, 0
	s := got["pump-4"]["temp"]
	for i := range s.t {
		switch {
		case s.t[i].Before(onset):
			if s.v[i] != 20 {
				t.Errorf("intermittent before onset: %v", s.v[i])
			}
		case s.v[i] == 30:
			on++
			n++
		case s.v[i] == 20:
			n++
		default:
			t.Errorf("intermittent at %s: %v, want 20 or 30", s.t[i], s.v[i])
		}
	}
	if frac := float64(on) / float64(n); frac < 0.12 || frac > 0.4 {
		t.Errorf("intermittent shows in %d of %d samples, want about a quarter", on, n)
	}
	// Stop: nothing after breakdown but the offline status.
	s3 := got["pump-3"]["flow"]
	if last := s3.t[len(s3.t)-1]; !last.Before(h(48)) {
		t.Errorf("pump-3 published at %s, after its breakdown at %s", last, h(48))
	}
	var status []string
	for _, m := range msgs {
		if m.Status {
			status = append(status, fmt.Sprintf("%s online=%v at +%s", m.Device, m.Online, m.At.Sub(onset)))
		}
	}
	if strings.Join(status, ";") != "pump-3 online=false at +48h0m0s" {
		t.Errorf("statuses: %v", status)
	}
}

// The ground truth lists each fault with its device, model, component, onset
// and breakdown.
func TestSimulatorTruth(t *testing.T) {
	sc := mustScenario(t, shapes)
	g := simulator.NewGenerator(sc, start)
	var b bytes.Buffer
	for _, tr := range g.Truth() {
		b.Write(tr.AppendJSON(nil))
		b.WriteByte('\n')
	}
	want := `{"device":"pump-1","model":"pump","component":"motor","fault":"lin","kind":"fault","shape":"linear","onset":"2026-03-02T09:00:00Z","breakdown":"2026-03-04T09:00:00Z","then":"hold"}
{"device":"pump-2","model":"pump","component":"motor","fault":"exp","kind":"fault","shape":"exponential","onset":"2026-03-02T09:00:00Z","breakdown":"2026-03-04T09:00:00Z","then":"hold"}
{"device":"pump-3","model":"pump","component":"motor","fault":"step","kind":"fault","shape":"step","onset":"2026-03-02T09:00:00Z","breakdown":"2026-03-04T09:00:00Z","then":"stop"}
{"device":"pump-4","model":"pump","component":"motor","fault":"int","kind":"fault","shape":"intermittent","onset":"2026-03-02T09:00:00Z","then":"hold"}
{"device":"pump-5","model":"pump","component":"motor","fault":"pin","kind":"fault","shape":"linear","onset":"2026-03-02T09:00:00Z","breakdown":"2026-03-03T09:00:00Z","then":"pin"}
`
	if b.String() != want {
		t.Errorf("truth:\n%s\nwant:\n%s", b.String(), want)
	}
	back, err := simulator.ReadTruth(&b)
	if err != nil || len(back) != 5 || !back[4].Breakdown.Equal(start.Add(24*time.Hour)) || back[3].Device != "pump-4" {
		t.Errorf("ReadTruth: %+v, %v", back, err)
	}
	var c bytes.Buffer
	c.WriteString(simulator.TruthCSVHeader + "\n")
	for _, tr := range g.Truth() {
		c.Write(tr.AppendCSV(nil))
		c.WriteByte('\n')
	}
	if lines := strings.Split(c.String(), "\n"); lines[1] != "pump-1,pump,motor,lin,fault,linear,2026-03-02T09:00:00Z,2026-03-04T09:00:00Z,hold,,2026-03-04T09:00:00Z" ||
		lines[4] != "pump-4,pump,motor,int,fault,intermittent,2026-03-02T09:00:00Z,,hold,,2026-03-02T09:00:00Z" {
		t.Errorf("CSV truth:\n%s", c.String())
	}
	back, err = simulator.ReadTruth(&c)
	if err != nil || len(back) != 5 || !back[3].Breakdown.IsZero() {
		t.Errorf("ReadTruth CSV: %+v, %v", back, err)
	}
}

// Fault onsets at a rate: about rate × devices × days faults, at onsets
// spread over the run.
func TestSimulatorFaultRate(t *testing.T) {
	sc := mustScenario(t, `seed: 5
duration: 10d
models:
  - {name: m, count: 400, interval: 1h, metrics: {x: {baseline: 1}}}
faults:
  - {name: f, component: c, rate: 0.01, shape: step, effects: {x: {add: 1}}}
`)
	g := simulator.NewGenerator(sc, start)
	n := len(g.Truth()) // expected 400 × (1 − e^−0.1) ≈ 38
	if n < 20 || n > 60 {
		t.Errorf("%d faults in 4000 device-days at 0.01 a day", n)
	}
	for _, tr := range g.Truth() {
		if tr.Onset.Before(start) || !tr.Onset.Before(start.Add(10*24*time.Hour)) {
			t.Errorf("onset %s outside the run", tr.Onset)
		}
	}
}

// Quirks: clock skew shifts timestamps, late data comes in bursts, and an
// offline device says so and sends nothing meanwhile.
func TestSimulatorQuirks(t *testing.T) {
	sc := mustScenario(t, `seed: 8
duration: 4d
models:
  - {name: m, count: 3, id: d-%d, interval: 10m, metrics: {x: {baseline: 1}}}
quirks:
  - {devices: [d-1], clock_skew: 5m}
  - {devices: [d-2], late: {every: 12h, hold: 1h}}
  - {devices: [d-3], offline: {every: 12h, for: 2h}}
`)
	g := simulator.NewGenerator(sc, start)
	var skews []time.Duration
	bursts, offline, online := 0, 0, 0
	var offAt time.Time
	for {
		m, ok := g.Next()
		if !ok {
			break
		}
		switch m.Device {
		case "d-1":
			skews = append(skews, m.Readings[0].Time.Sub(m.At))
		case "d-2":
			if len(m.Readings) > 1 {
				bursts++
				if n := len(m.Readings); n < 5 || n > 7 {
					t.Errorf("a burst of %d readings, want the 6 of an hour", n)
				}
				for _, r := range m.Readings {
					if r.Time.After(m.At) || m.At.Sub(r.Time) > time.Hour {
						t.Errorf("burst at %s holds a reading of %s", m.At, r.Time)
					}
				}
			}
		case "d-3":
			switch {
			case m.Status && !m.Online:
				offline++
				offAt = m.At
			case m.Status:
				online++
				if d := m.At.Sub(offAt); d != 2*time.Hour {
					t.Errorf("offline for %s, want 2h", d)
				}
			case online < offline:
				t.Errorf("d-3 sent data at %s while offline since %s", m.At, offAt)
			}
		}
	}
	if skews[0] == 0 || skews[0].Abs() > 5*time.Minute {
		t.Errorf("skew %s, want within ±5m", skews[0])
	}
	for _, s := range skews {
		if s != skews[0] {
			t.Errorf("skew changes: %s then %s", skews[0], s)
			break
		}
	}
	if bursts < 3 || offline < 3 {
		t.Errorf("%d bursts, %d outages in 4 days, want about 8 of each", bursts, offline)
	}
}

func TestSimulatorLevel(t *testing.T) {
	for _, tc := range []struct {
		shape         simulator.Shape
		p, k, duty, u float64
		want          float64
	}{
		{simulator.Linear, 0, 0, 0, 0, 0},
		{simulator.Linear, 0.3, 0, 0, 0, 0.3},
		{simulator.Linear, 1.7, 0, 0, 0, 1},  // held after breakdown
		{simulator.Linear, -0.5, 0, 0, 0, 0}, // before onset
		{simulator.Exponential, 0, 5, 0, 0, 0},
		{simulator.Exponential, 1, 5, 0, 0, 1},
		{simulator.Exponential, 0.5, 5, 0, 0, math.Expm1(2.5) / math.Expm1(5)},
		{simulator.Step, 0, 0, 0, 0, 1},
		{simulator.Step, 0.5, 0, 0, 0, 1},
		{simulator.Intermittent, 0.5, 0, 0.3, 0.29, 1},
		{simulator.Intermittent, 0.5, 0, 0.3, 0.31, 0},
	} {
		if got := simulator.Level(tc.shape, tc.p, tc.k, tc.duty, tc.u); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("Level(%s, p=%v) = %v, want %v", tc.shape, tc.p, got, tc.want)
		}
	}
}

// BenchmarkSimulatorGenerate measures how fast the generator makes the
// demo fleet's messages (one reading of four metrics each), payload
// encoding included.
func BenchmarkSimulatorGenerate(b *testing.B) {
	sc, err := simulator.Builtin("demo")
	if err != nil {
		b.Fatal(err)
	}
	sc.Backfill, sc.Duration = 0, 0
	g := simulator.NewGenerator(sc, start)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		m, _ := g.Next()
		buf = m.AppendPayload(buf[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
