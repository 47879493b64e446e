//go:build unix

package simulator_test

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/simulator"
)

// benchMosquitto starts a Mosquitto of the benchmark's own, so that other
// users of the shared one neither slow it nor are slowed by it.
func benchMosquitto(b *testing.B) string {
	port := testenv.PrivateMosquitto(b, "listener {{port}} 127.0.0.1\nallow_anonymous true\npersistence false")
	return "mqtt://127.0.0.1:" + strconv.Itoa(port)
}

// BenchmarkSimulatorPublish measures the messages per second the simulator
// sustains into Mosquitto: b.N telemetry messages (one reading of three
// metrics, QoS 1, each acknowledged) of a load fleet of 10,000 devices in
// time order, as fast as the broker acknowledges, over 8 connections. The
// online and offline statuses (2 per device) count too; run it with
// -benchtime 500000x or more so that they weigh little.
func BenchmarkSimulatorPublish(b *testing.B) {
	url := benchMosquitto(b)
	const devices = 10_000
	sc, err := simulator.LoadTest(devices, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	// devices messages per simulated second.
	sc.Duration = time.Duration(b.N) * time.Second / devices
	sim, err := simulator.New(simulator.Options{Scenario: sc, Start: start, Broker: url, Connections: 8,
		Speed:  1e9, // time order (a live run), never waiting: unlike max, no batching
		Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	t0 := time.Now()
	if err := sim.Run(b.Context()); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(t0)
	st := sim.Stats()
	if st.Acked != st.Sent || st.Failed > 0 {
		b.Fatalf("%d sent, %d acknowledged, %d failed", st.Sent, st.Acked, st.Failed)
	}
	b.ReportMetric(float64(st.Acked)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSimulatorCPU measures the CPU the simulator uses for 10,000
// devices sending one message every 10 s in real time (1,000 msgs/s into
// Mosquitto): the process's CPU time (getrusage) over 10 simulated
// seconds of the live part, after 2 s of warm-up that leave the connects
// and the online statuses out. cpu-%/10k-devices is the share of one core.
func BenchmarkSimulatorCPU(b *testing.B) {
	url := benchMosquitto(b)
	const warmUp, measure = 2 * time.Second, 10 * time.Second
	sc, err := simulator.LoadTest(10_000, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	sc.Duration = warmUp + measure + time.Second
	st := time.Now().Truncate(time.Millisecond)
	sim, err := simulator.New(simulator.Options{Scenario: sc, Start: st, Broker: url, Speed: 1, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sim.Run(b.Context()) }()
	// waitClock waits until the simulated clock passes t, and returns the
	// CPU time used so far and the messages sent.
	waitClock := func(t time.Time) (time.Duration, int64) {
		for !sim.Stats().Clock.After(t) {
			select {
			case err := <-done:
				b.Fatalf("run ended early: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), sim.Stats().Sent
	}
	cpu0, sent0 := waitClock(st.Add(warmUp))
	cpu1, sent1 := waitClock(st.Add(warmUp + measure))
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	cpu := cpu1 - cpu0
	b.ReportMetric(100*cpu.Seconds()/measure.Seconds(), "cpu-%/10k-devices")
	b.ReportMetric(float64(cpu.Microseconds())/float64(sent1-sent0), "cpu-µs/msg")
	b.ReportMetric(float64(sent1-sent0)/measure.Seconds(), "msgs/s")
	b.ReportMetric(0, "ns/op")
}
