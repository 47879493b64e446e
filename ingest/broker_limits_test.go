package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/internal/testenv"
)

// limitBroker is an embedded broker with the given options in front of an
// ingester that records what it stores.
type limitBroker struct {
	*ingest.Broker
	addr  string
	store *store
	m     *ingest.Metrics
}

func startLimitBroker(tb testing.TB, opts ingest.BrokerOptions) *limitBroker {
	tb.Helper()
	st := &store{}
	in, m := newIngester(tb, ingest.Options{Writer: st, Metrics: ingest.NewMetrics(prometheus.NewRegistry())})
	mustRun(tb, in)
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	b, err := ingest.NewBroker(in, opts)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("broker Run: %v", err)
		}
	})
	testenv.Eventually(tb, 0, b.Ready)
	return &limitBroker{Broker: b, addr: b.Addr().String(), store: st, m: m}
}

// mqttConnect connects an MQTT 3.1.1 client without credentials and
// reports the error, so that a caller can retry while the broker recovers.
func mqttConnect(addr, id string) (paho.Client, error) {
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(2 * time.Second)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(waitLimit) {
		return nil, fmt.Errorf("connect %s: no CONNACK", id)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("connect %s: %w", id, err)
	}
	return c, nil
}

// closedByPeer waits until the other end closes conn, reading and
// discarding what it sends.
func closedByPeer(tb testing.TB, conn net.Conn) {
	tb.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(waitLimit))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		tb.Fatalf("connection from %s still open", conn.LocalAddr())
	}
}

// fdChildEnv marks the child process of TestEmbeddedBrokerAcceptsAfterFDExhaustion.
const fdChildEnv = "PROACTIVE_TEST_FD_CHILD"

// TestEmbeddedBrokerAcceptsAfterFDExhaustion runs the broker in a child
// process with few file descriptors. This process opens idle connections to
// it until its accepts fail (EMFILE), the way an attacker would; then it
// closes them, and a device must be able to connect again: the broker keeps
// accepting, and /readyz (Ready) says it cannot accept only meanwhile.
func TestEmbeddedBrokerAcceptsAfterFDExhaustion(t *testing.T) {
	if os.Getenv(fdChildEnv) == "1" {
		fdChild(t)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("counts open files in /proc/self/fd")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestEmbeddedBrokerAcceptsAfterFDExhaustion$", "-test.v")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	var out strings.Builder
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if k, ok := strings.CutPrefix(sc.Text(), "fdchild: "); ok {
				lines <- k
			}
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if ok {
				return l
			}
		case <-time.After(testenv.DefaultTimeout):
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child said nothing more:\n%s%s", out.String(), stderr.String())
		return ""
	}
	var addr string
	var free int
	if _, err := fmt.Sscanf(next(), "listening %s free %d", &addr, &free); err != nil {
		t.Fatal(err)
	}
	// Every descriptor the child has left, and more: those wait in the
	// kernel's accept queue while the child's accepts fail.
	var idle []net.Conn
	for range free + 20 {
		c, err := net.DialTimeout("tcp", addr, waitLimit)
		if err != nil {
			t.Fatalf("idle connection %d: %v", len(idle), err)
		}
		idle = append(idle, c)
	}
	fmt.Fprintf(stdin, "opened %d\n", len(idle))
	if l := next(); l != "exhausted" {
		t.Fatalf("child: %s", l)
	}
	for _, c := range idle {
		_ = c.Close()
	}
	fmt.Fprintln(stdin, "closed")
	if l := next(); !strings.HasPrefix(l, "recovered") {
		t.Fatalf("child: %s", l)
	}
	for range lines { // until the child's stdout closes
	}
	err = cmd.Wait()
	t.Logf("child:\n%s", out.String())
	if err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
}

// fdChild is the child's side: a broker under a low RLIMIT_NOFILE.
func fdChild(t *testing.T) {
	b := startLimitBroker(t, ingest.BrokerOptions{ConnectTimeout: time.Minute})
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	// A few to spare for the runtime and the device that connects at the
	// end, which the test's own connections must not have taken.
	const room = 24
	setNoFile(t, uint64(len(ents)+room))
	in := bufio.NewScanner(os.Stdin)
	fmt.Printf("fdchild: listening %s free %d\n", b.addr, room)
	if !in.Scan() {
		t.Fatal("parent gone")
	}
	testenv.Eventually(t, 0, func() error {
		if b.Ready() == nil {
			return errors.New("broker still says it is ready while it cannot accept")
		}
		return nil
	})
	t.Logf("ready while exhausted: %v", b.Ready())
	fmt.Println("fdchild: exhausted")
	if !in.Scan() || in.Text() != "closed" {
		t.Fatal("parent gone")
	}
	start := time.Now()
	c := testenv.EventuallyValue(t, 0, func() (paho.Client, error) { return mqttConnect(b.addr, "pump-1") })
	took := time.Since(start)
	defer c.Disconnect(50)
	testenv.Eventually(t, 0, b.Ready)
	// A figure for the report, never asserted.
	t.Logf("a device connected %v after the idle connections closed", took)
	fmt.Printf("fdchild: recovered in %v\n", took)
}

