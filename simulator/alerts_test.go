package simulator_test

import (
	"testing"

	"github.com/proactivehq/proactive/simulator"
)

// ReadAlerts takes any input without panicking; what it accepts without
// error has every alert's device, rule and component.
func FuzzReadAlerts(f *testing.F) {
	f.Add([]byte(`{"alerts": [{"rule": "r", "device_id": "d", "component": "c", "fired_at": "2026-03-02T17:00:00Z"}], "rules": []}`))
	f.Add([]byte(`[{"Rule": "r", "Device": "d", "Component": "c", "FiredAt": "2026-03-02T17:00:00Z"}]`))
	f.Add([]byte("{\"rule\": \"r\"}\n{\"device\": 1}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := simulator.ReadAlerts("f.json", b)
		if err != nil {
			return
		}
		for _, a := range in.Alerts {
			if a.Rule == "" || a.Device == "" || a.Component == "" {
				t.Errorf("accepted %+v", a)
			}
		}
	})
}
