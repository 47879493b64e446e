package simulator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// Alerts is what a source of alerts to score yields: the alerts, the rules
// that ran when the source knows them (their components tell decoys from
// misses), and the end of the period the alerts cover (zero: open).
type Alerts struct {
	Alerts []proactive.Alert
	Rules  []RuleInfo
	End    time.Time
	// What describes the source for the report.
	What string
}

// alertWire is an alert as a file may hold it: as `rules backtest --json`
// prints it (device_id, fired_at), or a proactive.Alert marshalled as it is
// (Device, FiredAt; keys match case-insensitively).
type alertWire struct {
	Rule      string    `json:"rule"`
	DeviceID  string    `json:"device_id"`
	Device    string    `json:"device"`
	Component string    `json:"component"`
	State     string    `json:"state"`
	FiredAt   time.Time `json:"fired_at"`
	FiredAtGo time.Time `json:"firedat"`
}

// ReadAlerts reads the alerts of a file to score: a backtest report (a JSON
// object with "alerts", "rules" naming what ran and "to" ending the
// period, as `proactive rules backtest --json` prints it), a JSON array of
// alerts, or JSON lines of them (rule, device_id or device, component,
// fired_at, state). name is the file's for errors; it reports every bad
// record, up to 20.
func ReadAlerts(name string, b []byte) (Alerts, error) {
	var in Alerts
	trimmed := bytes.TrimSpace(b)
	var records []json.RawMessage
	switch {
	case len(trimmed) == 0:
		return in, nil
	case trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &records); err != nil {
			return in, fmt.Errorf("%s: %w", name, err)
		}
	default:
		dec := json.NewDecoder(bufio.NewReader(bytes.NewReader(trimmed)))
		for dec.More() {
			var r json.RawMessage
			if err := dec.Decode(&r); err != nil {
				return in, fmt.Errorf("%s: record %d: %w", name, len(records)+1, err)
			}
			records = append(records, r)
		}
		var report struct {
			Alerts *[]json.RawMessage `json:"alerts"`
			Rules  []struct {
				Rule      string `json:"rule"`
				Component string `json:"component"`
			} `json:"rules"`
			To time.Time `json:"to"`
		}
		if len(records) == 1 && json.Unmarshal(records[0], &report) == nil && report.Alerts != nil {
			records = *report.Alerts
			for _, r := range report.Rules {
				in.Rules = append(in.Rules, RuleInfo{Name: r.Rule, Component: r.Component})
			}
			in.End = report.To
		}
	}
	var errs []error
	for i, r := range records {
		var w alertWire
		if err := json.Unmarshal(r, &w); err != nil {
			errs = append(errs, fmt.Errorf("%s: alert %d: %w", name, i+1, err))
		} else {
			a := proactive.Alert{Rule: w.Rule, Device: proactive.DeviceID(w.DeviceID), Component: w.Component,
				State: proactive.AlertState(w.State), FiredAt: w.FiredAt}
			if a.Device == "" {
				a.Device = proactive.DeviceID(w.Device)
			}
			if a.FiredAt.IsZero() {
				a.FiredAt = w.FiredAtGo
			}
			var miss []string
			for _, f := range []struct{ name, v string }{{"rule", a.Rule}, {"device_id", string(a.Device)}, {"component", a.Component}} {
				if f.v == "" {
					miss = append(miss, f.name)
				}
			}
			// A pending alert has not fired: it needs no time.
			if a.FiredAt.IsZero() && (a.State == "" || a.State == proactive.AlertFiring) {
				miss = append(miss, "fired_at")
			}
			if len(miss) > 0 {
				errs = append(errs, fmt.Errorf("%s: alert %d: no %s", name, i+1, strings.Join(miss, ", ")))
			}
			in.Alerts = append(in.Alerts, a)
		}
		if len(errs) >= 20 {
			break
		}
	}
	return in, errors.Join(errs...)
}
