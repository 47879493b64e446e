package main

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/rules"
	"github.com/proactivehq/proactive/simulator"
)

// simStart is the live start of the simulations in tests.
var simStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// scenarioSamples generates a scenario without a broker and returns its
// telemetry as the platform would take it, in time order.
func scenarioSamples(t *testing.T, sc *simulator.Scenario) ([]proactive.Sample, *simulator.Generator) {
	t.Helper()
	g := simulator.NewGenerator(sc, simStart)
	models := map[string]string{}
	for _, d := range g.Devices() {
		models[d.ID] = d.Model
	}
	var out []proactive.Sample
	for {
		m, ok := g.Next()
		if !ok {
			break
		}
		for _, r := range m.Readings {
			s := proactive.Sample{Device: proactive.DeviceID(m.Device), Model: models[m.Device], Time: r.Time, Metrics: map[string]float64{}}
			for _, v := range r.Metrics {
				s.Metrics[v.Name] = v.V
			}
			out = append(out, s)
		}
	}
	// Late bursts and clock skew put a few samples out of order.
	sortSamples(out)
	return out, g
}

// scenarioEvents returns the device events of sc's run from simStart.
func scenarioEvents(sc *simulator.Scenario) []proactive.Event {
	g := simulator.NewGenerator(sc, simStart)
	var out []proactive.Event
	for m, ok := g.Next(); ok; m, ok = g.Next() {
		for _, e := range m.Events {
			out = append(out, proactive.Event{Device: proactive.DeviceID(m.Device), Time: e.Time, Code: e.Code,
				Component: e.Component, Severity: e.Severity, Text: e.Text})
		}
	}
	return out
}

func sortSamples(s []proactive.Sample) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Time.Before(s[j-1].Time); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Every shipped scenario, run through the example rules offline (as
// `proactive rules backtest` would), has each injected fault caught by the
// rule of its component before its breakdown, and no alert on a device
// without a fault.
func TestSimulatorScenariosFireExampleRules(t *testing.T) {
	t.Parallel()
	specs, probs := rules.LoadFiles([]string{filepath.Join("..", "..", "rules", "examples", "*.yaml")})
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	set, probs := rules.Compile(specs)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	for _, name := range simulator.BuiltinNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc, err := simulator.Builtin(name)
			if err != nil {
				t.Fatal(err)
			}
			samples, g := scenarioSamples(t, sc)
			var failures []rules.Failure
			faulty := map[string]bool{}
			for _, tr := range g.Truth() {
				if tr.IsDecoy() {
					// Alerts on a decoy are false, but expected of a rule on
					// telemetry alone (simulator's TestDecoysFigures counts them).
					faulty[tr.Device+"/"+tr.Component] = true
					continue
				}
				at := tr.Breakdown
				if at.IsZero() {
					at = g.End()
				}
				failures = append(failures, rules.Failure{Device: proactive.DeviceID(tr.Device), Time: at, Component: tr.Component})
				faulty[tr.Device+"/"+tr.Component] = true
			}
			rep, err := rules.Backtest(t.Context(), set, rules.SliceSource(samples), rules.BacktestOptions{
				Failures: failures, To: g.End(), Events: rules.SliceEvents(scenarioEvents(sc)), Maintenance: g.Maintenance()})
			if err != nil {
				t.Fatal(err)
			}
			watched := map[string]bool{}
			for _, r := range set.Rules() {
				watched[r.Component] = true
			}
			var fires []proactive.Alert
			for _, a := range rep.Alerts {
				if a.State == proactive.AlertFiring {
					fires = append(fires, a)
					t.Logf("%s fires on %s at %s (live %+.1fh)", a.Rule, a.Device, a.FiredAt.Format(time.RFC3339), a.FiredAt.Sub(simStart).Hours())
				}
			}
			// Each fault of a component the rules watch is caught before
			// its breakdown; a silent device within 2h and a tick of going
			// quiet.
			for _, tr := range g.Truth() {
				if !watched[tr.Component] || tr.IsDecoy() {
					continue // a decoy: maintenance, a door left open, a drifting sensor
				}
				deadline := tr.Breakdown
				if tr.Component == "connectivity" {
					deadline = tr.Breakdown.Add(2*time.Hour + 5*time.Minute + time.Minute)
				}
				var caught *proactive.Alert
				for i, a := range fires {
					if string(a.Device) == tr.Device && a.Component == tr.Component && !a.FiredAt.Before(tr.Onset) {
						caught = &fires[i]
						break
					}
				}
				switch {
				case caught == nil:
					t.Errorf("%s on %s (onset %s) was never caught", tr.Fault, tr.Device, tr.Onset.Format(time.RFC3339))
				case caught.FiredAt.After(deadline):
					t.Errorf("%s on %s caught by %s at %s, after %s", tr.Fault, tr.Device, caught.Rule, caught.FiredAt.Format(time.RFC3339), deadline.Format(time.RFC3339))
				default:
					t.Logf("%s on %s caught by %s %.1fh after onset, %s before breakdown", tr.Fault, tr.Device, caught.Rule,
						caught.FiredAt.Sub(tr.Onset).Hours(), tr.Breakdown.Sub(caught.FiredAt).Round(time.Minute))
				}
			}
			// No alert on a device without a fault of that component.
			for _, a := range fires {
				if !faulty[string(a.Device)+"/"+a.Component] {
					t.Errorf("%s fired on %s at %s, which has no %s fault", a.Rule, a.Device, a.FiredAt.Format(time.RFC3339), a.Component)
				}
			}
		})
	}
}

