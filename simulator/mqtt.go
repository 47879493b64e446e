package simulator

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// publisher is the fleet's MQTT connections: one per device, or a few that
// the devices share.
type publisher struct {
	s       *Simulator
	conns   []*conn
	perDev  bool
	online  []bool // by device, for the offline statuses at the end
	buf     []byte
	closing sync.Once
}

// conn is one MQTT connection and the acknowledgements it waits for: the
// bounded channel holds the unacknowledged publishes, so that a full window
// makes publish wait (backpressure) rather than queue without end.
//
// The simulator, not paho, recovers a lost connection. With paho's own
// reconnection (a persistent session, auto-reconnect) a publish's token can
// report success when the message was only stored for resending, or never
// complete at all, and a run waiting on one stalled for good (issue 18,
// item 11). Here paho runs with a clean session and no auto-reconnect, so
// every token completes, with an error when the connection goes; the
// collector then dials again and publishes the message anew, up to
// maxAttempts times, and counts it failed past them (a broker that drops
// the connection at each attempt) or when the run is stopped.
type conn struct {
	s        *Simulator
	i        int
	perDev   bool
	dialMu   sync.Mutex  // one reconnection at a time
	mu       sync.Mutex  // guards c, never held over I/O
	c        paho.Client // the current connection; replaced by reconnect
	inflight chan pending
	done     chan struct{}
	stop     chan struct{} // closed when the run gives up waiting
}

// pending is a publish waiting for its acknowledgement, with what it takes
// to publish it again.
type pending struct {
	tok     paho.Token
	topic   string
	payload []byte
}

// maxAttempts bounds how many connections one message is published on.
const maxAttempts = 5

// errStopped fails the publishes still unacknowledged when the run stops
// waiting for them.
var errStopped = errors.New("not acknowledged before the simulator stopped")

// connect opens the connections.
func (s *Simulator) connect(ctx context.Context) (*publisher, error) {
	p := &publisher{s: s, perDev: s.o.Connections == len(s.ids)}
	p.conns = make([]*conn, s.o.Connections)
	var wg sync.WaitGroup
	errs := make([]error, len(p.conns))
	sem := make(chan struct{}, 32)
	for i := range p.conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c := &conn{s: s, i: i, perDev: p.perDev, inflight: make(chan pending, s.o.MaxInflight),
				done: make(chan struct{}), stop: make(chan struct{})}
			if c.c, errs[i] = s.dial(ctx, i, p.perDev); errs[i] == nil {
				p.conns[i] = c
				s.connected.Add(1)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		p.disconnect()
		return nil, err
	}
	for _, c := range p.conns {
		go c.collect()
	}
	return p, nil
}

// announce publishes every device's online status.
func (p *publisher) announce(ctx context.Context) error {
	for i, id := range p.s.ids {
		if err := p.publish(ctx, &Message{Device: id, Status: true, Online: true, dev: i}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Simulator) dial(ctx context.Context, i int, perDev bool) (paho.Client, error) {
	id := fmt.Sprintf("%s-%d", s.o.ClientID, i+1)
	opts := paho.NewClientOptions().AddBroker(s.o.Broker).
		SetCleanSession(true).SetAutoReconnect(false). // conn recovers lost connections: see conn
		SetProtocolVersion(4).                         // 3.1.1: without it paho retries a refused connect as 3.1
		SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).SetOrderMatters(false)
	if perDev {
		id = s.ids[i]
		opts.SetWill(s.o.TopicPrefix+"/"+id+"/status", `{"online":false}`, 1, false)
	}
	opts.SetClientID(id)
	if secret, ok := s.o.Credentials[id]; ok && perDev {
		opts.SetUsername(id).SetPassword(secret)
	} else if s.o.Username != "" {
		opts.SetUsername(s.o.Username).SetPassword(s.o.Password)
	}
	if s.o.TLS != nil {
		opts.SetTLSConfig(s.o.TLS)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		c.Disconnect(0)
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("connect %s to %s: %w", id, redact(s.o.Broker), err)
	}
	return c, nil
}

// client returns the current connection.
func (c *conn) client() paho.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c
}

