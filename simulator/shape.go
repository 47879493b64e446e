package simulator

import (
	"math"
	"time"
)

// Level returns how far a fault has developed, 0 (not at all) to 1 (full
// magnitude, as at breakdown), at progress p: the time since onset as a
// fraction of the time from onset to breakdown (clamped to [0, 1]; 1 for a
// fault without breakdown). k is the steepness of the exponential shape;
// for an intermittent fault u is a uniform draw in [0, 1) per sample and
// duty the fraction of samples the fault shows in.
func Level(shape Shape, p, k, duty, u float64) float64 {
	p = min(max(p, 0), 1)
	switch shape {
	case Linear:
		return p
	case Exponential:
		if k <= 0 {
			return p
		}
		return math.Expm1(k*p) / math.Expm1(k)
	case Step:
		return 1
	case Intermittent:
		if u < duty {
			return 1
		}
		return 0
	}
	return 0
}

// progress is p of Level for a fault at time t.
func progress(t, onset time.Time, after time.Duration) float64 {
	if after <= 0 {
		return 1
	}
	return float64(t.Sub(onset)) / float64(after)
}

// Apply moves value v by effect e at level l.
func (e Effect) Apply(v, l float64) float64 {
	if e.multiply {
		return v * (1 + (e.Multiply-1)*l)
	}
	return v + e.Add*l
}
