package simulator_test

import (
	"math"
	"testing"

	"github.com/proactivehq/proactive/simulator"
)

func TestParseSpeed(t *testing.T) {
	for in, want := range map[string]float64{"1": 1, "3600": 3600, "0.5": 0.5, "max": math.Inf(1)} {
		if got, err := simulator.ParseSpeed(in); err != nil || got != want {
			t.Errorf("ParseSpeed(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-2", "NaN", "fast"} {
		if _, err := simulator.ParseSpeed(in); err == nil {
			t.Errorf("ParseSpeed(%q): no error", in)
		}
	}
}
