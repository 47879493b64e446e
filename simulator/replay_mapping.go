package simulator

import (
	"fmt"
	"strings"
	"time"
)

// ReplayMapping is a replay's CSV mapping as `proactive simulate --replay`
// takes it from its flags: a preset (cmapss, or none), and each field set
// overriding it; Columns is a comma-separated list, Metrics a
// comma-separated list of COLUMN=name (or COLUMN, under its own name).
type ReplayMapping struct {
	Preset, Sep, Columns, DeviceCol, DeviceID, TimeCol, TimeFormat, Metrics string
	CycleStep                                                               time.Duration
	Start                                                                   time.Time
}

// Options returns the ReplayOptions of m, or why it is incomplete.
func (m ReplayMapping) Options() (ReplayOptions, error) {
	var o ReplayOptions
	switch m.Preset {
	case "":
	case "cmapss":
		o = CMAPSS()
	default:
		return o, fmt.Errorf("--preset %q: the presets are cmapss", m.Preset)
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&o.Sep, m.Sep)
	set(&o.DeviceCol, m.DeviceCol)
	set(&o.DeviceID, m.DeviceID)
	set(&o.TimeCol, m.TimeCol)
	set(&o.TimeFormat, m.TimeFormat)
	if m.Columns != "" {
		o.Columns = splitList(m.Columns)
	}
	if m.Metrics != "" {
		o.Metrics = nil
		for _, spec := range splitList(m.Metrics) {
			col, name, ok := strings.Cut(spec, "=")
			if !ok {
				col, name = spec, spec
			}
			o.Metrics = append(o.Metrics, MetricColumn{Column: strings.TrimSpace(col), Name: strings.TrimSpace(name)})
		}
	}
	if m.CycleStep > 0 {
		o.CycleStep = m.CycleStep
	}
	if !m.Start.IsZero() {
		o.Start = m.Start
	}
	var missing []string
	if o.DeviceCol == "" {
		missing = append(missing, "--device-col")
	}
	if o.TimeCol == "" {
		missing = append(missing, "--time-col")
	}
	if len(missing) > 0 {
		return o, fmt.Errorf("replay needs %s (or --preset cmapss)", strings.Join(missing, " and "))
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