// simulateRun runs `proactive simulate ARGS...` against the platform's env.
func simulateRun(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out testenv.Buffer
	err := run(t.Context(), append([]string{"proactive", "simulate"}, args...), func(k string) string { return env[k] }, &out, &out)
	return out.String(), err
}

// servePlatform starts InfluxDB and `proactive serve` with the embedded
// broker, flushing often so that acknowledgements come quickly.
func servePlatform(t *testing.T) (*testenv.InfluxServer, map[string]string, *platform) {
	t.Helper()
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_INFLUX_FLUSH_INTERVAL"] = "50ms"
	env["PROACTIVE_RULES"] = filepath.Join("..", "..", "rules", "examples", "*.yaml")
	p := startServe(t, env)
	p.waitReady(t)
	return influx, env, p
}

// countByDevice returns how many points each device has in measurement.
func countByDevice(t *testing.T, influx *testenv.InfluxServer, measurement string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, p := range influx.Points(t, measurement) {
		out[p.Tags["device_id"]]++
	}
	return out
}

const e2eScenario = `name: e2e
seed: 21
backfill: 1d
duration: 2h
models:
  - name: fridge-a1
    count: 4
    id: fridge-%03d
    interval: 5m
    signals:
      load: {baseline: 0.5, noise: 0.1, daily: {amplitude: 0.2, phase: "19:00"}}
    metrics:
      compressor_current: {baseline: 4.0, noise: 0.08, load: 0.3, decimals: 2}
      cabinet_temp: {baseline: 4.0, noise: 0.1, decimals: 2}
  - name: heatpump-x2
    count: 2
    id: heatpump-%03d
    interval: 10m
    metrics:
      fan_vibration: {baseline: 1.2, noise: 0.08, decimals: 2}
faults:
  - {name: compressor_wear, component: compressor, devices: [fridge-002], onset: 20h, shape: linear, effects: {compressor_current: {add: 10}}, breakdown: {after: 1d}}
  - {name: fan_bearing, component: fan, devices: [heatpump-001], onset: 1d1h, shape: linear, effects: {fan_vibration: {add: 3.3}}, breakdown: {after: 30m, then: stop}}
quirks:
  - {devices: [fridge-004], late: {every: 6h, hold: 1h}}
`