// collect waits for the acknowledgements of c's publishes, in order, until
// its inflight channel is closed and empty, and publishes again those a
// lost connection took.
func (c *conn) collect() {
	defer close(c.done)
	for p := range c.inflight {
		for attempt := 1; ; attempt++ {
			err := c.wait(p.tok)
			if err == nil {
				c.s.acked.Add(1)
				break
			}
			if errors.Is(err, errStopped) || attempt == maxAttempts {
				c.s.recordErr(fmt.Errorf("publish to %s (%d attempts): %w", p.topic, attempt, err))
				break
			}
			cl, rerr := c.reconnect()
			if rerr != nil {
				c.s.recordErr(fmt.Errorf("publish to %s: %w (then %w)", p.topic, err, rerr))
				break
			}
			p.tok = cl.Publish(p.topic, 1, false, p.payload)
		}
	}
}

// wait returns tok's error once it completes, or errStopped.
func (c *conn) wait(tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-c.stop:
		select {
		case <-tok.Done():
			return tok.Error()
		default:
			return errStopped
		}
	}
}

// reconnect replaces a lost connection with a new one, trying again with
// a growing delay (up to 5 s) until it succeeds or the run stops. A
// connection still open is kept.
func (c *conn) reconnect() (paho.Client, error) {
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	old := c.client()
	if old.IsConnectionOpen() {
		return old, nil
	}
	old.Disconnect(0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	delay := 100 * time.Millisecond
	for {
		cl, err := c.s.dial(ctx, c.i, c.perDev)
		if err == nil {
			c.mu.Lock()
			c.c = cl
			c.mu.Unlock()
			c.s.reconnects.Add(1)
			c.s.log.Warn("mqtt connection lost; reconnected", "connection", c.i+1)
			if c.perDev {
				// The broker published the device's will (offline) when the
				// connection dropped: say it is back, as a device would.
				m := Message{Device: c.s.ids[c.i], Status: true, Online: true}
				cl.Publish(m.Topic(c.s.o.TopicPrefix), 1, false, m.AppendPayload(nil))
			}
			return cl, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reconnect: %w", errStopped)
		}
		c.s.log.Warn("mqtt connection lost; reconnecting", "connection", c.i+1, "retry_in", delay, "err", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, fmt.Errorf("reconnect: %w", errStopped)
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// publish sends m with QoS 1 on its device's connection. It waits while the
// connection has MaxInflight publishes unacknowledged, or until ctx ends.
func (p *publisher) publish(ctx context.Context, m *Message) error {
	c := p.conns[m.dev%len(p.conns)]
	p.buf = m.AppendPayload(p.buf[:0])
	payload := make([]byte, len(p.buf))
	copy(payload, p.buf)
	topic := m.Topic(p.s.o.TopicPrefix)
	// On a lost connection the token fails at once, and the collector
	// publishes it again once reconnected.
	tok := c.client().Publish(topic, 1, false, payload)
	select {
	case c.inflight <- pending{tok: tok, topic: topic, payload: payload}:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.s.sent.Add(1)
	return nil
}

// close waits up to d for the acknowledgements, publishes the offline
// status of every device still online, and disconnects. Past d it stops
// waiting, whatever is in flight (a broker that stopped acknowledging, a
// connection that cannot be made again), and counts what was not
// acknowledged as failed.
func (p *publisher) close(d time.Duration) error {
	var err error
	p.closing.Do(func() {
		deadline := time.Now().Add(d)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		for i, id := range p.s.ids {
			if p.online != nil && !p.online[i] {
				continue
			}
			if ctx.Err() != nil || p.publish(ctx, &Message{Device: id, Status: true, dev: i}) != nil {
				err = fmt.Errorf("offline statuses from %s on not sent within %s (the drain timeout)", id, d)
				break
			}
		}
		for _, c := range p.conns {
			close(c.inflight)
		}
		timeout := time.NewTimer(time.Until(deadline))
		defer timeout.Stop()
	wait:
		for _, c := range p.conns {
			select {
			case <-c.done:
			case <-timeout.C:
				if n := p.s.sent.Load() - p.s.acked.Load() - p.s.failed.Load(); err == nil && n > 0 {
					err = fmt.Errorf("%d publishes not acknowledged within %s", n, d)
				}
				break wait
			}
		}
		// The collectors give up on what is left, at once.
		for _, c := range p.conns {
			close(c.stop)
		}
		for _, c := range p.conns {
			<-c.done
		}
		p.disconnect()
	})
	return err
}

func (p *publisher) disconnect() {
	var wg sync.WaitGroup
	for _, c := range p.conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.client().Disconnect(250)
		}()
	}
	wg.Wait()
}

// redact hides the password of a URL for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "[unparseable url]"
	}
	return u.Redacted()
}
