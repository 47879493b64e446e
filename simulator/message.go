package simulator

import (
	"encoding/json"
	"strconv"
	"time"
)

// Value is one metric's value.
type Value struct {
	Name string
	V    float64
}

// Reading is one sample as a device sends it: its timestamp, by the
// device's own clock, and its metrics.
type Reading struct {
	Time    time.Time
	Metrics []Value
}

// Message is what a device publishes at a moment of simulated time: one or
// more readings on its telemetry topic (more after it held data back), one
// or more events on its events topic, or a status.
type Message struct {
	Device string
	// At is the simulated time the device publishes it.
	At time.Time
	// Status marks a status message, with Online its content; a message
	// with Events is events; otherwise the message is telemetry with
	// Readings.
	Status   bool
	Online   bool
	Readings []Reading
	Events   []DeviceEvent
	dev      int // index of the device in the feed
}

// Topic returns the message's topic under prefix: PREFIX/ID/telemetry,
// PREFIX/ID/events or PREFIX/ID/status.
func (m *Message) Topic(prefix string) string {
	switch {
	case m.Status:
		return prefix + "/" + m.Device + "/status"
	case len(m.Events) > 0:
		return prefix + "/" + m.Device + "/events"
	}
	return prefix + "/" + m.Device + "/telemetry"
}

// Payload returns the message as the platform takes it: {"online": bool}
// for a status, {"ts": ms, "metrics": {...}} for one reading,
// {"ts": ms, "code": ..., "component": ..., "severity": ..., "text": ...}
// for one event (without the optional keys that are empty), and an array of
// readings or events for several.
func (m *Message) Payload() []byte {
	return m.AppendPayload(nil)
}

// AppendPayload appends the payload to b.
func (m *Message) AppendPayload(b []byte) []byte {
	if m.Status {
		if m.Online {
			return append(b, `{"online":true}`...)
		}
		return append(b, `{"online":false}`...)
	}
	if len(m.Events) > 0 {
		return appendEvents(b, m.Events)
	}
	if len(m.Readings) == 1 {
		return appendReading(b, &m.Readings[0])
	}
	b = append(b, '[')
	for i := range m.Readings {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendReading(b, &m.Readings[i])
	}
	return append(b, ']')
}

func appendReading(b []byte, r *Reading) []byte {
	b = append(b, `{"ts":`...)
	b = strconv.AppendInt(b, r.Time.UnixMilli(), 10)
	b = append(b, `,"metrics":{`...)
	for i, v := range r.Metrics {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, v.Name...) // metric names need no escaping: [a-z][a-z0-9_]*
		b = append(b, `":`...)
		b = strconv.AppendFloat(b, v.V, 'f', -1, 64)
	}
	return append(b, "}}"...)
}

// readingSize estimates the bytes of a reading in a payload.
func readingSize(r *Reading) int {
	n := 32
	for _, v := range r.Metrics {
		n += len(v.Name) + 24
	}
	return n
}

func appendEvents(b []byte, es []DeviceEvent) []byte {
	if len(es) == 1 {
		return appendEvent(b, &es[0])
	}
	b = append(b, '[')
	for i := range es {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEvent(b, &es[i])
	}
	return append(b, ']')
}

func appendEvent(b []byte, e *DeviceEvent) []byte {
	b = append(b, `{"ts":`...)
	b = strconv.AppendInt(b, e.Time.UnixMilli(), 10)
	b = append(b, `,"code":`...)
	b = appendString(b, e.Code)
	if e.Component != "" {
		b = append(b, `,"component":`...)
		b = appendString(b, e.Component)
	}
	if e.Severity != "" {
		b = append(b, `,"severity":`...)
		b = appendString(b, string(e.Severity))
	}
	if e.Text != "" {
		b = append(b, `,"text":`...)
		b = appendString(b, e.Text)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string: texts come from scenario files
// and may hold quotes or any character.
func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// eventSize estimates the bytes of an event in a payload.
func eventSize(e *DeviceEvent) int {
	return 64 + len(e.Code) + len(e.Component) + len(e.Severity) + 2*len(e.Text)
}
