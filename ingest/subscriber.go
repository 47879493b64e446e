package ingest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// SubscriberOptions configure the connection to an external broker.
type SubscriberOptions struct {
	// URL is mqtt://host:port, tcp://host:port or mqtts://host:port (TLS).
	// User information in the URL is used when Username is empty.
	URL string
	// ClientID must stay the same across restarts: the broker keeps the
	// session, and the messages not yet acknowledged, under it.
	ClientID           string
	Username, Password string
	TLS                *tls.Config
	// KeepAlive defaults to 30s.
	KeepAlive time.Duration
	// SharedGroup, when set, subscribes through the MQTT shared
	// subscription $share/SharedGroup/..., so that the instances of one
	// group split the device messages between them instead of each getting
	// all of them. Which instance gets a device's messages is the broker's
	// strategy (see docs/scaling.md: rules need per-device affinity).
	SharedGroup string
	Logger      *slog.Logger
}

// Timings of the subscriber's session. Reconnecting starts after
// subscriberRetryMin and doubles up to subscriberRetryMax while the broker
// cannot be reached.
const (
	subscriberConnectTimeout   = 30 * time.Second
	subscriberSubscribeTimeout = 10 * time.Second
	subscriberRetryMin         = time.Second
	subscriberRetryMax         = 10 * time.Second
)

// Subscriber consumes device topics from an external broker with a
// persistent session and manual acknowledgement: a message is acknowledged
// only once the ingester has stored it.
//
// It speaks MQTT 3.1.1 itself, with paho's packet codec for everything but
// the hot path: one goroutine reads each PUBLISH from a buffered connection
// and hands it to the ingester, and the PUBACK goes out on that same
// connection once the message is stored (or is dropped with it). paho's
// client took three goroutine handoffs a message (reader, router, handler)
// and a store entry, which were a third of the platform's CPU per message
// through Mosquitto.
type Subscriber struct {
	opts      SubscriberOptions
	broker    *url.URL // scheme and host only, for dialling and logs
	topics    []string
	in        *Ingester
	log       *slog.Logger
	connected atomic.Bool
}

// NewSubscriber validates the options; Run connects.
func NewSubscriber(in *Ingester, opts SubscriberOptions) (*Subscriber, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("mqtt url: %w", err)
	}
	switch u.Scheme {
	case "mqtt", "tcp", "mqtts", "ssl", "tls":
	default:
		return nil, fmt.Errorf("mqtt url %q: scheme must be mqtt, tcp or mqtts", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("mqtt url %q has no host", u.Redacted())
	}
	if opts.Username == "" && u.User != nil {
		opts.Username = u.User.Username()
		opts.Password, _ = u.User.Password()
	}
	if opts.ClientID == "" {
		opts.ClientID = "proactive-ingest"
	}
	if opts.SharedGroup != "" && strings.ContainsAny(opts.SharedGroup, "/+#") {
		return nil, fmt.Errorf("mqtt shared group %q: no /, + or # in a share name", opts.SharedGroup)
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 30 * time.Second
	}
	if opts.KeepAlive/time.Second > 0xffff {
		return nil, fmt.Errorf("mqtt keepalive %s: at most 18h12m15s", opts.KeepAlive)
	}
	if opts.Logger == nil {
		opts.Logger = in.opts.Logger
	}
	share := ""
	if opts.SharedGroup != "" {
		share = "$share/" + opts.SharedGroup + "/"
	}
	topics := []string{
		share + in.TopicPrefix() + "/+/telemetry",
		share + in.TopicPrefix() + "/+/status",
		share + in.TopicPrefix() + "/+/events",
	}
	return &Subscriber{
		opts: opts, broker: &url.URL{Scheme: u.Scheme, Host: u.Host}, topics: topics,
		in: in, log: opts.Logger.With("component", "mqtt"),
	}, nil
}

// Ready reports nil while the subscriber is connected.
func (s *Subscriber) Ready() error {
	if !s.connected.Load() {
		return errors.New("not connected to the mqtt broker")
	}
	return nil
}

