package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
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

// Subscriber consumes device topics from an external broker with a
// persistent session and manual acknowledgement: a message is acknowledged
// only once the ingester has stored it.
type Subscriber struct {
	opts      SubscriberOptions
	in        *Ingester
	log       *slog.Logger
	connected atomic.Bool
	// conn is the connection paho opened last. paho dispatches every
	// message it read from a connection before it opens the next (it stops
	// the old connection's router first), so the handler finds here the
	// connection its message came from, and the message's ack goes to
	// that connection or nowhere.
	conn atomic.Pointer[bufferedConn]
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
	if opts.Logger == nil {
		opts.Logger = in.opts.Logger
	}
	return &Subscriber{opts: opts, in: in, log: opts.Logger.With("component", "mqtt")}, nil
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
	u, _ := url.Parse(s.opts.URL)
	broker := (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
	share := ""
	if s.opts.SharedGroup != "" {
		share = "$share/" + s.opts.SharedGroup + "/"
	}
	topics := map[string]byte{
		share + s.in.TopicPrefix() + "/+/telemetry": 1,
		share + s.in.TopicPrefix() + "/+/status":    1,
		share + s.in.TopicPrefix() + "/+/events":    1,
	}
	handler := func(_ paho.Client, m paho.Message) {
		ack := m.Ack
		if conn := s.conn.Load(); conn != nil && m.Qos() == 1 {
			// Straight onto the connection; dropped if it has closed.
			id := m.MessageID()
			ack = func() { conn.puback(id) }
		}
		// Blocks while the ingester's queue is full; the broker then holds
		// the rest, which is the backpressure we want.
		_ = s.in.Handle(ctx, Message{Topic: m.Topic(), Payload: m.Payload(), Received: time.Now(), Ack: ack})
	}
	opts := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(s.opts.ClientID).
		SetUsername(s.opts.Username).
		SetPassword(s.opts.Password).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetKeepAlive(s.opts.KeepAlive).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetDefaultPublishHandler(handler).
		SetCustomOpenConnectionFn(func(uri *url.URL, opts paho.ClientOptions) (net.Conn, error) {
			conn, err := openBufferedConn(uri, opts)
			if err != nil {
				return nil, err // not a nil *bufferedConn in a non-nil net.Conn
			}
			s.conn.Store(conn)
			return conn, nil
		}).
		SetStore(newSessionStore()).
		SetOnConnectHandler(func(c paho.Client) {
			// The session may be new (broker restarted without
			// persistence), so subscribe on every connect.
			tok := c.SubscribeMultiple(topics, nil)
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				s.log.Error("subscribe failed; reconnecting", "err", tok.Error())
				s.connected.Store(false)
				s.in.intake(false)
				return
			}
			s.connected.Store(true)
			s.in.intake(true)
			s.log.Info("connected to mqtt broker", "broker", broker, "client_id", s.opts.ClientID, "shared_group", s.opts.SharedGroup)
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.connected.Store(false)
			s.in.intake(false)
			s.log.Warn("lost mqtt connection; reconnecting", "err", err)
		})
	if s.opts.TLS != nil {
		opts.SetTLSConfig(s.opts.TLS)
	}
	client := paho.NewClient(opts)
	client.Connect() // with ConnectRetry the token completes only once connected
	<-ctx.Done()
	s.connected.Store(false)
	s.in.intake(false)
	// Acks still pending are lost with the connection; the broker resends
	// those messages to our session next time, so nothing is dropped.
	client.Disconnect(250)
	return nil
}
