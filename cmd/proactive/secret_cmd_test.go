package main

import (
	"encoding/csv"
	"strings"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// `devices secret` issues a secret the embedded broker (mqtt.device_auth)
// accepts, in the CSV simulate --credentials reads; --revoke locks the
// device out; a new secret replaces the old one.
func TestDevicesSecretCmd(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	env["PROACTIVE_MQTT_DEVICE_AUTH"] = "true"
	store, err := devices.Open(t.Context(), env["PROACTIVE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateDevice(t.Context(), proactive.Device{ID: "pump-1", Model: "pump-a1", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	issue := func() string {
		t.Helper()
		out, errOut, err := runDevices(t, env["PROACTIVE_DB"], "secret", "pump-1")
		if err != nil {
			t.Fatalf("devices secret: %v\n%s", err, errOut)
		}
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(rows) != 2 || rows[0][0] != "device_id" || rows[1][0] != "pump-1" || len(rows[1][1]) < 40 {
			t.Fatalf("devices secret printed %q (%v): want a header and pump-1 with its secret", out, err)
		}
		if !strings.Contains(errOut, "only this once") {
			t.Errorf("no warning that the secret is shown once: %q", errOut)
		}
		return rows[1][1]
	}
	old := issue()
	secret := issue() // replaces the first

	p := startServe(t, env)
	p.waitReady(t)
	broker := "tcp://" + env["PROACTIVE_MQTT_LISTEN"]
	if _, code, _ := connectDevice(t, broker, "pump-1", "pump-1", old); code != 0x04 {
		t.Errorf("the replaced secret: CONNACK %#x, want 0x04 (bad credentials)", code)
	}
	c, code, _ := connectDevice(t, broker, "pump-1", "pump-1", secret)
	if code != 0 || c == nil {
		t.Fatalf("the issued secret: CONNACK %#x", code)
	}
	publish(t, c, "devices/pump-1/telemetry", `{"metrics": {"pressure": 2.5}}`)
	if n := influx.Count(t, "telemetry"); n != 1 {
		t.Errorf("%d points stored, want 1", n)
	}
	c.Disconnect(100)

	if _, errOut, err := runDevices(t, env["PROACTIVE_DB"], "secret", "--revoke", "pump-1"); err != nil {
		t.Fatalf("revoke: %v\n%s", err, errOut)
	}
	// The broker caches checked secrets briefly; a fresh store sees none.
	st, err := devices.Open(t.Context(), env["PROACTIVE_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ok, err := st.CheckDeviceSecret(t.Context(), proactive.DeviceID("pump-1"), secret); ok || err != nil {
		t.Errorf("after --revoke the secret still checks: %v, %v", ok, err)
	}
	if _, _, err := runDevices(t, env["PROACTIVE_DB"], "secret", "not a device"); err == nil {
		t.Error("a malformed id: no error")
	}
}
