package simulator

import (
	"fmt"
	"math"
	"strconv"
)

// ParseSpeed reads a simulation speed (Options.Speed): simulated seconds per
// second, positive, or max for as fast as the broker acknowledges.
func ParseSpeed(s string) (float64, error) {
	if s == "max" {
		return math.Inf(1), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || math.IsNaN(v) {
		return 0, fmt.Errorf("%q: want a positive number or max", s)
	}
	return v, nil
}
