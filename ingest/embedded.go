package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/proactivehq/proactive"
)

// ErrBadCredentials is returned, possibly wrapped, by an AuthenticateFunc
// for a client whose credentials are wrong: an unknown device, a device
// without a secret, a wrong secret.
var ErrBadCredentials = errors.New("bad username or password")

// AuthenticateFunc checks the credentials a device presents at CONNECT. The
// broker has already checked that username is a valid device id and that
// clientID equals it. It returns nil to accept, an error wrapping
// ErrBadCredentials to refuse, and any other error when it cannot tell (the
// registry is unreachable): that client is told the server is unavailable
// and tries again later. ctx bounds the check. It is called from the
// connecting client's goroutine, many at once in a reconnect storm, and must
// never log the password.
type AuthenticateFunc func(ctx context.Context, clientID, username string, password []byte) error

// authTimeout bounds one credentials check.
const authTimeout = 10 * time.Second

// The defaults of the broker's limits.
const (
	// DefaultMaxPacketSize is the largest payload the ingester takes
	// (MaxPayload) plus room for the topic, packet id and properties.
	DefaultMaxPacketSize  = MaxPayload + 1024
	DefaultMaxConnections = 100000
	DefaultConnectTimeout = 10 * time.Second
)

// BrokerOptions configure the embedded broker.
type BrokerOptions struct {
	// Listen is the TCP address, default ":1883".
	Listen string
	// DeviceTopics, when set, lets a client publish under the device prefix
	// only to its own device's topics: its username, or else its client id,
	// must equal the device id in the topic.
	DeviceTopics bool
	// Authenticate, when set, makes every network client a device that
	// authenticates: its username is its device id, its client id the same
	// id exactly (no suffix: one session per device, and a reconnect takes
	// the old one over), its password its secret, checked by Authenticate.
	// An authenticated device may publish, subscribe and leave a will only
	// under {prefix}/{its id}/, as with DeviceTopics. A refused CONNECT is
	// answered with its reason code: client identifier not valid (MQTT 5
	// 0x85, 3.1.1 0x02), bad username or password (0x86, 0x04), not
	// authorized for a will on another topic (0x87, 0x05), server
	// unavailable when the check fails (0x88, 0x03). The platform's own
	// in-process client is not a device and is not checked.
	Authenticate AuthenticateFunc
	// MaxConnections bounds the open network connections, default
	// 100000; the broker accepts one more and closes it at once.
	MaxConnections int
	// MaxPacketSize is the largest MQTT packet a client may send, default
	// DefaultMaxPacketSize; a larger one closes its connection before it
	// is read, CONNECT included.
	MaxPacketSize int
	// ConnectTimeout is how long a new connection has to send its
	// CONNECT, default 10s.
	ConnectTimeout time.Duration
	Logger         *slog.Logger
}

// Broker is the MQTT broker built into the binary (mochi-mqtt). Telemetry,
// status and event publishes go through the ingester before the broker
// acknowledges them: a QoS 1 PUBACK means the points are in InfluxDB.
type Broker struct {
	opts   BrokerOptions
	in     *Ingester
	log    *slog.Logger
	ln     *guardedListener
	server *mqtt.Server
	ready  atomic.Bool
	acks   pubacks
}

