package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/proactivehq/proactive"
)

// eventEntry is the wire form of one device event; values stay raw so that
// each can be judged on its own. As for telemetry, keys are matched the way
// encoding/json matches them and unknown keys are ignored, so a device may
// send more than the platform reads.
type eventEntry struct {
	TS        json.RawMessage `json:"ts"`
	Code      json.RawMessage `json:"code"`
	Component json.RawMessage `json:"component"`
	Severity  json.RawMessage `json:"severity"`
	Text      json.RawMessage `json:"text"`
}

// DecodeEvents decodes an events payload with the zero Decoder.
func DecodeEvents(payload []byte, received time.Time) ([]proactive.Event, []EntryError) {
	return Decoder{}.Events(payload, received)
}

// Events decodes an events payload: a JSON object or an array of them,
// each {"ts", "code", "component", "severity", "text"} with code required.
// It returns the valid events, without Device (the topic says whose they
// are), and one EntryError per rejected entry (or a single one with Entry
// -1 when the whole payload is unusable), by the same rules as
// Telemetry. Entries without ts take received.
func (d Decoder) Events(payload []byte, received time.Time) ([]proactive.Event, []EntryError) {
	if len(payload) > MaxPayload {
		return nil, []EntryError{{-1, ReasonTooLarge, fmt.Sprintf("payload is %d bytes, the limit is %d", len(payload), MaxPayload)}}
	}
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 {
		return nil, []EntryError{{-1, ReasonNotJSON, "empty payload"}}
	}
	raws, errs := entries(trimmed, ReasonNoEvents)
	if errs != nil {
		return nil, errs
	}
	events := make([]proactive.Event, 0, len(raws))
	for i, raw := range raws {
		e, reason, detail := decodeEvent(raw, received, d.skew())
		if reason != "" {
			idx := i
			if trimmed[0] == '{' {
				idx = -1
			}
			errs = append(errs, EntryError{idx, reason, detail})
			continue
		}
		events = append(events, e)
	}
	return events, errs
}

// decodeEvent judges one entry, its fields in a fixed order (ts, code,
// component, severity, text) so that an entry with several faults always
// gets the same reason.
func decodeEvent(raw json.RawMessage, received time.Time, skew time.Duration) (proactive.Event, Reason, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return proactive.Event{}, ReasonWrongType, "entry must be an object, got " + jsonKind(raw)
	}
	var w eventEntry
	if err := json.Unmarshal(raw, &w); err != nil {
		return proactive.Event{}, ReasonNotJSON, err.Error() // raw fields take any JSON value; not reached
	}
	ts, err := parseTS(w.TS, received, skew)
	if err != nil {
		return proactive.Event{}, ReasonBadTimestamp, err.Error()
	}
	e := proactive.Event{Time: ts}
	var ok bool
	if e.Code, ok = jsonString(w.Code); !ok {
		return proactive.Event{}, ReasonWrongType, `"code" must be a string, got ` + jsonKind(w.Code)
	}
	switch {
	case len(w.Code) == 0 || string(w.Code) == "null":
		return proactive.Event{}, ReasonBadEventCode, `"code" is required`
	case !proactive.ValidEventCode(e.Code):
		return proactive.Event{}, ReasonBadEventCode, fmt.Sprintf("code %q does not match [A-Za-z0-9_.:-]{1,64}", truncate(e.Code, 80))
	}
	if e.Component, ok = jsonString(w.Component); !ok {
		return proactive.Event{}, ReasonWrongType, `"component" must be a string, got ` + jsonKind(w.Component)
	}
	if e.Component != "" && !proactive.ValidMetricName(e.Component) {
		return proactive.Event{}, ReasonBadComponent, fmt.Sprintf("component %q does not match [a-z][a-z0-9_]{0,63}", truncate(e.Component, 80))
	}
	var severity string
	if severity, ok = jsonString(w.Severity); !ok {
		return proactive.Event{}, ReasonWrongType, `"severity" must be a string, got ` + jsonKind(w.Severity)
	}
	e.Severity = proactive.Severity(severity)
	if e.Severity != "" && !proactive.ValidEventSeverity(e.Severity) {
		return proactive.Event{}, ReasonBadSeverity, fmt.Sprintf("severity %q is not one of info, warning, error, critical", truncate(severity, 40))
	}
	if e.Text, ok = jsonString(w.Text); !ok {
		return proactive.Event{}, ReasonWrongType, `"text" must be a string, got ` + jsonKind(w.Text)
	}
	// encoding/json turns invalid UTF-8 into U+FFFD, so the raw bytes are
	// the ones to judge.
	if !utf8.Valid(w.Text) {
		return proactive.Event{}, ReasonBadText, "text is not valid UTF-8"
	}
	if n := utf8.RuneCountInString(e.Text); n > proactive.MaxEventTextLen {
		return proactive.Event{}, ReasonBadText, fmt.Sprintf("text is %d characters, the limit is %d", n, proactive.MaxEventTextLen)
	}
	if strings.ContainsFunc(e.Text, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) {
		return proactive.Event{}, ReasonBadText, "text contains control characters other than newline and tab"
	}
	return e, "", ""
}

// jsonString returns the string raw holds, "" for an absent or null value,
// and false when raw is another kind of value.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	if raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		// No escapes: the payload is valid JSON, so the bytes between the
		// quotes are the string (invalid UTF-8 aside, which every field
		// rejects anyway).
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}
