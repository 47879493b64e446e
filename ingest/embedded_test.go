package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/internal/testenv"
)

// authBroker is an embedded broker that authenticates devices against a
// fixed table of secrets, in front of an ingester that records what it
// stores.
type authBroker struct {
	addr  string
	store *store
	m     *ingest.Metrics
}

// The devices authBroker knows. "registry-down" stands for a device whose
// check fails for want of the registry.
var secrets = map[string]string{"pump-1": "s3cret-1", "pump-2": "s3cret-2", "registry-down": "x"}

func startAuthBroker(t *testing.T) *authBroker {
	t.Helper()
	st := &store{}
	in, m := newIngester(t, ingest.Options{Writer: st, Metrics: ingest.NewMetrics(prometheus.NewRegistry())})
	mustRun(t, in)
	auth := func(ctx context.Context, clientID, username string, password []byte) error {
		if username == "registry-down" {
			return errors.New("database is locked")
		}
		if s, ok := secrets[username]; !ok || s != string(password) {
			return ingest.ErrBadCredentials
		}
		return nil
	}
	b, err := ingest.NewBroker(in, ingest.BrokerOptions{Listen: "127.0.0.1:0", Authenticate: auth})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("broker Run: %v", err)
		}
	})
	testenv.Eventually(t, 0, b.Ready)
	return &authBroker{addr: b.Addr().String(), store: st, m: m}
}

// connect is a raw CONNECT, so that the test sees the exact CONNACK code for
// either protocol version.
type connect struct {
	version              byte // 4 for MQTT 3.1.1, 5
	clientID, user, pass string
	willTopic            string
}

// connack sends c and returns the CONNACK's return (3.1.1) or reason (5)
// code.
func (b *authBroker) connack(t *testing.T, c connect) byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", b.addr, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitLimit))
	name := "MQTT"
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: c.version,
		Connect: packets.ConnectParams{
			ProtocolName: []byte(name), ClientIdentifier: c.clientID, Keepalive: 30, Clean: true,
			Username: []byte(c.user), UsernameFlag: c.user != "",
			Password: []byte(c.pass), PasswordFlag: c.pass != "",
		},
	}
	if c.willTopic != "" {
		pk.Connect.WillFlag, pk.Connect.WillTopic, pk.Connect.WillPayload = true, c.willTopic, []byte(`{"online": false}`)
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	// Fixed header (type, remaining length < 128 here), session present,
	// then the code.
	head := make([]byte, 4)
	if _, err := io.ReadFull(conn, head); err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	if head[0] != packets.Connack<<4 {
		t.Fatalf("got packet type %#x, want CONNACK", head[0])
	}
	return head[3]
}

func TestEmbeddedBrokerAuthenticatesDevices(t *testing.T) {
	b := startAuthBroker(t)
	for _, tc := range []struct {
		name   string
		c      connect
		v3, v5 byte
		reason string
	}{
		{"right secret", connect{clientID: "pump-1", user: "pump-1", pass: "s3cret-1"}, 0x00, 0x00, ""},
		{"own will", connect{clientID: "pump-1", user: "pump-1", pass: "s3cret-1", willTopic: "devices/pump-1/status"}, 0x00, 0x00, ""},
		{"wrong secret", connect{clientID: "pump-1", user: "pump-1", pass: "s3cret-2"}, 0x04, 0x86, "bad_credentials"},
		{"no password", connect{clientID: "pump-1", user: "pump-1"}, 0x04, 0x86, "bad_credentials"},
		{"unknown device", connect{clientID: "pump-9", user: "pump-9", pass: "s3cret-1"}, 0x04, 0x86, "bad_credentials"},
		{"no username", connect{clientID: "pump-1"}, 0x04, 0x86, "bad_credentials"},
		{"username not a device id", connect{clientID: "pump 1", user: "pump 1", pass: "s3cret-1"}, 0x04, 0x86, "bad_credentials"},
		{"client id of another device", connect{clientID: "pump-2", user: "pump-1", pass: "s3cret-1"}, 0x02, 0x85, "client_id_mismatch"},
		{"client id with a suffix", connect{clientID: "pump-1-modem", user: "pump-1", pass: "s3cret-1"}, 0x02, 0x85, "client_id_mismatch"},
		{"no client id", connect{user: "pump-1", pass: "s3cret-1"}, 0x02, 0x85, "client_id_mismatch"},
		{"will on another device's topic", connect{clientID: "pump-1", user: "pump-1", pass: "s3cret-1", willTopic: "devices/pump-2/status"}, 0x05, 0x87, "will_topic"},
		{"registry unreachable", connect{clientID: "registry-down", user: "registry-down", pass: "x"}, 0x03, 0x88, "auth_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []struct {
				version byte
				want    byte
			}{{4, tc.v3}, {5, tc.v5}} {
				var before float64
				if tc.reason != "" {
					before = value(t, b.m.ConnectsRefused.WithLabelValues(tc.reason))
				}
				c := tc.c
				c.version = v.version
				if got := b.connack(t, c); got != v.want {
					t.Errorf("MQTT version %d: CONNACK code %#x, want %#x", v.version, got, v.want)
				}
				if tc.reason != "" {
					if got := value(t, b.m.ConnectsRefused.WithLabelValues(tc.reason)) - before; got != 1 {
						t.Errorf("MQTT version %d: refusals counted under %s rose by %v, want 1", v.version, tc.reason, got)
					}
				}
			}
		})
	}
}