// NewBroker listens on opts.Listen at once, so that the address is known (and
// a port conflict reported) before Run.
func NewBroker(in *Ingester, opts BrokerOptions) (*Broker, error) {
	if opts.Listen == "" {
		opts.Listen = ":1883"
	}
	if opts.Logger == nil {
		opts.Logger = in.opts.Logger
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.MaxPacketSize <= 0 {
		opts.MaxPacketSize = DefaultMaxPacketSize
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded mqtt broker: listen on %s: %w", opts.Listen, err)
	}
	log := opts.Logger.With("component", "broker")
	refused := func(reason string) { in.m.ConnectsRefused.WithLabelValues(reason).Inc() }
	b := &Broker{
		opts: opts, in: in, log: log, acks: pubacks{byClient: map[*mqtt.Client][]byte{}},
		ln: newGuardedListener(ln, opts.MaxConnections, opts.MaxPacketSize, opts.ConnectTimeout, log, refused),
	}
	flush := b.acks.flush
	in.ackFlush.Store(&flush)
	return b, nil
}

// Addr returns the address the broker listens on.
func (b *Broker) Addr() net.Addr { return b.ln.Addr() }

// Ready reports nil while the broker serves clients and its listener
// accepts connections.
func (b *Broker) Ready() error {
	if !b.ready.Load() {
		return fmt.Errorf("embedded mqtt broker not serving")
	}
	return b.ln.Err()
}

// Run serves MQTT clients until ctx is cancelled, then disconnects them.
func (b *Broker) Run(ctx context.Context) error {
	// The broker's own chatter is only interesting when it goes wrong.
	quiet := slog.New(levelFilter{b.log.Handler(), slog.LevelWarn})
	caps := mqtt.NewDefaultServerCapabilities()
	// A device's QoS 1 publishes wait for a batch write: let MQTT 5 clients
	// keep many in flight.
	caps.ReceiveMaximum = 4096
	// mochi gives every connection a queue of this many pending writes to
	// subscribers, allocated up front (8192 pointers, 64 KiB, by default) and
	// scanned by every GC cycle. Devices publish and rarely subscribe, so
	// with thousands connected the default costs memory and GC time for
	// nothing; 1024 still lets a subscriber fall 1024 messages behind.
	caps.MaximumClientWritesPending = 1024
	// mochi checks it on each fixed header, CONNECT's too, before it
	// allocates the packet: a client cannot make it buffer more.
	caps.MaximumPacketSize = uint32(b.opts.MaxPacketSize)
	server := mqtt.New(&mqtt.Options{Logger: quiet, Capabilities: caps, InlineClient: true})
	h := &ingestHook{b: b, ctx: ctx}
	if err := server.AddHook(h, nil); err != nil {
		return fmt.Errorf("embedded mqtt broker: %w", err)
	}
	if err := server.AddListener(listeners.NewNet("tcp", b.ln)); err != nil {
		return fmt.Errorf("embedded mqtt broker: %w", err)
	}
	b.server = server
	if err := server.Serve(); err != nil {
		return fmt.Errorf("embedded mqtt broker: %w", err)
	}
	b.ready.Store(true)
	b.in.intake(true)
	b.log.Info("embedded mqtt broker listening", "addr", b.ln.Addr().String())
	<-ctx.Done()
	b.ready.Store(false)
	b.in.intake(false)
	// mochi v2.7.9 can deadlock in Close when a client connects or
	// disconnects meanwhile (a recursive read lock, mochi-mqtt/server#488):
	// bound the wait, so that shutdown goes on; the process is exiting.
	closed := make(chan error, 1)
	go func() { closed <- server.Close() }()
	select {
	case err := <-closed:
		return err
	case <-time.After(closeTimeout):
		_ = b.ln.Close()
		return fmt.Errorf("embedded mqtt broker: not closed within %s (mochi-mqtt/server#488)", closeTimeout)
	}
}

// closeTimeout bounds the embedded broker's Close.
const closeTimeout = 5 * time.Second

// ingestHook hands device publishes to the ingester and holds the PUBACK
// until they are stored. It keeps the run context because mochi's hook
// interface carries none.
type ingestHook struct {
	mqtt.HookBase
	b   *Broker
	ctx context.Context
}

func (h *ingestHook) ID() string { return "proactive-ingest" }

func (h *ingestHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnWillSent, mqtt.OnDisconnect}, []byte{b})
}

// connectRefusal is why a CONNECT is refused: the MQTT 5 reason code, the
// MQTT 3.1.1 return code, and a label for logs and metrics.
type connectRefusal struct {
	v5     packets.Code
	v3     byte
	reason string
}

var (
	refuseClientID    = connectRefusal{packets.ErrClientIdentifierNotValid, 0x02, "client_id_mismatch"}
	refuseCredentials = connectRefusal{packets.ErrBadUsernameOrPassword, 0x04, "bad_credentials"}
	refuseWill        = connectRefusal{packets.ErrNotAuthorized, 0x05, "will_topic"}
	refuseUnavailable = connectRefusal{packets.ErrServerUnavailable, 0x03, "auth_unavailable"}
)

// OnConnect authenticates a device when Authenticate is set, and refuses it
// with the CONNACK code that says why. mochi's own refusal
// (OnConnectAuthenticate returning false) has a single code, which it maps
// to "not authorized" for MQTT 3.1.1, hence the CONNACK written here.
func (h *ingestHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if h.b.opts.Authenticate == nil || cl.Net.Inline {
		return nil
	}
	r, err := h.authenticate(cl, pk)
	if r == nil {
		return nil
	}
	user := truncate(string(pk.Connect.Username), 80)
	h.b.in.m.ConnectsRefused.WithLabelValues(r.reason).Inc()
	if r == &refuseUnavailable {
		h.b.log.Error("device credentials not checked; connection refused as server unavailable",
			"username", user, "remote", cl.Net.Remote, "err", err)
	} else {
		h.b.log.Warn("device connection refused", "reason", r.reason, "username", user,
			"client_id", truncate(cl.ID, 80), "remote", cl.Net.Remote)
	}
	if cl.Properties.ProtocolVersion >= 5 {
		_ = h.b.server.SendConnack(cl, r.v5, false, nil)
	} else {
		_ = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: r.v3})
	}
	return r.v5
}

