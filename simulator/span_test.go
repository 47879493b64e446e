package simulator_test

import (
	"testing"
	"time"

	"github.com/proactivehq/proactive/simulator"
)

func TestTelemetrySpan(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	truth := []simulator.Truth{
		{Onset: now.Add(-10 * day), Breakdown: now.Add(-9 * day)},
		{Onset: now.Add(2 * day)}, // no breakdown: the onset is the latest
		{Onset: now.Add(-day), Breakdown: now.Add(5 * day)},
	}
	from, to := simulator.TelemetrySpan(truth, now)
	if !from.Equal(now.Add(-40*day)) || !to.Equal(now.Add(35*day)) {
		t.Errorf("span %v to %v", from, to)
	}
	if from, to := simulator.TelemetrySpan(nil, now); !from.Equal(now.Add(-30*day)) || !to.Equal(now.Add(30*day)) {
		t.Errorf("without faults: %v to %v", from, to)
	}
}