// A scenario published at high speed into `proactive serve`: every reading
// of every device is in InfluxDB, each device reported online then offline,
// and the ground truth says what was injected.
func TestSimulateIntoServe(t *testing.T) {
	t.Parallel()
	influx, env, p := servePlatform(t)
	dir := t.TempDir()
	file, truthFile := filepath.Join(dir, "e2e.yaml"), filepath.Join(dir, "truth.csv")
	if err := os.WriteFile(file, []byte(e2eScenario), 0o600); err != nil {
		t.Fatal(err)
	}
	start := "2026-03-02T09:00:00Z"
	out, err := simulateRun(t, env, "--scenario", file, "--start", start, "--speed", "14400", "--truth", truthFile)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	if !strings.Contains(out, "6 devices, 6 connections") || !strings.Contains(out, "faults 2/2 started") {
		t.Errorf("no progress line:\n%s", out)
	}

	// What the generator makes for the same scenario, seed and start.
	sc, err := simulator.ParseScenario(file, []byte(e2eScenario))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := time.Parse(time.RFC3339, start)
	g := simulator.NewGenerator(sc, st)
	want := map[string]int{}
	for {
		m, ok := g.Next()
		if !ok {
			break
		}
		want[m.Device] += len(m.Readings)
	}
	// run returns once every publish is acknowledged, and the embedded
	// broker acknowledges only what is stored.
	got := countByDevice(t, influx, "telemetry")
	if len(want) != 6 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("points per device in InfluxDB %v, want %v", got, want)
	}
	if want["fridge-001"] != 26*12 || want["heatpump-001"] >= 26*6 {
		t.Errorf("generated %v: want 26h of 5-minute samples for fridge-001, and heatpump-001 to stop at breakdown", want)
	}
	for _, pt := range influx.Points(t, "telemetry") {
		if pt.Tags["device_id"] == "fridge-002" && pt.Time.After(st.Add(2*time.Hour-10*time.Minute)) && pt.Fields["compressor_current"] < 5.5 {
			t.Errorf("fridge-002 compressor_current %v at %s, want the wear (> 5.5 A)", pt.Fields["compressor_current"], pt.Time)
		}
	}
	status := map[string][]float64{}
	for _, pt := range influx.Points(t, "status") {
		status[pt.Tags["device_id"]] = append(status[pt.Tags["device_id"]], pt.Fields["online"])
	}
	for dev := range want {
		if s := status[dev]; len(s) < 2 || s[0] != 1 || s[len(s)-1] != 0 {
			t.Errorf("%s statuses %v, want online first and offline last", dev, s)
		}
	}
	b, err := os.ReadFile(truthFile)
	if err != nil {
		t.Fatal(err)
	}
	wantTruth := simulator.TruthCSVHeader + "\n" +
		"fridge-002,fridge-a1,compressor,compressor_wear,fault,linear,2026-03-02T05:00:00Z,2026-03-03T05:00:00Z,hold,,2026-03-03T05:00:00Z\n" +
		"heatpump-001,heatpump-x2,fan,fan_bearing,fault,linear,2026-03-02T10:00:00Z,2026-03-02T10:30:00Z,stop,,2026-03-02T10:30:00Z\n"
	if string(b) != wantTruth {
		t.Errorf("truth file:\n%s\nwant:\n%s", b, wantTruth)
	}
	// The CSV truth is the failures file of `proactive rules backtest`.
	fails, err := rules.ReadFailures(truthFile, strings.NewReader(string(b)))
	if err != nil || len(fails) != 2 || fails[1].Device != "heatpump-001" || fails[1].Component != "fan" ||
		!fails[1].Time.Equal(time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)) {
		t.Errorf("truth as backtest failures: %+v, %v", fails, err)
	}
	if strings.Contains(p.logs.String(), `"level":"ERROR"`) {
		t.Errorf("serve logged errors:\n%s", tail(p.logs.String(), 2000))
	}
}

