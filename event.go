package proactive

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxEventCodeLen is the longest event code the platform accepts.
const MaxEventCodeLen = 64

// MaxEventTextLen is the longest event text, in characters.
const MaxEventTextLen = 256

// SeverityError ranks a device event between warning and critical. Devices
// report it; a rule does not declare it (see Severity.Valid).
const SeverityError Severity = "error"

// ValidEventSeverity reports whether s is a severity a device event may
// carry: info, warning, error or critical.
func ValidEventSeverity(s Severity) bool {
	return s == SeverityError || s.Valid()
}

// Event is something a device reports about itself, such as an error code,
// on devices/{device_id}/events. It is not a ticket's timeline entry (see
// TicketEvent).
type Event struct {
	Device DeviceID  `json:"device_id"`
	Time   time.Time `json:"time"`
	// Code is the device's own code, such as E101: [A-Za-z0-9_.:-]{1,64}.
	Code string `json:"code"`
	// Component, Severity and Text are optional.
	Component string   `json:"component,omitempty"`
	Severity  Severity `json:"severity,omitempty"`
	Text      string   `json:"text,omitempty"`

	// Model is the registered model of the device, empty when unknown, as
	// in Sample; ingest fills it in.
	Model string `json:"model,omitempty"`
}

// ValidEventCode reports whether s matches [A-Za-z0-9_.:-]{1,64}.
func ValidEventCode(s string) bool {
	if len(s) == 0 || len(s) > MaxEventCodeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// Validate checks e and returns an EInvalid *Error naming every problem, or
// nil.
func (e Event) Validate() error {
	var p problems
	p.check(ValidDeviceID(string(e.Device)), "device_id %q must match [A-Za-z0-9_.-]{1,64}", e.Device)
	p.check(!e.Time.IsZero(), "time is required")
	p.check(ValidEventCode(e.Code), "code %q must match [A-Za-z0-9_.:-]{1,64}", e.Code)
	p.check(e.Component == "" || ValidMetricName(e.Component),
		"component %q must match [a-z][a-z0-9_]{0,63}", e.Component)
	p.check(e.Severity == "" || ValidEventSeverity(e.Severity),
		"severity %q is not one of info, warning, error, critical", e.Severity)
	p.text("text", e.Text, MaxEventTextLen)
	return p.err("event")
}

// MaintenanceKind is what was done to a device's component.
type MaintenanceKind string

// The kinds of maintenance.
const (
	MaintenanceReplaced  MaintenanceKind = "replaced"
	MaintenanceRepaired  MaintenanceKind = "repaired"
	MaintenanceInspected MaintenanceKind = "inspected"
)

// Valid reports whether k is one of the declared kinds.
func (k MaintenanceKind) Valid() bool {
	switch k {
	case MaintenanceReplaced, MaintenanceRepaired, MaintenanceInspected:
		return true
	}
	return false
}

// MaxMaintenanceNotesLen is the longest maintenance note, in characters.
const MaxMaintenanceNotesLen = 2000

// Maintenance is a record that a device's component was replaced, repaired
// or inspected. A rule that resets on maintenance starts a new baseline at
// Time.
type Maintenance struct {
	// ID is the store's sequence number of the record, increasing in the
	// order records were written (0 before it is stored): a reader that
	// has seen ID n asks for the records after n.
	ID        int64           `json:"id,omitempty"`
	Device    DeviceID        `json:"device_id"`
	Time      time.Time       `json:"time"`
	Component string          `json:"component"`
	Kind      MaintenanceKind `json:"kind"`
	Notes     string          `json:"notes,omitempty"`
}

// Validate checks m and returns an EInvalid *Error naming every problem, or
// nil.
func (m Maintenance) Validate() error {
	var p problems
	p.check(ValidDeviceID(string(m.Device)), "device_id %q must match [A-Za-z0-9_.-]{1,64}", m.Device)
	p.check(!m.Time.IsZero(), "time is required")
	p.check(ValidMetricName(m.Component), "component %q must match [a-z][a-z0-9_]{0,63}", m.Component)
	p.check(m.Kind.Valid(), "kind %q is not one of replaced, repaired, inspected", m.Kind)
	p.text("notes", m.Notes, MaxMaintenanceNotesLen)
	return p.err("maintenance")
}

// problems collects what is wrong with a value, in the order found.
type problems []string

func (p *problems) check(ok bool, format string, args ...any) {
	if !ok {
		*p = append(*p, fmt.Sprintf(format, args...))
	}
}

// text checks an optional free-text field: valid UTF-8, at most max
// characters, no control characters but newlines and tabs.
func (p *problems) text(field, s string, max int) {
	switch {
	case !utf8.ValidString(s):
		p.check(false, "%s is not valid UTF-8", field)
	case utf8.RuneCountInString(s) > max:
		p.check(false, "%s is longer than %d characters", field, max)
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }):
		p.check(false, "%s contains control characters", field)
	}
}

func (p problems) err(what string) error {
	if len(p) == 0 {
		return nil
	}
	return Errorf(EInvalid, "invalid %s: %s", what, strings.Join(p, "; "))
}
