package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
)

// silentBroker accepts MQTT connections, answers CONNECT and then reads
// every publish without ever acknowledging one: a broker that stopped
// acknowledging. It counts the bytes it took.
type silentBroker struct {
	ln    net.Listener
	mu    sync.Mutex
	bytes int
	conns []net.Conn
}

func startSilentBroker(t *testing.T) *silentBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &silentBroker{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.serve(c)
			}()
		}
	}()
	return b
}

// serve reads the CONNECT (fixed header, remaining length), answers
// CONNACK accepted, then swallows the rest.
func (b *silentBroker) serve(c net.Conn) {
	r := bufio.NewReader(c)
	if _, err := r.ReadByte(); err != nil {
		return
	}
	n, mult := 0, 1
	for {
		d, err := r.ReadByte()
		if err != nil {
			return
		}
		n += int(d&127) * mult
		mult *= 128
		if d&128 == 0 {
			break
		}
	}
	if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
		return
	}
	if _, err := c.Write([]byte{0x20, 0x02, 0x00, 0x00}); err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	for {
		k, err := r.Read(buf)
		b.mu.Lock()
		b.bytes += k
		b.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (b *silentBroker) taken() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bytes
}

// `proactive simulate` ends on SIGTERM whatever is in flight: here its
// broker stopped acknowledging, its windows are full and every publish
// waits. It exits within its shutdown timeout with a message that says
// what was not acknowledged (the bound below is a failure, not a figure).
func TestSimulateExitsOnSIGTERMWhileStalled(t *testing.T) {
	t.Parallel()
	b := startSilentBroker(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PROACTIVE_TEST_SUBPROCESS=simulate", "PROACTIVE_SHUTDOWN_TIMEOUT=2s",
		"PROACTIVE_TEST_ARGS=--broker mqtt://"+b.ln.Addr().String()+" --load 1000 --interval 1s --inflight 50 --quiet")
	var out testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	// Stalled: the windows of its 8 connections of 50 publishes are full
	// (400 online statuses of 40 bytes or more).
	testenv.Eventually(t, 30*time.Second, func() error {
		if b.taken() < 400*40 {
			return errors.New("windows not full yet; output:\n" + out.String())
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("simulate ended with %v, want a failure exit; output:\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("simulate did not exit after SIGTERM; output:\n%s", out.String())
	}
	if o := out.String(); !strings.Contains(o, "not acknowledged") {
		t.Errorf("no clear message on exit:\n%s", o)
	}
	t.Logf("output:\n%s", out.String())
}

// The fleet-load stall, both sides: the simulator's connections to the
// embedded broker of `proactive serve` are cut twice mid-burst (as the
// broker's acknowledgement write deadline or a network would); the
// simulator reconnects and publishes again what was not acknowledged, the
// broker takes the new connections, and every reading is stored.
func TestSimulateIntoServeThroughCutConnections(t *testing.T) {
	t.Parallel()
	influx, env, _ := servePlatform(t)
	proxy := testenv.NewProxy(t, env["PROACTIVE_MQTT_LISTEN"])
	cut := make(chan int, 1)
	go func() {
		n := 0
		defer func() { cut <- n }()
		for _, at := range []int64{100 << 10, 300 << 10} {
			for proxy.Forwarded() < at {
				select {
				case <-t.Context().Done():
					return
				case <-time.After(time.Millisecond): // polling a counter
				}
			}
			proxy.Cut()
			n++
		}
	}()
	out, err := simulateRun(t, env, "--broker", "mqtt://"+proxy.Addr(), "--load", "200", "--interval", "1s", "--duration", "30s",
		"--speed", "10", "--start", "2026-03-02T09:00:00Z", "--connections", "4")
	if err != nil {
		t.Fatalf("simulate through cut connections: %v\n%s", err, out)
	}
	if n := <-cut; n != 2 {
		t.Fatalf("%d cuts, want 2 (the run was shorter than the test expects); output:\n%s", n, out)
	}
	if !strings.Contains(out, `"reconnects"`) || strings.Contains(out, `"reconnects":0`) {
		t.Errorf("no reconnection reported:\n%s", out)
	}
	got := countByDevice(t, influx, "telemetry")
	bad := 0
	for i := 1; i <= 200; i++ {
		if n := got[fmt.Sprintf("load-%06d", i)]; n != 30 {
			bad++
			if bad <= 5 {
				t.Errorf("load-%06d: %d readings stored, want 30", i, n)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of 200 devices lost readings", bad)
	}
}
