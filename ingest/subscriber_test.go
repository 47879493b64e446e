package ingest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/internal/testenv"
)

// mqttProxy forwards connections to a broker and watches each: it records
// the QoS 1 publishes the broker sends down a connection and flags a
// PUBACK that the client sends up it for a packet id that connection did
// not carry (an ack meant for another connection's message).
type mqttProxy struct {
	t      *testing.T
	ln     net.Listener
	broker string

	mu    sync.Mutex
	conns []*proxiedConn
	wrong []string
}

type proxiedConn struct {
	client, broker net.Conn
	// unacked holds the ids of the publishes sent down this connection
	// and not yet acknowledged.
	unacked map[uint16]bool
	acks    int
}

func newMQTTProxy(t *testing.T, broker string) *mqttProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &mqttProxy{t: t, ln: ln, broker: broker}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.accept()
	return p
}

func (p *mqttProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		broker, err := net.Dial("tcp", p.broker)
		if err != nil {
			client.Close()
			continue
		}
		c := &proxiedConn{client: client, broker: broker, unacked: map[uint16]bool{}}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		n := len(p.conns)
		p.mu.Unlock()
		go p.pipe(c, n, broker, client, true)
		go p.pipe(c, n, client, broker, false)
	}
}

// pipe copies packets from src to dst; down is the broker-to-client way.
func (p *mqttProxy) pipe(c *proxiedConn, n int, src, dst net.Conn, down bool) {
	defer src.Close()
	defer dst.Close()
	r := bufio.NewReader(src)
	for {
		raw, err := readMQTTPacket(r)
		if err != nil {
			return
		}
		kind := raw[0] >> 4
		p.mu.Lock()
		switch {
		case down && kind == 3 && (raw[0]>>1)&3 == 1: // PUBLISH, QoS 1
			body := mqttBody(raw)
			topicLen := int(body[0])<<8 | int(body[1])
			id := uint16(body[2+topicLen])<<8 | uint16(body[3+topicLen])
			c.unacked[id] = true // before the client can see it
		case !down && kind == 4: // PUBACK
			body := mqttBody(raw)
			id := uint16(body[0])<<8 | uint16(body[1])
			if !c.unacked[id] {
				p.wrong = append(p.wrong, fmt.Sprintf("connection %d: PUBACK %d for no publish of its own", n, id))
			}
			delete(c.unacked, id)
			c.acks++
		}
		p.mu.Unlock()
		if _, err := dst.Write(raw); err != nil {
			return
		}
	}
}

// cut closes every connection, as a network failure would.
func (p *mqttProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.client.Close()
		c.broker.Close()
	}
}

// readMQTTPacket returns one whole packet: fixed header, length, body.
func readMQTTPacket(r *bufio.Reader) ([]byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	raw := []byte{first}
	length, shift := 0, 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		raw = append(raw, b)
		length |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			break
		}
		if shift += 7; shift > 21 {
			return nil, errors.New("bad remaining length")
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(raw, body...), nil
}

// mqttBody returns the packet's bytes after its fixed header.
func mqttBody(raw []byte) []byte {
	i := 1
	for raw[i]&0x80 != 0 {
		i++
	}
	return raw[i+1:]
}

