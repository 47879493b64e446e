package main

import (
	"maps"
	"testing"
	"time"

	"github.com/proactivehq/proactive/internal/testenv"
)

// Two instances in one mqtt.shared_group on Mosquitto split the device
// messages between them: each stores a part, together every point once.
func TestSharedGroupSplitsIngest(t *testing.T) {
	t.Parallel()
	broker, influx, env, prefix, clientID := mosquittoSetup(t)
	_, clientB := uniqueSession(t, broker)
	env["PROACTIVE_MQTT_SHARED_GROUP"] = "ingest"
	envB := maps.Clone(env)
	envB["PROACTIVE_MQTT_CLIENT_ID"] = clientB
	envB["PROACTIVE_HTTP_ADDR"] = testenv.FreeAddr(t)
	envB["PROACTIVE_DB"] = t.TempDir() + "/b.db"
	a, b := startServe(t, env), startServe(t, envB)
	a.waitReady(t)
	b.waitReady(t)

	c := device(t, broker, clientID+"-pub", false)
	w, toks := series(c, prefix, 10, 20, 0)
	waitTokens(t, toks, 20*time.Second)
	waitCount(t, influx, len(w), 20*time.Second, a.logs)
	checkStored(t, influx, w)
	inA := metric(t, a.http, "proactive_ingest_points_written_total")
	inB := metric(t, b.http, "proactive_ingest_points_written_total")
	if inA == 0 || inB == 0 || int(inA+inB) != len(w) {
		t.Errorf("instances wrote %v and %v points, want a share each and %d in all", inA, inB, len(w))
	}
}

// A shared group without an external broker is a configuration error.
func TestSharedGroupNeedsExternalBroker(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), []string{"proactive", "config"}, envMap(map[string]string{"PROACTIVE_MQTT_SHARED_GROUP": "g"}), &testenv.Buffer{}, &testenv.Buffer{})
	if err == nil {
		t.Fatal("shared_group with the embedded broker: no error")
	}
}
