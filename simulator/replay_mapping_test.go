package simulator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/simulator"
)

func TestReplayMapping(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	o, err := simulator.ReplayMapping{Preset: "cmapss", Metrics: "s2=t24, s3", CycleStep: time.Minute, Start: start}.Options()
	if err != nil || o.DeviceCol == "" || o.CycleStep != time.Minute || !o.Start.Equal(start) ||
		len(o.Metrics) != 2 || o.Metrics[0] != (simulator.MetricColumn{Column: "s2", Name: "t24"}) || o.Metrics[1].Name != "s3" {
		t.Errorf("cmapss with overrides: %+v, %v", o, err)
	}
	o, err = simulator.ReplayMapping{Columns: "id, ts ,temp", DeviceCol: "id", TimeCol: "ts", Sep: "tab"}.Options()
	if err != nil || len(o.Columns) != 3 || o.Columns[1] != "ts" || o.Sep != "tab" {
		t.Errorf("flags alone: %+v, %v", o, err)
	}
	for m, want := range map[simulator.ReplayMapping]string{
		{}:                "replay needs --device-col and --time-col",
		{DeviceCol: "id"}: "replay needs --time-col",
		{Preset: "other"}: `--preset "other"`,
	} {
		if _, err := m.Options(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", m, err, want)
		}
	}
}
