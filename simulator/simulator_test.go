package simulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/proactivehq/proactive/simulator"
)

// broker is a plain MQTT broker (mochi) that records what clients publish.
type broker struct {
	mqtt.HookBase
	url            string
	user, password string
	mu             sync.Mutex
	msgs           []published
	wills          map[string]string // client id → will topic and payload
	clients        map[string]bool
	// onPublish, when set, is called with the count of publishes so far
	// after each, outside the lock.
	onPublish func(n int)
	// clock, when set, stamps each publish with its time.
	clock func() time.Time
}

type published struct {
	client, topic, payload string
	qos                    byte
	at                     time.Time // by clock
}

func startBroker(t *testing.T, user, password string) *broker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{url: "mqtt://" + ln.Addr().String(), user: user, password: password, wills: map[string]string{}, clients: map[string]bool{}}
	s := mqtt.New(&mqtt.Options{InlineClient: true, Logger: discardLogger()})
	if err := s.AddHook(b, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return b
}

func (b *broker) ID() string { return "recorder" }
func (b *broker) Provides(x byte) bool {
	return x == mqtt.OnConnectAuthenticate || x == mqtt.OnACLCheck || x == mqtt.OnPublish || x == mqtt.OnConnect
}
func (b *broker) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	return b.user == "" || string(pk.Connect.Username) == b.user && string(pk.Connect.Password) == b.password
}
func (b *broker) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
func (b *broker) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clients[cl.ID] = true
	if pk.Connect.WillFlag {
		b.wills[cl.ID] = pk.Connect.WillTopic + " " + string(pk.Connect.WillPayload)
	}
	return nil
}
func (b *broker) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	b.mu.Lock()
	var at time.Time
	if b.clock != nil {
		at = b.clock()
	}
	b.msgs = append(b.msgs, published{cl.ID, pk.TopicName, string(pk.Payload), pk.FixedHeader.Qos, at})
	n, f := len(b.msgs), b.onPublish
	b.mu.Unlock()
	if f != nil {
		f(n)
	}
	return pk, nil
}

func (b *broker) published() []published {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs)
}

// readings flattens telemetry payloads into "device ts metrics" lines.
func readings(t *testing.T, msgs []published) []string {
	t.Helper()
	var out []string
	for _, m := range msgs {
		if !strings.HasSuffix(m.topic, "/telemetry") {
			continue
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
			out = append(out, dev+" "+string(e))
		}
	}
	return out
}

const small = `seed: 4
backfill: 3h
duration: 2h
models:
  - name: fridge-a1
    count: 3
    id: fridge-%03d
    interval: 5m
    metrics:
      compressor_current: {baseline: 4, noise: 0.1, decimals: 2}
      cabinet_temp: {baseline: 4, noise: 0.1, decimals: 2}
faults:
  - {name: compressor_wear, component: compressor, devices: [fridge-002], onset: 2h, shape: linear, effects: {compressor_current: {add: 5}}, breakdown: {after: 1d}}
  - {name: compressor_wear, component: compressor, devices: [fridge-003], onset: 4h, shape: linear, effects: {compressor_current: {add: 5}}, breakdown: {after: 1d}}
`