// A message's PUBACK goes out on the connection the message came in on, or
// not at all: when that connection breaks while the message is being
// written, the ack is dropped, the broker delivers the message again on the
// next connection, and that delivery is stored and acknowledged there.
func TestSubscriberAcksOnlyOnTheConnectionOfTheMessage(t *testing.T) {
	brokerURL := testenv.Mosquitto(t)
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newMQTTProxy(t, u.Host)
	prefix := fmt.Sprintf("reconnect-test-%d", time.Now().UnixNano())

	// The first write waits until the connection it came from is gone.
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	stored := map[float64]int{}
	w := writerFunc(func(_ context.Context, samples []proactive.Sample, _ []proactive.DeviceStatus) error {
		once.Do(func() { close(entered); <-release })
		mu.Lock()
		defer mu.Unlock()
		for _, s := range samples {
			stored[s.Metrics["n"]]++
		}
		return nil
	})
	in, _ := newIngester(t, ingest.Options{Writer: w, TopicPrefix: prefix})
	mustRun(t, in)
	sub, err := ingest.NewSubscriber(in, ingest.SubscriberOptions{URL: "mqtt://" + proxy.ln.Addr().String(), ClientID: prefix + "-ingest"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.Eventually(t, 0, sub.Ready)

	dev := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID(prefix + "-dev").SetCleanSession(true))
	if tok := dev.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { dev.Disconnect(50) })
	const n = 20
	for i := range n {
		tok := dev.Publish(prefix+"/pump-1/telemetry", 1, false, fmt.Sprintf(`{"metrics": {"n": %d}}`, i))
		if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	select {
	case <-entered:
	case <-time.After(waitLimit):
		t.Fatal("no write began")
	}
	proxy.cut()
	testenv.Eventually(t, 0, func() error {
		proxy.mu.Lock()
		conns := len(proxy.conns)
		proxy.mu.Unlock()
		if conns < 2 {
			return errors.New("the subscriber has not reconnected")
		}
		return sub.Ready()
	})
	close(release) // the first write succeeds after its connection is gone

	testenv.Eventually(t, 0, func() error {
		mu.Lock()
		got := len(stored)
		mu.Unlock()
		if got != n {
			return fmt.Errorf("%d of %d messages stored", got, n)
		}
		proxy.mu.Lock()
		defer proxy.mu.Unlock()
		last := proxy.conns[len(proxy.conns)-1]
		if len(last.unacked) > 0 || last.acks == 0 {
			return fmt.Errorf("on the last connection %d publishes unacknowledged, %d acks", len(last.unacked), last.acks)
		}
		return nil
	})
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	for _, w := range proxy.wrong {
		t.Error(w)
	}
	if first := proxy.conns[0]; first.acks != 0 {
		t.Errorf("%d acks on the first connection, whose only write ended after it broke", first.acks)
	}
}

// storedNs records the metric n of every sample written: a writer for the
// subscriber tests, which tell their messages apart by n.
type storedNs struct {
	mu sync.Mutex
	ns map[float64]bool
}

func (s *storedNs) writer() ingest.Writer {
	return writerFunc(func(_ context.Context, samples []proactive.Sample, _ []proactive.DeviceStatus) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.ns == nil {
			s.ns = map[float64]bool{}
		}
		for _, smp := range samples {
			s.ns[smp.Metrics["n"]] = true
		}
		return nil
	})
}

func (s *storedNs) has(n float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ns[n]
}

// publishQoS1 publishes payloads in order to topic on brokerURL as a
// device would, each acknowledged by the broker.
func publishQoS1(t *testing.T, brokerURL, clientID, topic string, payloads ...string) {
	t.Helper()
	dev := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID(clientID))
	if tok := dev.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer dev.Disconnect(50)
	for _, p := range payloads {
		if tok := dev.Publish(topic, 1, false, p); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
}

