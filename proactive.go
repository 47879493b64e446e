// Package proactive holds the vocabulary shared by every part of the platform:
// device identifiers, telemetry samples, device events and maintenance,
// alerts and severities, the registry's devices, customers and technicians,
// tickets and their transitions, error codes, the one duration grammar and
// the one retry backoff. It depends on the standard library only, so every
// package can import it.
package proactive

import (
	"log/slog"
	"time"
)

// DeviceID identifies one connected product. It is the second level of the
// MQTT topic and the device_id tag in InfluxDB.
type DeviceID string

// MaxDeviceIDLen is the longest device id the platform accepts.
const MaxDeviceIDLen = 64

// MaxMetricNameLen is the longest metric name the platform accepts.
const MaxMetricNameLen = 64

// ValidDeviceID reports whether s matches [A-Za-z0-9_.-]{1,64}.
func ValidDeviceID(s string) bool {
	if len(s) == 0 || len(s) > MaxDeviceIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidMetricName reports whether s matches [a-z][a-z0-9_]{0,63}.
func ValidMetricName(s string) bool {
	if len(s) == 0 || len(s) > MaxMetricNameLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Sample is one reading of a device: several metrics taken at one instant.
type Sample struct {
	Device DeviceID
	// Model is the registered model of the device, empty when unknown.
	Model   string
	Time    time.Time
	Metrics map[string]float64
}

// DeviceStatus is a device's report that it went online or offline,
// usually published by the broker as the device's MQTT will.
type DeviceStatus struct {
	Device DeviceID
	Model  string
	Time   time.Time
	Online bool
}

// Severity ranks how urgent an alert is.
type Severity string

// The severities a rule may declare.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Valid reports whether s is a severity a rule may declare: info, warning
// or critical. A device event may also carry SeverityError (see
// ValidEventSeverity).
func (s Severity) Valid() bool {
	switch s {
	case SeverityInfo, SeverityWarning, SeverityCritical:
		return true
	}
	return false
}

// AlertState is where an alert stands in its lifecycle.
type AlertState string

// The states of an alert: pending until its condition has held for the rule's
// `for`, then firing, then resolved once the condition has been false for
// `clear_for`.
const (
	AlertPending  AlertState = "pending"
	AlertFiring   AlertState = "firing"
	AlertResolved AlertState = "resolved"
)

// Alert is a rule's verdict that a component of a device is failing. There is
// at most one firing alert per device and component.
type Alert struct {
	Rule      string
	Device    DeviceID
	Model     string
	Component string
	Severity  Severity
	State     AlertState
	Summary   string
	// ActiveAt is when the condition first held; FiredAt when the alert fired.
	ActiveAt time.Time
	FiredAt  time.Time
	// TimeToFailure is the rule's prediction, zero when it gives none.
	TimeToFailure time.Duration
	Metrics       map[string]float64
	// Cooldown is the rule's: no second ticket for this device and component
	// within it of the last one. The rule engine applies it to what it
	// remembers; the ticket store applies it to what it holds, so that it
	// survives a restart.
	Cooldown time.Duration
	// Contact is the rule's contact policy: who hears of the alert. Empty
	// is ContactAuto.
	Contact Contact
	// Models are the rule's model globs (path.Match), none when it applies to
	// every model: the notifier counts the registered devices the rule
	// applies to, the base of an incident's share.
	Models []string
}

// LogValue logs an alert as a group of the platform's log keys (rule,
// device_id, component), so that its component never collides with the
// "component" that names the logging part of the platform.
func (a Alert) LogValue() slog.Value {
	return slog.GroupValue(slog.String("rule", a.Rule), slog.String("device_id", string(a.Device)),
		slog.String("component", a.Component), slog.Time("fired_at", a.FiredAt))
}

// TicketStatus is where a proactive ticket stands.
type TicketStatus string

// Ticket states: open (or review) → offered → scheduled → visited → closed,
// or one of the terminal states declined, expired and cancelled. A ticket in
// review waits for a dispatcher to approve it (the offer goes out) or dismiss
// it (closed as a false alarm) before any customer is texted.
const (
	TicketOpen      TicketStatus = "open"
	TicketReview    TicketStatus = "review"
	TicketOffered   TicketStatus = "offered"
	TicketScheduled TicketStatus = "scheduled"
	TicketVisited   TicketStatus = "visited"
	TicketClosed    TicketStatus = "closed"
	TicketDeclined  TicketStatus = "declined"
	TicketExpired   TicketStatus = "expired"
	TicketCancelled TicketStatus = "cancelled"
)
