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
	// A device's QoS 1 publishes wait for a batch write; let it keep a few
	// in flight so one slow write does not serialise it completely.
	caps.ReceiveMaximum = 1024
	server := mqtt.New(&mqtt.Options{Logger: quiet, Capabilities: caps})
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

// OnACLCheck holds devices to their own topics when DeviceTopics is set.
func (h *ingestHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if !write || !h.b.opts.DeviceTopics {
		return true
	}
	id, kind, _ := ParseTopic(h.b.in.TopicPrefix(), topic)
	if kind == TopicUnknown && !strings.HasPrefix(topic, h.b.in.TopicPrefix()+"/") {
		return true
	}
	who := string(cl.Properties.Username)
	if who == "" {
		who = cl.ID
	}
	return id != "" && string(id) == who
}

func (h *ingestHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !strings.HasPrefix(pk.TopicName, h.b.in.TopicPrefix()+"/") {
		return pk, nil
	}
	if pk.FixedHeader.Qos == 0 {
		// At most once: the device asked for no guarantee, so do not hold it.
		_ = h.b.in.Handle(h.ctx, Message{Topic: pk.TopicName, Payload: pk.Payload, Received: time.Now()})
		return pk, nil
	}
	stored := make(chan bool, 1)
	_ = h.b.in.Handle(h.ctx, Message{
		Topic: pk.TopicName, Payload: pk.Payload, Received: time.Now(),
		Ack:  func() { stored <- true },
		Nack: func() { stored <- false },
	})
	if <-stored {
		return pk, nil
	}
	// Not stored: send no PUBACK, so the device keeps the message and
	// sends it again when it reconnects.
	return pk, packets.ErrRejectPacket
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