// pahoDevice connects as a device with MQTT 3.1.1 and returns the client
// and a channel that receives its lost connection.
func pahoDevice(t *testing.T, addr, id, secret string) (paho.Client, <-chan error) {
	t.Helper()
	lost := make(chan error, 1)
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetUsername(id).SetPassword(secret).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, lost
}

func TestEmbeddedBrokerHoldsAuthenticatedDevicesToTheirTopics(t *testing.T) {
	b := startAuthBroker(t)
	own, _ := pahoDevice(t, b.addr, "pump-1", "s3cret-1")

	t.Run("own topic accepted and stored", func(t *testing.T) {
		tok := own.Publish("devices/pump-1/telemetry", 1, false, `{"ts": 1763791200000, "metrics": {"pressure": 2.5}}`)
		if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		// PUBACK means stored.
		samples, _ := b.store.stored()
		if len(samples) != 1 || samples[0].Device != "pump-1" || samples[0].Metrics["pressure"] != 2.5 {
			t.Fatalf("stored %+v, want pump-1's one sample", samples)
		}
	})

	t.Run("subscriptions", func(t *testing.T) {
		for filter, want := range map[string]byte{
			"devices/pump-1/#":        1,
			"devices/pump-1/commands": 1,
			"devices/#":               0x80,
			"devices/+/telemetry":     0x80,
			"devices/pump-2/commands": 0x80,
			"#":                       0x80,
		} {
			tok := own.Subscribe(filter, 1, func(paho.Client, paho.Message) {})
			if !tok.WaitTimeout(waitLimit) {
				t.Fatalf("subscribe %s not answered", filter)
			}
			if got := tok.(*paho.SubscribeToken).Result()[filter]; got != want {
				t.Errorf("subscribe %s: granted %#x, want %#x", filter, got, want)
			}
		}
	})

	t.Run("another device's topic refused and not stored", func(t *testing.T) {
		forger, lost := pahoDevice(t, b.addr, "pump-2", "s3cret-2")
		forger.Publish("devices/pump-1/telemetry", 1, false, `{"ts": 1763791260000, "metrics": {"pressure": 99}}`)
		// MQTT 3.1.1 has no negative PUBACK: the broker drops the forger.
		select {
		case <-lost:
		case <-time.After(waitLimit):
			t.Fatal("forger still connected")
		}
		// A publish of pump-1's after the forgery is acknowledged only once
		// stored, and batches are written in order, so the forgery would be
		// in the store by now.
		tok := own.Publish("devices/pump-1/telemetry", 1, false, `{"ts": 1763791320000, "metrics": {"pressure": 2.6}}`)
		if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		samples, _ := b.store.stored()
		if len(samples) != 2 {
			t.Fatalf("stored %d samples, want pump-1's own 2: %+v", len(samples), samples)
		}
		for _, s := range samples {
			if s.Metrics["pressure"] == 99 {
				t.Errorf("forged sample stored: %+v", s)
			}
		}
	})
}
