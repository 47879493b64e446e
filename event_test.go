package proactive_test

import (
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
)

func TestEventValidate(t *testing.T) {
	at := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	ok := proactive.Event{Device: "fridge-1", Time: at, Code: "E101", Component: "compressor",
		Severity: proactive.SeverityError, Text: "overcurrent trip"}
	tests := []struct {
		name string
		edit func(e *proactive.Event)
		want string // in the error; "" for none
	}{
		{"full", func(*proactive.Event) {}, ""},
		{"code only", func(e *proactive.Event) { e.Component, e.Severity, e.Text = "", "", "" }, ""},
		{"code punctuation", func(e *proactive.Event) { e.Code = "HW:fan-2.stall_x" }, ""},
		{"code 64", func(e *proactive.Event) { e.Code = strings.Repeat("E", 64) }, ""},
		{"text 256", func(e *proactive.Event) { e.Text = strings.Repeat("é", 256) }, ""},
		{"severities", func(e *proactive.Event) { e.Severity = proactive.SeverityCritical }, ""},
		{"no code", func(e *proactive.Event) { e.Code = "" }, `code "" must match [A-Za-z0-9_.:-]{1,64}`},
		{"code 65", func(e *proactive.Event) { e.Code = strings.Repeat("E", 65) }, "code"},
		{"code space", func(e *proactive.Event) { e.Code = "E 1" }, `code "E 1"`},
		{"bad device", func(e *proactive.Event) { e.Device = "a/b" }, `device_id "a/b"`},
		{"no time", func(e *proactive.Event) { e.Time = time.Time{} }, "time is required"},
		{"component", func(e *proactive.Event) { e.Component = "Fan" }, `component "Fan"`},
		{"severity", func(e *proactive.Event) { e.Severity = "fatal" }, `severity "fatal" is not one of info, warning, error, critical`},
		{"text 257", func(e *proactive.Event) { e.Text = strings.Repeat("x", 257) }, "text is longer than 256 characters"},
		{"text control", func(e *proactive.Event) { e.Text = "a\x00b" }, "text contains control characters"},
		{"two problems", func(e *proactive.Event) { e.Code, e.Severity = "", "fatal" }, `code "" must match [A-Za-z0-9_.:-]{1,64}; severity "fatal"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.edit(&e)
			err := e.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("Validate() = nil, want an error with %q", tt.want)
			case proactive.ErrorCode(err) != proactive.EInvalid || !strings.Contains(proactive.ErrorMessage(err), tt.want):
				t.Fatalf("Validate() = %v (code %s), want EInvalid with %q", err, proactive.ErrorCode(err), tt.want)
			}
		})
	}
}

func TestMaintenanceValidate(t *testing.T) {
	at := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	ok := proactive.Maintenance{Device: "fridge-1", Time: at, Component: "compressor",
		Kind: proactive.MaintenanceReplaced, Notes: "new compressor\nold one kept"}
	tests := []struct {
		name string
		edit func(m *proactive.Maintenance)
		want string
	}{
		{"full", func(*proactive.Maintenance) {}, ""},
		{"repaired", func(m *proactive.Maintenance) { m.Kind, m.Notes = proactive.MaintenanceRepaired, "" }, ""},
		{"inspected", func(m *proactive.Maintenance) { m.Kind = proactive.MaintenanceInspected }, ""},
		{"kind", func(m *proactive.Maintenance) { m.Kind = "cleaned" }, `kind "cleaned" is not one of replaced, repaired, inspected`},
		{"no component", func(m *proactive.Maintenance) { m.Component = "" }, `component "" must match`},
		{"no time", func(m *proactive.Maintenance) { m.Time = time.Time{} }, "time is required"},
		{"bad device", func(m *proactive.Maintenance) { m.Device = "" }, `device_id ""`},
		{"long notes", func(m *proactive.Maintenance) { m.Notes = strings.Repeat("x", 2001) }, "notes is longer than 2000 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ok
			tt.edit(&m)
			err := m.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("Validate() = nil, want an error with %q", tt.want)
			case proactive.ErrorCode(err) != proactive.EInvalid || !strings.Contains(proactive.ErrorMessage(err), tt.want):
				t.Fatalf("Validate() = %v (code %s), want EInvalid with %q", err, proactive.ErrorCode(err), tt.want)
			}
		})
	}
}