// Run connects (retrying until it succeeds), subscribes on every connect, and
// feeds the ingester until ctx is cancelled.
func (s *Subscriber) Run(ctx context.Context) error {
	wait := subscriberRetryMin
	for ctx.Err() == nil {
		up, err := s.session(ctx)
		if up {
			s.connected.Store(false)
			s.in.intake(false)
		}
		if ctx.Err() != nil {
			break
		}
		if up {
			wait = subscriberRetryMin
			s.log.Warn("lost mqtt connection; reconnecting", "err", err)
		} else {
			s.log.Warn("cannot connect to mqtt broker; retrying", "broker", s.broker.String(), "err", err, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if !up {
			wait = min(2*wait, subscriberRetryMax)
		}
	}
	// Acks still pending are lost with the connection; the broker resends
	// those messages to our session next time, so nothing is dropped.
	return nil
}

// session is one connection: connect, subscribe, then hand every message to
// the ingester until the connection ends. up reports whether the broker
// took the subscriptions (the subscriber was ready).
func (s *Subscriber) session(ctx context.Context) (up bool, err error) {
	conn, err := openBufferedConn(ctx, s.broker, s.opts.TLS, subscriberConnectTimeout)
	if err != nil {
		return false, err
	}
	ss := &mqttSession{conn: conn}
	// Cancelling ctx says goodbye after the acks already queued and closes
	// the connection, which ends the read below.
	stop := context.AfterFunc(ctx, func() {
		_, _ = conn.Write([]byte{packets.Disconnect << 4, 0})
		ss.fail(context.Canceled)
	})
	defer stop()
	defer ss.fail(errors.New("session ended"))

	if err := s.connect(conn); err != nil {
		return false, err
	}
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.MessageID = 1
	sub.Topics = s.topics
	sub.Qoss = []byte{1, 1, 1}
	if err := sub.Write(conn); err != nil {
		return false, err
	}
	// The broker may resend the session's unacknowledged messages before
	// its SUBACK: the loop takes both.
	done, subacked := make(chan struct{}), make(chan struct{})
	defer close(done)
	go ss.awaitSuback(subscriberSubscribeTimeout, subacked, done)
	go ss.ping(s.opts.KeepAlive, done)

	err = ss.read(func(suback *packets.SubackPacket) error {
		if up {
			return errors.New("mqtt: a second SUBACK")
		}
		close(subacked)
		for i, code := range suback.ReturnCodes {
			if code > 2 && i < len(s.topics) {
				return fmt.Errorf("broker refused the subscription to %s", s.topics[i])
			}
		}
		up = true
		s.connected.Store(true)
		s.in.intake(true)
		s.log.Info("connected to mqtt broker", "broker", s.broker.String(), "client_id", s.opts.ClientID, "shared_group", s.opts.SharedGroup)
		return nil
	}, func(m Message) {
		// Blocks while the ingester's queue is full; the broker then holds
		// the rest, which is the backpressure we want.
		_ = s.in.Handle(ctx, m)
	})
	return up, ss.cause(err)
}

// connect sends CONNECT with a persistent session and waits for the CONNACK.
func (s *Subscriber) connect(conn *bufferedConn) error {
	c := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	c.ProtocolName, c.ProtocolVersion = "MQTT", 4
	c.CleanSession = false
	c.Keepalive = uint16(s.opts.KeepAlive / time.Second)
	c.ClientIdentifier = s.opts.ClientID
	if s.opts.Username != "" {
		c.UsernameFlag, c.Username = true, s.opts.Username
	}
	if s.opts.Password != "" {
		c.PasswordFlag, c.Password = true, []byte(s.opts.Password)
	}
	if err := c.Write(conn); err != nil {
		return err
	}
	if err := conn.SetReadDeadline(time.Now().Add(subscriberConnectTimeout)); err != nil {
		return err
	}
	first, err := conn.r.ReadByte()
	if err != nil {
		return fmt.Errorf("waiting for CONNACK: %w", err)
	}
	length, err := readRemaining(conn.r)
	if err != nil {
		return fmt.Errorf("waiting for CONNACK: %w", err)
	}
	if first>>4 != packets.Connack || length != 2 {
		return fmt.Errorf("broker answered CONNECT with %s of %d bytes", packets.PacketNames[first>>4], length)
	}
	var body [2]byte
	if _, err := io.ReadFull(conn.r, body[:]); err != nil {
		return fmt.Errorf("waiting for CONNACK: %w", err)
	}
	if code := body[1]; code != packets.Accepted {
		reason := packets.ConnackReturnCodes[code]
		if reason == "" {
			reason = fmt.Sprintf("code %d", code)
		}
		return fmt.Errorf("broker refused the connection: %s", reason)
	}
	return conn.SetReadDeadline(time.Time{})
}

// mqttSession is the state of one connection shared by its reader and its
// pinger.
type mqttSession struct {
	conn *bufferedConn
	// progress counts packets read and messages handled: the pinger sees
	// the connection alive while it moves.
	progress atomic.Uint64
	// handling is set while the reader waits for the ingester: a reader
	// held by backpressure reads no PINGRESP, and that is no dead broker.
	handling atomic.Bool

	once sync.Once
	err  error
}

// fail records why the session ends, the first reason only, and closes the
// connection.
func (ss *mqttSession) fail(err error) {
	ss.once.Do(func() {
		ss.err = err
		_ = ss.conn.Close()
	})
}

// cause is the reason the session ended: the one given to fail if the read
// error came from the close.
func (ss *mqttSession) cause(readErr error) error {
	ss.fail(readErr)
	return ss.err
}

// awaitSuback ends the session when the SUBACK has not come within
// timeout. A reader held by the ingester's backpressure (InfluxDB down) or
// still reading the session's backlog, which the broker sends first, has
// not read it yet, which is no reason to drop the connection: the wait
// starts again.
func (ss *mqttSession) awaitSuback(timeout time.Duration, subacked, done <-chan struct{}) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	var seen uint64
	for {
		select {
		case <-subacked:
			return
		case <-done:
			return
		case <-t.C:
		}
		// A reader still taking the session's backlog has not come to the
		// SUBACK yet either.
		n := ss.progress.Load()
		if !ss.handling.Load() && n == seen {
			ss.fail(fmt.Errorf("no SUBACK within %s", timeout))
			return
		}
		seen = n
		t.Reset(timeout)
	}
}

// ping sends a PINGREQ every keepalive and ends the session when nothing
// was read for a whole interval after one, unless the reader was held by
// the ingester meanwhile.
func (ss *mqttSession) ping(keepalive time.Duration, done <-chan struct{}) {
	t := time.NewTicker(keepalive)
	defer t.Stop()
	var seen uint64
	pinged := false
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		n := ss.progress.Load()
		if pinged && n == seen && !ss.handling.Load() {
			ss.fail(fmt.Errorf("no answer from the broker within %s", keepalive))
			return
		}
		seen = n
		if _, err := ss.conn.Write([]byte{packets.Pingreq << 4, 0}); err != nil {
			// The connection cannot write: no ack would leave either.
			ss.fail(fmt.Errorf("writing to the broker: %w", err))
			return
		}
		pinged = true
	}
}