// startSubscriber runs a subscriber with opts against an ingester storing
// into w, and returns it with the ingester and its log.
func startSubscriber(t *testing.T, prefix string, w ingest.Writer, opts ingest.SubscriberOptions) (*ingest.Subscriber, *ingest.Ingester, *testenv.Buffer) {
	t.Helper()
	in, _ := newIngester(t, ingest.Options{Writer: w, TopicPrefix: prefix})
	mustRun(t, in)
	logs := &testenv.Buffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	sub, err := ingest.NewSubscriber(in, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return sub, in, logs
}

// waitLog waits until the log holds want.
func waitLog(t *testing.T, logs *testenv.Buffer, want string) {
	t.Helper()
	testenv.Eventually(t, 0, func() error {
		if !strings.Contains(logs.String(), want) {
			return fmt.Errorf("log has no %q:\n%s", want, logs.String())
		}
		return nil
	})
}

// A broker that stops answering (its process frozen, the TCP connection
// still open) is noticed within two keepalives: the subscriber reports not
// ready, says why, and is back once the broker answers again, with the
// messages published meanwhile stored.
func TestSubscriberNoticesASilentBroker(t *testing.T) {
	m := testenv.RestartableMosquitto(t, "listener {{port}} 127.0.0.1\nallow_anonymous true")
	if m == nil {
		return
	}
	broker := fmt.Sprintf("127.0.0.1:%d", m.Port)
	prefix := fmt.Sprintf("silent-%d", time.Now().UnixNano())
	var stored storedNs
	sub, _, logs := startSubscriber(t, prefix, stored.writer(), ingest.SubscriberOptions{
		URL: "mqtt://" + broker, ClientID: prefix + "-ingest", KeepAlive: time.Second,
	})
	testenv.Eventually(t, 0, sub.Ready)

	m.Freeze(t)
	testenv.Eventually(t, 0, func() error {
		if sub.Ready() == nil {
			return errors.New("still ready with the broker frozen")
		}
		return nil
	})
	waitLog(t, logs, "no answer from the broker within 1s")

	m.Thaw(t)
	testenv.Eventually(t, 0, sub.Ready)
	publishQoS1(t, "tcp://"+broker, prefix+"-dev", prefix+"/pump-1/telemetry", `{"metrics": {"n": 7}}`)
	testenv.Eventually(t, 0, func() error {
		if !stored.has(7) {
			return errors.New("the message published after the thaw is not stored")
		}
		return nil
	})
}

// A broker that refuses the credentials leaves the subscriber not ready,
// retrying, with the broker's reason in the log and never the password.
func TestSubscriberRefusedCredentials(t *testing.T) {
	pw := testenv.MosquittoPasswordFile(t, "ingest", "right-horse-battery")
	if pw == "" {
		return
	}
	port := testenv.PrivateMosquitto(t, "listener {{port}} 127.0.0.1\nallow_anonymous false\npassword_file "+pw)
	if port == 0 {
		return
	}
	prefix := fmt.Sprintf("refused-%d", time.Now().UnixNano())
	w := writerFunc(func(context.Context, []proactive.Sample, []proactive.DeviceStatus) error { return nil })
	const wrong = "wrong-staple-secret"
	sub, _, logs := startSubscriber(t, prefix, w, ingest.SubscriberOptions{
		URL: fmt.Sprintf("mqtt://ingest:%s@127.0.0.1:%d", wrong, port), ClientID: prefix + "-ingest",
	})
	waitLog(t, logs, "broker refused the connection: Connection Refused: Not Authorised")
	if sub.Ready() == nil {
		t.Error("ready although the broker refused the connection")
	}
	if strings.Contains(logs.String(), wrong) {
		t.Errorf("the password is in the log:\n%s", logs.String())
	}
}

// A subscription the broker's ACL refuses (SUBACK 0x80) is a failed
// connection, not a silent one: not ready, and the log names the topic.
// The broker is mochi with an ACL (Mosquitto 2.0 grants such a subscription
// and then delivers nothing).
func TestSubscriberRefusedSubscription(t *testing.T) {
	prefix := fmt.Sprintf("denied-%d", time.Now().UnixNano())
	broker := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	err := broker.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{
		Auth: auth.AuthRules{{Allow: true}},
		ACL:  auth.ACLRules{{Filters: auth.Filters{auth.RString(prefix + "/#"): auth.Deny}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := broker.AddListener(listeners.NewNet("acl", ln)); err != nil {
		t.Fatal(err)
	}
	if err := broker.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	w := writerFunc(func(context.Context, []proactive.Sample, []proactive.DeviceStatus) error { return nil })
	sub, _, logs := startSubscriber(t, prefix, w, ingest.SubscriberOptions{
		URL: "mqtt://" + ln.Addr().String(), ClientID: prefix + "-ingest",
	})
	waitLog(t, logs, "broker refused the subscription to "+prefix+"/+/telemetry")
	if sub.Ready() == nil {
		t.Error("ready although the broker refused the subscriptions")
	}
}

// A publish far past MaxPayload (Mosquitto sets no size limit by default)
// is not held whole: its payload is discarded as it is read, the message
// is dead-lettered with its size and acknowledged, and the next one is
// stored.
func TestSubscriberDiscardsAnOversizedPublish(t *testing.T) {
	brokerURL := testenv.Mosquitto(t)
	prefix := fmt.Sprintf("oversize-%d", time.Now().UnixNano())
	var stored storedNs
	sub, in, _ := startSubscriber(t, prefix, stored.writer(), ingest.SubscriberOptions{URL: brokerURL, ClientID: prefix + "-ingest"})
	testenv.Eventually(t, 0, sub.Ready)

	huge := fmt.Sprintf(`{"metrics": {"n": 1, "pad": "%s"}}`, strings.Repeat("x", 300_000))
	publishQoS1(t, brokerURL, prefix+"-dev", prefix+"/pump-1/telemetry", huge, `{"metrics": {"n": 2}}`)
	testenv.Eventually(t, 0, func() error {
		if !stored.has(2) {
			return errors.New("the message after the oversized one is not stored")
		}
		return nil
	})
	want := fmt.Sprintf("payload is %d bytes, the limit is %d", len(huge), ingest.MaxPayload)
	var found bool
	for _, dl := range in.DeadLetters().Recent(10) {
		if dl.Reason == ingest.ReasonTooLarge && dl.Detail == want && dl.Device == "pump-1" {
			found = true
		}
	}
	if !found {
		t.Errorf("no dead letter %q for pump-1 in %+v", want, in.DeadLetters().Recent(10))
	}
	if stored.has(1) {
		t.Error("the oversized message was stored")
	}
}