// A run publishes exactly what the generator makes, with QoS 1, on one
// connection per device (client id = device id, offline status as will),
// between an online and an offline status, and writes the ground truth.
func TestSimulatorRunPerDevice(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "", "")
	sc := mustScenario(t, small)
	var truth, progress bytes.Buffer
	sim, err := simulator.New(simulator.Options{
		Scenario: sc, Start: start, Broker: b.url, Speed: 36000, Truth: &truth, TruthCSV: true,
		Progress: &progress, ProgressInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := sim.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	// 2 simulated hours at 36000x: about 0.2 s, logged rather than asserted
	// (a loaded machine makes any bound flaky).
	t.Logf("the run took %s", time.Since(began))
	msgs := b.published()
	var want []string
	g := simulator.NewGenerator(mustScenario(t, small), start)
	for {
		m, ok := g.Next()
		if !ok {
			break
		}
		for _, r := range m.Readings {
			one := simulator.Message{Device: m.Device, Readings: []simulator.Reading{r}}
			want = append(want, m.Device+" "+string(one.Payload()))
		}
	}
	got := readings(t, msgs)
	slices.Sort(got)
	slices.Sort(want)
	if len(want) != 3*12*5 { // 3 devices, 5 hours of 5-minute samples
		t.Errorf("the generator made %d readings", len(want))
	}
	if !slices.Equal(got, want) {
		t.Errorf("published %d readings, the generator %d; first published %q, first generated %q", len(got), len(want), got[0], want[0])
	}
	perDevice := map[string][]string{}
	batched := 0
	for _, m := range msgs {
		if m.qos != 1 {
			t.Errorf("%s published with QoS %d", m.topic, m.qos)
		}
		dev := strings.Split(m.topic, "/")[1]
		if m.client != dev {
			t.Errorf("%s published by client %s", m.topic, m.client)
		}
		kind := "telemetry"
		if strings.HasSuffix(m.topic, "/status") {
			kind = m.payload
		} else if strings.HasPrefix(m.payload, "[") {
			batched++
		}
		if n := len(perDevice[dev]); n == 0 || perDevice[dev][n-1] != kind {
			perDevice[dev] = append(perDevice[dev], kind)
		}
	}
	for _, dev := range []string{"fridge-001", "fridge-002", "fridge-003"} {
		if got := strings.Join(perDevice[dev], " "); got != `{"online":true} telemetry {"online":false}` {
			t.Errorf("%s published %s", dev, got)
		}
		if w := b.wills[dev]; w != "devices/"+dev+`/status {"online":false}` {
			t.Errorf("%s will %q", dev, w)
		}
	}
	if batched != 3 {
		t.Errorf("%d batched messages, want one per device for its 3 hours of history", batched)
	}
	wantTruth := simulator.TruthCSVHeader + "\n" +
		"fridge-002,fridge-a1,compressor,compressor_wear,fault,linear,2026-03-02T08:00:00Z,2026-03-03T08:00:00Z,hold,,2026-03-03T08:00:00Z\n" +
		"fridge-003,fridge-a1,compressor,compressor_wear,fault,linear,2026-03-02T10:00:00Z,2026-03-03T10:00:00Z,hold,,2026-03-03T10:00:00Z\n"
	if truth.String() != wantTruth {
		t.Errorf("truth:\n%s\nwant:\n%s", truth.String(), wantTruth)
	}
	st := sim.Stats()
	if st.Sent != st.Acked || st.Failed != 0 || st.FaultsStarted != 2 || st.Devices != 3 {
		t.Errorf("stats %+v", st)
	}
	if p := progress.String(); !strings.Contains(p, "3 devices, 3 connections") || !strings.Contains(p, "faults 2/2 started") {
		t.Errorf("progress:\n%s", p)
	}
}

// Shared connections carry many devices, without wills; a broker that asks
// for credentials gets them.
func TestSimulatorRunShared(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "sim", "s3cret")
	sc := mustScenario(t, strings.Replace(small, "count: 3", "count: 7", 1))
	sim, err := simulator.New(simulator.Options{
		Scenario: sc, Start: start, Broker: b.url, Username: "sim", Password: "s3cret",
		Speed: math.Inf(1), Connections: 2, ClientID: "load",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(b.clients) != 2 || !b.clients["load-1"] || !b.clients["load-2"] || len(b.wills) != 0 {
		t.Errorf("clients %v, wills %v", b.clients, b.wills)
	}
	if n := len(readings(t, b.published())); n != 7*12*5 {
		t.Errorf("%d readings, want %d", n, 7*12*5)
	}

	// Wrong credentials: a clear error, no publishing.
	sim, err = simulator.New(simulator.Options{Scenario: sc, Start: start, Broker: b.url, Username: "sim", Password: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("run with a wrong password: %v", err)
	}
}

// A run without end stops when its context does, and its devices go
// offline cleanly.
func TestSimulatorRunUntilStopped(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "", "")
	sc := mustScenario(t, strings.Replace(small, "duration: 2h", "duration: 0", 1))
	sim, err := simulator.New(simulator.Options{Scenario: sc, Broker: b.url, Speed: 600})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	if err := sim.Run(ctx); err != nil {
		t.Fatalf("run stopped by its context: %v", err)
	}
	msgs := b.published()
	last := map[string]string{}
	live := 0
	for _, m := range msgs {
		dev := strings.Split(m.topic, "/")[1]
		if strings.HasSuffix(m.topic, "/status") {
			last[dev] = m.payload
		} else if !strings.HasPrefix(m.payload, "[") {
			live++
		}
	}
	// 0.7 s at 600x is 7 minutes: one or two live samples per device.
	if live < 1 || live > 9 {
		t.Errorf("%d live messages in 0.7s at 600x", live)
	}
	for _, dev := range []string{"fridge-001", "fridge-002", "fridge-003"} {
		if last[dev] != `{"online":false}` {
			t.Errorf("%s last status %q", dev, last[dev])
		}
	}
}

func TestSimulatorOptions(t *testing.T) {
	sc := mustScenario(t, small)
	for _, tc := range []struct {
		name string
		o    simulator.Options
		want string
	}{
		{"nothing to publish", simulator.Options{}, "give a scenario or a replay"},
		{"bad scheme", simulator.Options{Scenario: sc, Broker: "http://x:1"}, `scheme "http"`},
		{"not a url", simulator.Options{Scenario: sc, Broker: "x"}, "not a URL"},
		{"max speed without end", simulator.Options{Scenario: mustScenario(t, strings.Replace(small, "duration: 2h", "duration: 0", 1)), Speed: math.Inf(1)}, "needs a duration"},
		{"negative speed", simulator.Options{Scenario: sc, Speed: -1}, "must be positive"},
	} {
		if _, err := simulator.New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// Nobody listening: a clear error.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	sim, err := simulator.New(simulator.Options{Scenario: sc, Broker: "tcp://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Run(t.Context()); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("connect fridge-001 to tcp://%s", addr)) {
		t.Errorf("no broker: %v", err)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
