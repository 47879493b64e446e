package ingest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

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