// read takes packets until the connection fails: each PUBLISH goes to
// handle, with its acknowledgement in Ack, and the SUBACK to suback.
func (ss *mqttSession) read(suback func(*packets.SubackPacket) error, handle func(Message)) error {
	r := ss.conn.r
	for {
		first, err := r.ReadByte()
		if err != nil {
			return err
		}
		length, err := readRemaining(r)
		if err != nil {
			return err
		}
		if first>>4 == packets.Publish && length > maxPublishBody {
			m, id, qos, err := readOversize(r, first, length)
			if err != nil {
				return err
			}
			ss.progress.Add(1)
			ss.deliver(m, id, qos, handle)
			continue
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		ss.progress.Add(1)
		kind := first >> 4
		if kind != packets.Publish {
			if err := ss.control(first, body, suback); err != nil {
				return err
			}
			continue
		}
		m, id, qos, err := parsePublish(first, body)
		if err != nil {
			return err
		}
		ss.deliver(m, id, qos, handle)
	}
}

// deliver hands m to the ingester, its acknowledgement bound to this
// connection.
func (ss *mqttSession) deliver(m Message, id uint16, qos byte, handle func(Message)) {
	if qos == 1 {
		conn := ss.conn
		m.Ack = func() { conn.puback(id) }
	}
	m.Received = time.Now()
	ss.handling.Store(true)
	handle(m)
	ss.handling.Store(false)
	ss.progress.Add(1)
}

// maxPublishBody is the largest PUBLISH the subscriber reads whole: the
// longest topic MQTT allows, a packet id and MaxPayload. Past it the
// payload is too large whatever the topic, and is discarded as it is read
// (a broker without a message size limit would otherwise make us hold
// whatever a device sent).
const maxPublishBody = 2 + 0xffff + 2 + MaxPayload

// readOversize reads a PUBLISH past maxPublishBody: its topic and packet
// id, discarding the payload, which the ingester dead-letters by its size.
func readOversize(r *bufio.Reader, first byte, length int) (m Message, id uint16, qos byte, err error) {
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return m, 0, 0, err
	}
	n := int(head[0])<<8 | int(head[1])
	if (first>>1)&3 > 0 {
		n += 2
	}
	// length > maxPublishBody: the topic and id always fit in it.
	rest := make([]byte, n)
	if _, err := io.ReadFull(r, rest); err != nil {
		return m, 0, 0, err
	}
	m, id, qos, err = parsePublish(first, append(head[:], rest...))
	if err != nil {
		return m, 0, 0, err
	}
	m.tooLarge = length - 2 - n
	if _, err := io.CopyN(io.Discard, r, int64(m.tooLarge)); err != nil {
		return m, 0, 0, err
	}
	return m, id, qos, nil
}