// Replays into `proactive serve`: a small CSV, and C-MAPSS FD001's first
// three engines; every row is stored at its mapped time with its values.
func TestSimulateReplayIntoServe(t *testing.T) {
	t.Parallel()
	influx, env, _ := servePlatform(t)
	dir := t.TempDir()
	csvFile := filepath.Join(dir, "log.csv")
	csv := "unit;when;t;a\n" +
		"7;1767225600;4.1;5.2\n" +
		"7;1767225900;4.3;\n" +
		"9;1767225600;3.9;4.8\n" +
		"7;1767226200;4.2;5.4\n"
	if err := os.WriteFile(csvFile, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := simulateRun(t, env, "--replay", csvFile, "--sep", ";", "--device-col", "unit", "--device-id", "fridge-%03d",
		"--time-col", "when", "--time-format", "unix-s", "--metrics", "t=cabinet_temp,a=compressor_current", "--speed", "600", "--quiet")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	var got []string
	for _, pt := range influx.Points(t, "telemetry") {
		got = append(got, fmt.Sprintf("%s %s %v", pt.Tags["device_id"], pt.Time.Format(time.RFC3339), pt.Fields))
	}
	want := []string{
		"fridge-007 2026-01-01T00:00:00Z map[cabinet_temp:4.1 compressor_current:5.2]",
		"fridge-009 2026-01-01T00:00:00Z map[cabinet_temp:3.9 compressor_current:4.8]",
		"fridge-007 2026-01-01T00:05:00Z map[cabinet_temp:4.3]",
		"fridge-007 2026-01-01T00:10:00Z map[cabinet_temp:4.2 compressor_current:5.4]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stored:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	file, rows := cmapssHead(t, 3)
	out, err = simulateRun(t, env, "--replay", file, "--preset", "cmapss", "--speed", "max", "--quiet")
	if err != nil {
		t.Fatalf("replay C-MAPSS: %v\n%s", err, out)
	}
	cycles := map[string][]time.Time{}
	for _, pt := range influx.Points(t, "telemetry") {
		if dev := pt.Tags["device_id"]; strings.HasPrefix(dev, "engine-") {
			cycles[dev] = append(cycles[dev], pt.Time)
			if len(pt.Fields) != 21 || pt.Fields["ps30"] < 46 || pt.Fields["ps30"] > 49 {
				t.Fatalf("%s at %s: fields %v", dev, pt.Time, pt.Fields)
			}
		}
	}
	for unit := 1; unit <= 3; unit++ {
		dev := fmt.Sprintf("engine-%03d", unit)
		ts := cycles[dev]
		if len(ts) != rows[unit] {
			t.Errorf("%s: %d points, want %d rows", dev, len(ts), rows[unit])
			continue
		}
		for i, at := range ts { // cycle i+1 at 2026-01-01 + i hours
			if want := simulator.DefaultReplayStart.Add(time.Duration(i) * time.Hour); !at.Equal(want) {
				t.Errorf("%s cycle %d at %s, want %s", dev, i+1, at, want)
				break
			}
		}
	}
	// Row 1 of FD001: unit 1, cycle 1, ps30 (sensor 11) 47.47, w32 (21) 23.419.
	for _, pt := range influx.Points(t, "telemetry") {
		if pt.Tags["device_id"] == "engine-001" && pt.Time.Equal(simulator.DefaultReplayStart) {
			if pt.Fields["ps30"] != 47.47 || pt.Fields["w32"] != 23.419 || pt.Fields["t50"] != 1400.6 {
				t.Errorf("engine-001 cycle 1: %v", pt.Fields)
			}
		}
	}
}

// cmapssHead writes the first units of C-MAPSS FD001's training file to a
// file and returns it with the rows of each unit.
func cmapssHead(t *testing.T, units int) (string, map[int]int) {
	t.Helper()
	dir := os.Getenv("PROACTIVE_CMAPSS_DIR")
	if dir == "" {
		dir = "/work/shared/datasets/cmapss"
	}
	b, err := os.ReadFile(filepath.Join(dir, "train_FD001.txt"))
	if err != nil {
		testenv.RequireService(t, "C-MAPSS dataset", fmt.Sprintf("NASA C-MAPSS FD001 not found (%v): set PROACTIVE_CMAPSS_DIR", err))
	}
	var keep strings.Builder
	rows := map[int]int{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		unit, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if unit > units {
			break
		}
		rows[unit]++
		keep.WriteString(line + "\n")
	}
	out := filepath.Join(t.TempDir(), "fd001-head.txt")
	if err := os.WriteFile(out, []byte(keep.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return out, rows
}

// Bad flags stop simulate before it connects, saying what is wrong.
func TestSimulateFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PROACTIVE_MQTT_LISTEN": testenv.FreeAddr(t)}
	csv := filepath.Join(t.TempDir(), "x.csv")
	if err := os.WriteFile(csv, []byte("d,t,x\n1,1,2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--speed", "fast"}, `--speed "fast": want a positive number or max`},
		{[]string{"--speed", "max", "--duration", "0"}, "as fast as possible (speed max) needs a duration"},
		{[]string{"--duration", "3 days"}, `invalid value "3 days" for flag -duration`},
		{[]string{"--scenario", "nope"}, `no built-in scenario "nope"`},
		{[]string{"--scenario", "missing.yaml"}, "missing.yaml: no such file"},
		{[]string{"--replay", csv}, "replay needs --device-col and --time-col"},
		{[]string{"--replay", csv, "--scenario", "demo"}, "give --scenario, --load or --replay, one of them"},
		{[]string{"--replay", csv, "--load", "10"}, "give --scenario, --load or --replay, one of them"},
		{[]string{"--load", "10", "--scenario", "demo"}, "give --scenario, --load or --replay, one of them"},
		{[]string{"--load", "-1"}, "load: -1 devices"},
		{[]string{"--load", "10", "--interval", "10ms"}, "interval 10ms: want at least 1s"},
		{[]string{"--credentials", "missing.csv"}, "credentials: open missing.csv"},
		{[]string{"--replay", csv, "--preset", "nasa"}, `--preset "nasa"`},
		{[]string{"--replay", csv, "--device-col", "d", "--time-col", "t", "--time-format", "cycle", "--truth", "t.csv"}, "--truth is for scenarios"},
		{[]string{"--start", "tomorrow"}, `--start "tomorrow"`},
		{[]string{"extra"}, "simulate takes no arguments"},
	} {
		if out, err := simulateRun(t, env, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("simulate %v: %v, want %q\n%s", tc.args, err, tc.want, out)
		}
	}
	// Nobody at the configured broker: a connection error naming it.
	if _, err := simulateRun(t, env, "--scenario", "silent_device", "--quiet"); err == nil || !strings.Contains(err.Error(), "mqtt://"+env["PROACTIVE_MQTT_LISTEN"]) {
		t.Errorf("simulate without a broker: %v", err)
	}
}

// subscribeAll connects to broker and counts the messages of every topic
// under devices/.
func subscribeAll(t *testing.T, broker, user, password string) func() map[string]int {
	t.Helper()
	var mu sync.Mutex
	got := map[string]int{}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("counter").SetUsername(user).SetPassword(password))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	if tok := c.Subscribe("devices/#", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		defer mu.Unlock()
		got[m.Topic()]++
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(got)
	}
}

// waitCounts waits until count() says each device sent n telemetry
// messages and two statuses.
func waitCounts(t *testing.T, count func() map[string]int, devices []string, n int) {
	t.Helper()
	testenv.Eventually(t, 0, func() error {
		got := count()
		for _, d := range devices {
			if tel, st := got["devices/"+d+"/telemetry"], got["devices/"+d+"/status"]; tel != n || st != 2 {
				return fmt.Errorf("%s: %d telemetry, %d statuses; want %d and 2", d, tel, st, n)
			}
		}
		return nil
	})
}

// Load mode: 500 devices on 8 shared connections, a reading a second each,
// for 3 simulated seconds.
func TestSimulateLoad(t *testing.T) {
	t.Parallel()
	broker := "mqtt://127.0.0.1:" + strconv.Itoa(testenv.PrivateMosquitto(t, "listener {{port}} 127.0.0.1\nallow_anonymous true\npersistence false\n"+
		// The burst of 2,500 messages must not be cut at Mosquitto's default
		// queue of 1,000 for a counter that a loaded machine slows down.
		"max_queued_messages 0"))
	count := subscribeAll(t, broker, "", "")
	out, err := simulateRun(t, nil, "--broker", broker, "--load", "500", "--interval", "1s", "--duration", "3s", "--speed", "3",
		"--start", "2026-03-02T09:00:00Z")
	if err != nil {
		t.Fatalf("simulate --load: %v\n%s", err, out)
	}
	// 500 online statuses, 1,500 readings, 500 offline statuses.
	if !strings.Contains(out, "500 devices, 8 connections") || !strings.Contains(out, "2500 sent, 2500 acked") {
		t.Errorf("progress:\n%s", out)
	}
	var ids []string
	for i := 1; i <= 500; i++ {
		ids = append(ids, fmt.Sprintf("load-%06d", i))
	}
	waitCounts(t, count, ids, 3)
}

// With --credentials each device connects as itself to a broker that
// requires passwords.
func TestSimulateCredentials(t *testing.T) {
	t.Parallel()
	passwd := testenv.MosquittoPasswordFile(t, "admin", "admin-pass")
	var creds strings.Builder
	creds.WriteString("device_id,secret\n")
	for _, id := range []string{"fridge-001", "fridge-002"} {
		if out, err := exec.Command("mosquitto_passwd", "-b", passwd, id, "pw-"+id).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
		creds.WriteString(id + ",pw-" + id + "\n")
	}
	dir := t.TempDir()
	credsFile, scenario := filepath.Join(dir, "creds.csv"), filepath.Join(dir, "two.yaml")
	if err := os.WriteFile(credsFile, []byte(creds.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(scenario, []byte("duration: 1h\nmodels:\n  - {name: fridge-a1, count: 2, id: fridge-%03d, interval: 10m, metrics: {cabinet_temp: {baseline: 4}}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	broker := "mqtt://127.0.0.1:" + strconv.Itoa(testenv.PrivateMosquitto(t,
		"listener {{port}} 127.0.0.1\nallow_anonymous false\npersistence false\npassword_file "+passwd))
	count := subscribeAll(t, broker, "admin", "admin-pass")
	out, err := simulateRun(t, nil, "--broker", broker, "--scenario", scenario, "--credentials", credsFile, "--speed", "max", "--quiet")
	if err != nil {
		t.Fatalf("simulate --credentials: %v\n%s", err, out)
	}
	// At max speed the hour goes in one batch per device.
	waitCounts(t, count, []string{"fridge-001", "fridge-002"}, 1)
	if _, err := simulateRun(t, nil, "--broker", broker, "--scenario", scenario, "--quiet"); err == nil || !strings.Contains(err.Error(), "connect fridge-001") {
		t.Errorf("without credentials: %v", err)
	}
}
