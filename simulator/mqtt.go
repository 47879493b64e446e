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
// bounded channel holds the tokens of unacknowledged publishes, so that a
// full window makes publish wait (backpressure) rather than queue without
// end.
type conn struct {
	c        paho.Client
	inflight chan paho.Token
	done     chan struct{}
}

// connect opens the connections, and for each device publishes its online
// status.
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
			p.conns[i], errs[i] = s.dial(ctx, i, p.perDev)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		p.disconnect()
		return nil, err
	}
	for _, c := range p.conns {
		go c.collect(s)
	}
	for i, id := range s.ids {
		if err := p.publish(ctx, &Message{Device: id, Status: true, Online: true, dev: i}); err != nil {
			_ = p.close(time.Second)
			return nil, err
		}
	}
	return p, nil
}

func (s *Simulator) dial(ctx context.Context, i int, perDev bool) (*conn, error) {
	id := fmt.Sprintf("%s-%d", s.o.ClientID, i+1)
	opts := paho.NewClientOptions().AddBroker(s.o.Broker).
		SetCleanSession(false). // in-flight publishes are resent after a reconnect
		SetProtocolVersion(4).  // 3.1.1: without it paho retries a refused connect as 3.1
		SetAutoReconnect(true).SetMaxReconnectInterval(5 * time.Second).
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
	s.connected.Add(1)
	return &conn{c: c, inflight: make(chan paho.Token, s.o.MaxInflight), done: make(chan struct{})}, nil
}

// collect waits for the acknowledgements of c's publishes, in order, until
// its inflight channel is closed and empty.
func (c *conn) collect(s *Simulator) {
	defer close(c.done)
	for tok := range c.inflight {
		tok.Wait()
		if err := tok.Error(); err != nil {
			s.recordErr(err)
		} else {
			s.acked.Add(1)
		}
	}
}

// publish sends m with QoS 1 on its device's connection. It waits while the
// connection has MaxInflight publishes unacknowledged, or until ctx ends.
func (p *publisher) publish(ctx context.Context, m *Message) error {
	c := p.conns[m.dev%len(p.conns)]
	p.buf = m.AppendPayload(p.buf[:0])
	payload := make([]byte, len(p.buf))
	copy(payload, p.buf)
	tok := c.c.Publish(m.Topic(p.s.o.TopicPrefix), 1, false, payload)
	select {
	case c.inflight <- tok:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.s.sent.Add(1)
	return nil
}

// close waits up to d for the acknowledgements, publishes the offline
// status of every device still online, and disconnects.
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
			if e := p.publish(ctx, &Message{Device: id, Status: true, dev: i}); e != nil {
				err = fmt.Errorf("offline status of %s: %w", id, e)
				break
			}
		}
		for _, c := range p.conns {
			close(c.inflight)
		}
		for _, c := range p.conns {
			if !c.c.IsConnectionOpen() {
				continue // a lost connection acknowledges nothing more: do not wait for it
			}
			select {
			case <-c.done:
			case <-time.After(time.Until(deadline)):
				if err == nil {
					err = fmt.Errorf("%d publishes not acknowledged within %s", p.s.sent.Load()-p.s.acked.Load()-p.s.failed.Load(), d)
				}
			}
		}
		p.disconnect()
		// Disconnecting fails the publishes still unacknowledged, which
		// ends the collectors; one second for all of them.
		wait, stop := context.WithTimeout(context.Background(), time.Second)
		defer stop()
		for _, c := range p.conns {
			select {
			case <-c.done:
			case <-wait.Done():
			}
		}
		if n := p.s.sent.Load() - p.s.acked.Load() - p.s.failed.Load(); n > 0 && err == nil {
			err = fmt.Errorf("%d publishes not acknowledged (the connection was lost)", n)
		}
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
			c.c.Disconnect(250)
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
