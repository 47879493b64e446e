package simulator

import (
	"fmt"
	"time"

	"github.com/proactivehq/proactive"
)

// loadScenario is the fleet of LoadTest: one model with three metrics, the
// size of a small appliance's telemetry (about 100 bytes a message), and
// no faults.
const loadScenario = `name: load
seed: 1
models:
  - name: load-a1
    count: %d
    id: load-%%06d
    interval: %s
    signals:
      load: {baseline: 0.5, noise: 0.1, daily: {amplitude: 0.2, phase: "19:00"}}
    metrics:
      compressor_current: {baseline: 4.0, noise: 0.08, spread: 0.1, load: 0.3, decimals: 2}
      cabinet_temp: {baseline: 4.0, noise: 0.1, spread: 0.1, decimals: 2}
      duty_cycle: {baseline: 0.4, noise: 0.015, min: 0, max: 1, decimals: 3}
`

// LoadTest returns a scenario for load: devices devices (load-000001, ...)
// of one model, each sending one reading every interval, spread evenly over
// it, with no history, no faults and no end. Published with the Simulator's
// defaults, they share 8 connections.
func LoadTest(devices int, interval time.Duration) (*Scenario, error) {
	if devices < 1 || devices > 999_999 {
		return nil, fmt.Errorf("load: %d devices: want 1 to 999999", devices)
	}
	if interval < time.Second {
		return nil, fmt.Errorf("load: interval %s: want at least 1s", interval)
	}
	return ParseScenario("load", fmt.Appendf(nil, loadScenario, devices, proactive.FormatDuration(interval)))
}
