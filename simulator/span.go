package simulator

import "time"

// TelemetrySpan is the span of telemetry a simulation with the faults of
// truth published, to read it back for scoring: from well before the first
// onset (the scenario's history) to well past the last breakdown (simulated
// time may run ahead of the clock), and at least around now.
func TelemetrySpan(truth []Truth, now time.Time) (from, to time.Time) {
	first, last := now, now
	for _, t := range truth {
		if t.Onset.Before(first) {
			first = t.Onset
		}
		for _, at := range []time.Time{t.Onset, t.Breakdown} {
			if at.After(last) {
				last = at
			}
		}
	}
	return first.Add(-30 * 24 * time.Hour), last.Add(30 * 24 * time.Hour)
}