// authenticate returns nil when the client may connect, else why not (and,
// for refuseUnavailable, the error of the check).
func (h *ingestHook) authenticate(cl *mqtt.Client, pk packets.Packet) (*connectRefusal, error) {
	user := string(pk.Connect.Username)
	if !proactive.ValidDeviceID(user) {
		return &refuseCredentials, nil
	}
	// mochi gives a client without an id a random one, which cannot match.
	if pk.Connect.ClientIdentifier != user {
		return &refuseClientID, nil
	}
	if pk.Connect.WillFlag && !strings.HasPrefix(pk.Connect.WillTopic, h.b.in.TopicPrefix()+"/"+user+"/") {
		return &refuseWill, nil
	}
	ctx, cancel := context.WithTimeout(h.ctx, authTimeout)
	defer cancel()
	err := h.b.opts.Authenticate(ctx, cl.ID, user, pk.Connect.Password)
	switch {
	case err == nil:
		return nil, nil
	case errors.Is(err, ErrBadCredentials):
		return &refuseCredentials, nil
	default:
		return &refuseUnavailable, err
	}
}

// OnConnectAuthenticate accepts every client that OnConnect let through.
func (h *ingestHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool { return true }

// OnACLCheck holds each client to its own device's topics when
// DeviceTopics or Authenticate is set: it may publish and subscribe only
// under {prefix}/{its id}/, so it can neither forge another device's
// telemetry nor read it (wildcard filters such as "#" or
// "devices/+/telemetry" are refused), while it may subscribe to its own
// commands ("devices/{id}/#"). Its id is its username, or its client id when
// it gives none; with Authenticate both are the device id.
func (h *ingestHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if !h.b.opts.DeviceTopics && h.b.opts.Authenticate == nil {
		return true
	}
	who := string(cl.Properties.Username)
	if who == "" {
		who = cl.ID
	}
	return proactive.ValidDeviceID(who) && strings.HasPrefix(topic, h.b.in.TopicPrefix()+"/"+who+"/")
}

// OnPublish hands device publishes to the ingester. A QoS 1 publish is
// acknowledged only once stored, but without holding the client's read loop:
// mochi is told not to answer (ErrRejectPacket) and the PUBACK is written
// when the batch is in InfluxDB. A gateway multiplexing many devices over one
// connection therefore keeps many publishes in flight. Acks leave in the
// order the publishes came, as MQTT requires, because batches are written in
// queue order.
func (h *ingestHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || !strings.HasPrefix(pk.TopicName, h.b.in.TopicPrefix()+"/") {
		return pk, nil
	}
	m := Message{Topic: pk.TopicName, Payload: pk.Payload, Received: time.Now()}
	switch pk.FixedHeader.Qos {
	case 0:
		// At most once: the device asked for no guarantee.
		_ = h.b.in.Handle(h.ctx, m)
		return pk, nil
	case 1:
		h.forward(pk)
		// The closures take the packet id, not the packet: a copy of the
		// whole packet per message would be garbage the GC pays for.
		id, acks := pk.PacketID, &h.b.acks
		m.Ack = func() { _ = cl.WritePacket(puback(cl, id)) }
		m.queueAck = func() { acks.add(cl, id) }
		// Handle blocks while the ingester's queue is full, which stops
		// reading from this client: backpressure down to the device's TCP.
		_ = h.b.in.Handle(h.ctx, m)
		return pk, packets.ErrRejectPacket
	}
	// QoS 2 keeps mochi's PUBREC/PUBREL flow, so wait for the write here.
	stored := make(chan bool, 1)
	m.Ack = func() { stored <- true }
	m.Nack = func() { stored <- false }
	_ = h.b.in.Handle(h.ctx, m)
	if <-stored {
		return pk, nil
	}
	return pk, packets.ErrRejectPacket
}

// forward delivers a QoS 1 publish to the broker's other subscribers (a
// dashboard, mosquitto_sub), since rejecting it for the deferred ack keeps
// mochi from doing so. It costs nothing when nobody listens.
func (h *ingestHook) forward(pk packets.Packet) {
	subs := h.b.server.Topics.Subscribers(pk.TopicName)
	if len(subs.Subscriptions) == 0 && len(subs.Shared) == 0 && len(subs.InlineSubscriptions) == 0 && !pk.FixedHeader.Retain {
		return
	}
	if err := h.b.server.Publish(pk.TopicName, pk.Payload, pk.FixedHeader.Retain, pk.FixedHeader.Qos); err != nil {
		h.b.log.Warn("forward to subscribers failed", "topic", pk.TopicName, "err", err)
	}
}

// puback is the acknowledgement of a stored QoS 1 publish. A client that has
// gone meanwhile makes the write fail, which is fine: its session resends.
func puback(cl *mqtt.Client, id uint16) packets.Packet {
	return packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Puback},
		PacketID:        id,
		ReasonCode:      packets.CodeSuccess.Code,
		ProtocolVersion: cl.Properties.ProtocolVersion,
	}
}

