package main

import (
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// registerWithSecret registers devices in the database serve will open and
// returns the secret the registry issued each.
func registerWithSecret(t *testing.T, dsn string, ids ...string) map[string]string {
	t.Helper()
	store, err := devices.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	secrets := map[string]string{}
	for _, id := range ids {
		d := proactive.Device{ID: proactive.DeviceID(id), Model: "pump-a1", TimeZone: "Europe/Paris"}
		if _, err := store.CreateDevice(t.Context(), d); err != nil {
			t.Fatalf("register %s: %v", id, err)
		}
		if secrets[id], err = store.SetDeviceSecret(t.Context(), d.ID); err != nil {
			t.Fatalf("secret for %s: %v", id, err)
		}
	}
	return secrets
}

// connectDevice connects with MQTT 3.1.1 credentials and returns the client
// once connected, or the CONNACK return code of a refusal.
func connectDevice(t *testing.T, broker, clientID, username, password string) (paho.Client, byte, <-chan error) {
	t.Helper()
	lost := make(chan error, 1)
	// An explicit version: paho would retry a refused 3.1.1 CONNECT as 3.1.
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetProtocolVersion(4).
		SetUsername(username).SetPassword(password).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetWriteTimeout(5 * time.Second).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("connect %s: no CONNACK", clientID)
	}
	code := tok.(*paho.ConnectToken).ReturnCode()
	if tok.Error() != nil {
		return nil, code, lost
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, code, lost
}

// With mqtt.device_auth, the embedded broker lets in only registered devices
// with their own secret, and holds each to its own topics.
func TestEmbeddedBrokerDeviceAuth(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_MQTT_DEVICE_AUTH"] = "true"
	secrets := registerWithSecret(t, env["PROACTIVE_DB"], "pump-1", "pump-2", "pump-3")
	p := startServe(t, env)
	p.waitReady(t)
	broker := "tcp://" + env["PROACTIVE_MQTT_LISTEN"]

	for _, tc := range []struct {
		name, clientID, user, pass string
		want                       byte
	}{
		{"wrong secret", "pump-1", "pump-1", secrets["pump-2"], 0x04},
		{"unregistered device", "pump-9", "pump-9", secrets["pump-1"], 0x04},
		{"client id of another device", "pump-2", "pump-1", secrets["pump-1"], 0x02},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, code, _ := connectDevice(t, broker, tc.clientID, tc.user, tc.pass); code != tc.want {
				t.Errorf("CONNACK return code %#x, want %#x", code, tc.want)
			}
		})
	}
	if got := metric(t, p.http, `proactive_mqtt_connects_refused_total{reason="bad_credentials"}`); got != 2 {
		t.Errorf("refusals for bad credentials = %v, want 2", got)
	}

	own, code, _ := connectDevice(t, broker, "pump-1", "pump-1", secrets["pump-1"])
	if own == nil {
		t.Fatalf("pump-1 with its own secret refused: CONNACK %#x; logs:\n%s", code, tail(p.logs.String(), 3000))
	}
	publish(t, own, "devices/pump-1/telemetry", `{"ts": 1763791200000, "metrics": {"pressure": 2.5}}`)

	forger, _, lost := connectDevice(t, broker, "pump-2", "pump-2", secrets["pump-2"])
	if forger == nil {
		t.Fatal("pump-2 with its own secret refused")
	}
	forger.Publish("devices/pump-1/telemetry", 1, false, `{"ts": 1763791260000, "metrics": {"pressure": 99}}`)
	select {
	case <-lost: // MQTT 3.1.1 has no negative PUBACK: the broker drops the forger
	case <-time.After(10 * time.Second):
		t.Fatal("forger still connected after publishing to another device's topic")
	}

	// Acknowledged only once stored, and written after the forgery would
	// have been: InfluxDB holds pump-1's two points and nothing else.
	publish(t, own, "devices/pump-1/telemetry", `{"ts": 1763791320000, "metrics": {"pressure": 2.6}}`)
	checkStored(t, influx, want{
		pointKey("pump-1", time.UnixMilli(1763791200000)): {"pressure": 2.5},
		pointKey("pump-1", time.UnixMilli(1763791320000)): {"pressure": 2.6},
	})
	if pts := influx.Points(t, "telemetry"); len(pts) > 0 && pts[0].Tags["model"] != "pump-a1" {
		t.Errorf("point tags %v, want the registered model", pts[0].Tags)
	}
}

// Only the embedded broker authenticates devices: with an external broker
// the switch would silently do nothing, so it is refused.
func TestDeviceAuthNeedsTheEmbeddedBroker(t *testing.T) {
	env := map[string]string{"PROACTIVE_MQTT_URL": "mqtt://broker.example:1883", "PROACTIVE_MQTT_DEVICE_AUTH": "true"}
	_, err := loadConfig("", func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "mqtt.device_auth") {
		t.Errorf("loadConfig = %v, want an error about mqtt.device_auth", err)
	}
}
