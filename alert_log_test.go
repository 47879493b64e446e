package proactive_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/proactivehq/proactive"
)

// An alert logs as a group, so that a part's logger, which names itself
// with "component", never gets a second "component" key from the alert.
func TestAlertLogValue(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil)).With("component", "rules")
	log.Info("alert firing", "alert", proactive.Alert{Rule: "compressor_wear", Device: "fridge-1", Component: "compressor"})
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"rule": "compressor_wear", "device_id": "fridge-1", "component": "compressor"}
	alert, _ := got["alert"].(map[string]any)
	for k, v := range want {
		if alert[k] != v {
			t.Errorf("alert.%s = %v, want %v (line %s)", k, alert[k], v, buf.String())
		}
	}
	if got["component"] != "rules" {
		t.Errorf("component = %v, want the logging part, rules", got["component"])
	}
}