// pubacks gathers the PUBACKs of a settled batch by connection, so that
// each connection gets its acks in one write rather than one system call
// each: a batch holds several messages of most devices.
type pubacks struct {
	mu       sync.Mutex
	byClient map[*mqtt.Client][]byte
}

// add queues the PUBACK of a stored QoS 1 publish. A PUBACK of success
// without properties is the same four bytes in MQTT 3.1.1 and 5.
func (p *pubacks) add(cl *mqtt.Client, id uint16) {
	p.mu.Lock()
	p.byClient[cl] = append(p.byClient[cl], packets.Puback<<4, 2, byte(id>>8), byte(id))
	p.mu.Unlock()
}

// flush writes the queued PUBACKs, each connection's in order. It holds the
// client's lock as mochi does for every packet it writes, so that packets
// never interleave. A client that has gone meanwhile makes the write fail,
// which is fine: its session resends.
func (p *pubacks) flush() {
	p.mu.Lock()
	queued := p.byClient
	if len(queued) == 0 {
		p.mu.Unlock()
		return
	}
	p.byClient = make(map[*mqtt.Client][]byte, len(queued))
	p.mu.Unlock()
	for cl, b := range queued {
		if cl.Closed() || cl.Net.Conn == nil {
			continue
		}
		// A client that stops reading must not stall the pipeline that
		// acknowledges everyone: past the deadline its connection is
		// dropped, and its session resends what it did not see acked.
		cl.Lock()
		_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(pubackWriteTimeout))
		_, err := cl.Net.Conn.Write(b)
		_ = cl.Net.Conn.SetWriteDeadline(time.Time{})
		cl.Unlock()
		if err != nil {
			cl.Stop(fmt.Errorf("write acknowledgements: %w", err))
		}
	}
}

// pubackWriteTimeout bounds one connection's batch of PUBACKs.
const pubackWriteTimeout = 2 * time.Second

// OnDisconnect counts the connections dropped for a packet over
// MaxPacketSize (mochi closes them without a word).
func (h *ingestHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if errors.Is(err, packets.ErrPacketTooLarge) {
		h.b.in.m.ConnectsRefused.WithLabelValues("packet_too_large").Inc()
		h.b.log.Warn("mqtt client sent a packet over mqtt.max_packet_size; connection closed",
			"client_id", truncate(cl.ID, 80), "remote", cl.Net.Remote, "max_packet_size", h.b.opts.MaxPacketSize)
	}
}

// OnWillSent records a device's will (its offline status), which mochi
// publishes without passing through OnPublish.
func (h *ingestHook) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	if strings.HasPrefix(pk.TopicName, h.b.in.TopicPrefix()+"/") {
		_ = h.b.in.Handle(h.ctx, Message{Topic: pk.TopicName, Payload: pk.Payload, Received: time.Now()})
	}
}

// levelFilter drops records below a minimum level.
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

// Handle names mochi's unnamed records and drops the one every client
// makes as the broker closes its connection at shutdown.
func (f levelFilter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "" {
		closed := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "error" && strings.Contains(a.Value.String(), "use of closed network connection") {
				closed = true
				return false
			}
			return true
		})
		if closed {
			return nil
		}
		r.Message = "mqtt client connection error"
	}
	return f.Handler.Handle(ctx, r)
}

func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{f.Handler.WithAttrs(a), f.min}
}

func (f levelFilter) WithGroup(n string) slog.Handler {
	return levelFilter{f.Handler.WithGroup(n), f.min}
}