// TestEmbeddedBrokerRefusesOversizedConnect announces CONNECT packets of
// 256 MiB on four unauthenticated connections and sends data: the broker
// must close them without buffering what they announce.
func TestEmbeddedBrokerRefusesOversizedConnect(t *testing.T) {
	b := startLimitBroker(t, ingest.BrokerOptions{})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var conns []net.Conn
	for range 4 {
		c, err := net.DialTimeout("tcp", b.addr, waitLimit)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// CONNECT, remaining length 256 MiB - 1 (the largest MQTT allows).
	header := []byte{0x10, 0xff, 0xff, 0xff, 0x7f}
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	peak := before.HeapAlloc
	var ms runtime.MemStats
	for _, c := range conns {
		_ = c.SetWriteDeadline(time.Now().Add(waitLimit))
		if _, err := c.Write(header); err != nil {
			continue
		}
		// Up to 16 MiB each, until the broker hangs up.
		for range 256 {
			if _, err := c.Write(chunk); err != nil {
				break
			}
		}
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	growth := int64(peak) - int64(before.HeapAlloc)
	t.Logf("heap before %d MiB, peak %d MiB during the attack; RSS %s", before.HeapAlloc>>20, peak>>20, rss())
	if growth > 64<<20 {
		t.Errorf("heap grew by %d MiB during the attack, want under 64 MiB", growth>>20)
	}
	for _, c := range conns {
		closedByPeer(t, c)
	}
	if got := value(t, b.m.ConnectsRefused.WithLabelValues("packet_too_large")); got != 4 {
		t.Errorf("connections refused for packet_too_large: %v, want 4", got)
	}
}

// rss returns the process's resident set size, for the logs.
func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// TestEmbeddedBrokerClosesSilentConnections: a connection that sends no
// CONNECT, or only part of one, within ConnectTimeout is closed; one that
// connected in time stays.
func TestEmbeddedBrokerClosesSilentConnections(t *testing.T) {
	b := startLimitBroker(t, ingest.BrokerOptions{ConnectTimeout: 100 * time.Millisecond})
	before := value(t, b.m.ConnectsRefused.WithLabelValues("connect_timeout"))
	dev, err := mqttConnect(b.addr, "pump-1")
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Disconnect(50)
	for name, send := range map[string][]byte{"nothing": nil, "half a CONNECT": {0x10, 0x20, 0x00, 0x04, 'M'}} {
		t.Run(name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", b.addr, waitLimit)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(send); err != nil {
				t.Fatal(err)
			}
			closedByPeer(t, c)
		})
	}
	if got := value(t, b.m.ConnectsRefused.WithLabelValues("connect_timeout")) - before; got != 2 {
		t.Errorf("connect timeouts counted: %v, want 2", got)
	}
	// The device's keepalive, not the CONNECT deadline, governs it now.
	if tok := dev.Publish("devices/pump-1/telemetry", 1, false, `{"metrics": {"pressure": 2.5}}`); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("device's publish after the CONNECT deadline: %v", tok.Error())
	}
}

// TestEmbeddedBrokerMaxConnections: past MaxConnections a connection is
// closed at once; when one closes, a device connects again.
func TestEmbeddedBrokerMaxConnections(t *testing.T) {
	b := startLimitBroker(t, ingest.BrokerOptions{MaxConnections: 3, ConnectTimeout: time.Minute})
	var idle []net.Conn
	for range 3 {
		c, err := net.DialTimeout("tcp", b.addr, waitLimit)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	// Accepted in order: the fourth is past the limit.
	c, err := net.DialTimeout("tcp", b.addr, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	closedByPeer(t, c)
	if got := value(t, b.m.ConnectsRefused.WithLabelValues("max_connections")); got != 1 {
		t.Errorf("refusals for max_connections: %v, want 1", got)
	}
	if err := b.Ready(); err != nil {
		t.Errorf("at its connection limit the broker still accepts (and refuses): Ready says %v", err)
	}
	_ = idle[0].Close()
	dev := testenv.EventuallyValue(t, 0, func() (paho.Client, error) { return mqttConnect(b.addr, "pump-1") })
	dev.Disconnect(50)
}

// TestEmbeddedBrokerRefusesOversizedPublish: a connected device's PUBLISH
// over MaxPacketSize is not acknowledged nor stored; the broker drops the
// connection before reading it.
func TestEmbeddedBrokerRefusesOversizedPublish(t *testing.T) {
	b := startAuthBroker(t)
	dev, lost := pahoDevice(t, b.addr, "pump-1", "s3cret-1")
	big := `{"metrics": {"pressure": 2.5}, "pad": "` + strings.Repeat("x", 2<<20) + `"}`
	tok := dev.Publish("devices/pump-1/telemetry", 1, false, big)
	select {
	case err := <-lost:
		t.Logf("connection lost: %v", err)
	case <-time.After(waitLimit):
		t.Fatal("device still connected after a 2 MiB PUBLISH")
	}
	if tok.WaitTimeout(waitLimit) && tok.Error() == nil {
		t.Error("2 MiB PUBLISH acknowledged")
	}
	if samples, _ := b.store.stored(); len(samples) != 0 {
		t.Errorf("stored %+v", samples)
	}
	// mochi calls the hook that counts it after closing the connection.
	testenv.Eventually(t, 0, func() error {
		if got := value(t, b.m.ConnectsRefused.WithLabelValues("packet_too_large")); got != 1 {
			return fmt.Errorf("connections dropped for packet_too_large: %v, want 1", got)
		}
		return nil
	})
}