// control handles a packet other than PUBLISH.
func (ss *mqttSession) control(first byte, body []byte, suback func(*packets.SubackPacket) error) error {
	switch first >> 4 {
	case packets.Suback:
		if len(body) < 2 {
			return errors.New("mqtt: short SUBACK")
		}
		return suback(&packets.SubackPacket{MessageID: uint16(body[0])<<8 | uint16(body[1]), ReturnCodes: body[2:]})
	case packets.Pingresp:
		return nil // progress was counted
	default:
		return fmt.Errorf("mqtt: unexpected %s from the broker", packets.PacketNames[first>>4])
	}
}

// readRemaining decodes a packet's remaining length.
func readRemaining(r io.ByteReader) (int, error) {
	n, shift := 0, 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			return n, nil
		}
		if shift += 7; shift > 21 {
			return 0, errors.New("mqtt: malformed remaining length")
		}
	}
}

// parsePublish reads a PUBLISH's topic, packet id and payload; the payload
// shares body.
func parsePublish(first byte, body []byte) (m Message, id uint16, qos byte, err error) {
	qos = (first >> 1) & 3
	if qos > 1 {
		// Our subscriptions are QoS 1: a broker may not send more.
		return m, 0, 0, fmt.Errorf("mqtt: PUBLISH with QoS %d on a QoS 1 subscription", qos)
	}
	if len(body) < 2 {
		return m, 0, 0, errors.New("mqtt: short PUBLISH")
	}
	end := 2 + (int(body[0])<<8 | int(body[1]))
	if qos > 0 {
		end += 2
	}
	if end > len(body) {
		return m, 0, 0, errors.New("mqtt: PUBLISH shorter than its topic")
	}
	if qos > 0 {
		id = uint16(body[end-2])<<8 | uint16(body[end-1])
		m.Topic = string(body[2 : end-2])
	} else {
		m.Topic = string(body[2:end])
	}
	m.Payload = body[end:]
	return m, id, qos, nil
}
