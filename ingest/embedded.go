package ingest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/proactivehq/proactive"
)

// BrokerOptions configure the embedded broker.
type BrokerOptions struct {
	// Listen is the TCP address, default ":1883".
	Listen string
	// DeviceTopics, when set, lets a client publish under the device prefix
	// only to its own device's topics: its username, or else its client id,
	// must equal the device id in the topic.
	DeviceTopics bool
	Logger       *slog.Logger
}

// Broker is the MQTT broker built into the binary (mochi-mqtt). Telemetry and
// status publishes go through the ingester before the broker acknowledges
// them: a QoS 1 PUBACK means the points are in InfluxDB.
type Broker struct {
	opts   BrokerOptions
	in     *Ingester
	log    *slog.Logger
	ln     net.Listener
	server *mqtt.Server
	ready  atomic.Bool
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
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded mqtt broker: listen on %s: %w", opts.Listen, err)
	}
	log := opts.Logger.With("component", "broker")
	return &Broker{opts: opts, in: in, log: log, ln: ln}, nil
}

// Addr returns the address the broker listens on.
func (b *Broker) Addr() net.Addr { return b.ln.Addr() }

// Ready reports nil once the broker serves clients.
func (b *Broker) Ready() error {
	if !b.ready.Load() {
		return fmt.Errorf("embedded mqtt broker not serving")
	}
	return nil
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
	b.log.Info("embedded mqtt broker listening", "addr", b.ln.Addr().String())
	<-ctx.Done()
	b.ready.Store(false)
	return server.Close()
}

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
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnWillSent}, []byte{b})
}

// OnConnectAuthenticate accepts every client. Device credentials arrive with
// the device registry.
func (h *ingestHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool { return true }

// OnACLCheck holds each client to its own device's topics when
// DeviceTopics is set: it may publish and subscribe only under
// {prefix}/{its id}/, so it can neither forge another device's telemetry nor
// read it (wildcard filters such as "#" or "devices/+/telemetry" are refused).
// Its id is its username, or its client id when it gives none.
func (h *ingestHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if !h.b.opts.DeviceTopics {
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
		m.Ack = func() { _ = cl.WritePacket(puback(cl, pk)) }
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
func puback(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	return packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Puback},
		PacketID:        pk.PacketID,
		ReasonCode:      packets.CodeSuccess.Code,
		ProtocolVersion: cl.Properties.ProtocolVersion,
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

func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{f.Handler.WithAttrs(a), f.min}
}

func (f levelFilter) WithGroup(n string) slog.Handler {
	return levelFilter{f.Handler.WithGroup(n), f.min}
}
