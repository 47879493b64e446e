package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// MaxPayload is the largest message payload the ingester accepts.
const MaxPayload = 64 << 10

// Reason says why a message, or an entry of it, went to the dead letters.
// Reasons are the label values of the dead-letter counter.
type Reason string

// The reasons for a dead letter.
const (
	ReasonTooLarge       Reason = "too_large"
	ReasonNotJSON        Reason = "not_json"
	ReasonWrongType      Reason = "wrong_type"
	ReasonNonFinite      Reason = "non_finite"
	ReasonBadMetricName  Reason = "bad_metric_name"
	ReasonBadTimestamp   Reason = "bad_timestamp"
	ReasonNoMetrics      Reason = "no_metrics"
	ReasonBadTopic       Reason = "bad_topic"
	ReasonUnknownDevice  Reason = "unknown_device"
	ReasonWriteRejected  Reason = "write_rejected"
	ReasonShutdownUnsent Reason = "shutdown_unsent"
	// The reasons particular to device events.
	ReasonNoEvents     Reason = "no_events"
	ReasonBadEventCode Reason = "bad_event_code"
	ReasonBadComponent Reason = "bad_component"
	ReasonBadSeverity  Reason = "bad_severity"
	ReasonBadText      Reason = "bad_text"
	// The reasons of the per-device limits (Options).
	ReasonDuplicateMetric Reason = "duplicate_metric"
	ReasonTooManyMetrics  Reason = "too_many_metrics"
	ReasonRateLimited     Reason = "rate_limited"
)

// Reasons lists every reason, so that counters can start at zero.
var Reasons = []Reason{
	ReasonTooLarge, ReasonNotJSON, ReasonWrongType, ReasonNonFinite, ReasonBadMetricName,
	ReasonBadTimestamp, ReasonNoMetrics, ReasonBadTopic, ReasonUnknownDevice, ReasonWriteRejected,
	ReasonShutdownUnsent, ReasonNoEvents, ReasonBadEventCode, ReasonBadComponent, ReasonBadSeverity,
	ReasonBadText, ReasonDuplicateMetric, ReasonTooManyMetrics, ReasonRateLimited,
}

// EntryError is the rejection of one entry of a payload, or of the whole
// payload when Entry is -1.
type EntryError struct {
	Entry  int
	Reason Reason
	Detail string
}

func (e EntryError) Error() string {
	if e.Entry < 0 {
		return fmt.Sprintf("%s: %s", e.Reason, e.Detail)
	}
	return fmt.Sprintf("entry %d: %s: %s", e.Entry, e.Reason, e.Detail)
}

// Reading is one decoded entry of a telemetry payload.
type Reading struct {
	Time    time.Time
	Metrics map[string]float64
}

// entry is the wire form of one reading; values stay raw so that each can be
// judged on its own and explained precisely, and metrics stays raw so that
// a name given twice is seen (a map would keep the last silently).
type entry struct {
	TS      json.RawMessage `json:"ts"`
	Metrics json.RawMessage `json:"metrics"`
}

// MinTime is the earliest timestamp accepted: nothing a device measures
// predates it, and a device whose clock says otherwise has not set it
// (ts 1 would be stored in 1970).
var MinTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultMaxClockSkew is how far ahead of its receipt a timestamp may be by
// default.
const DefaultMaxClockSkew = 7 * 24 * time.Hour

// Decoder decodes payloads with the bounds it holds; the zero Decoder has
// the defaults.
type Decoder struct {
	// MaxClockSkew is how far ahead of the time of receipt a timestamp may
	// be, default DefaultMaxClockSkew.
	MaxClockSkew time.Duration
}

func (d Decoder) skew() time.Duration {
	if d.MaxClockSkew <= 0 {
		return DefaultMaxClockSkew
	}
	return d.MaxClockSkew
}

// DecodeTelemetry decodes a telemetry payload with the zero Decoder.
func DecodeTelemetry(payload []byte, received time.Time) ([]Reading, []EntryError) {
	return Decoder{}.Telemetry(payload, received)
}

// Telemetry decodes a telemetry payload: a JSON object or an array of
// them. It returns the valid readings and one EntryError per rejected entry
// (or a single one with Entry -1 when the whole payload is unusable). Entries
// without ts take received; a ts before MinTime or more than MaxClockSkew
// after received is refused (bad_timestamp), and so is a metric named twice
// in one entry (duplicate_metric).
func (d Decoder) Telemetry(payload []byte, received time.Time) ([]Reading, []EntryError) {
	if len(payload) > MaxPayload {
		return nil, []EntryError{{-1, ReasonTooLarge, fmt.Sprintf("payload is %d bytes, the limit is %d", len(payload), MaxPayload)}}
	}
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 {
		return nil, []EntryError{{-1, ReasonNotJSON, "empty payload"}}
	}
	if readings, ok := decodeFast(trimmed, received, d.skew()); ok {
		return readings, nil
	}
	return decodeTelemetry(trimmed, received, d.skew())
}

// entries splits a payload into its entries: the object itself, or each
// element of an array; an empty array is refused with emptyReason.
func entries(trimmed []byte, emptyReason Reason) ([]json.RawMessage, []EntryError) {
	if !json.Valid(trimmed) {
		return nil, []EntryError{{-1, ReasonNotJSON, jsonSyntaxDetail(trimmed)}}
	}
	var raws []json.RawMessage
	switch trimmed[0] {
	case '{':
		raws = []json.RawMessage{trimmed}
	case '[':
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, []EntryError{{-1, ReasonNotJSON, err.Error()}}
		}
		if len(raws) == 0 {
			return nil, []EntryError{{-1, emptyReason, "empty array"}}
		}
	default:
		return nil, []EntryError{{-1, ReasonWrongType, "payload must be a JSON object or an array of objects, got " + jsonKind(trimmed)}}
	}
	return raws, nil
}

// decodeTelemetry is the full decoder: it judges every payload and explains
// every fault. decodeFast handles the common well-formed ones in one pass.
func decodeTelemetry(trimmed []byte, received time.Time, skew time.Duration) ([]Reading, []EntryError) {
	raws, errs := entries(trimmed, ReasonNoMetrics)
	if errs != nil {
		return nil, errs
	}
	readings := make([]Reading, 0, len(raws))
	for i, raw := range raws {
		r, reason, detail := decodeEntry(raw, received, skew)
		if reason != "" {
			idx := i
			if trimmed[0] == '{' {
				idx = -1
			}
			errs = append(errs, EntryError{idx, reason, detail})
			continue
		}
		readings = append(readings, r)
	}
	return readings, errs
}

func decodeEntry(raw json.RawMessage, received time.Time, skew time.Duration) (Reading, Reason, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return Reading{}, ReasonWrongType, "entry must be an object, got " + jsonKind(raw)
	}
	var e entry
	if err := json.Unmarshal(raw, &e); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Reading{}, ReasonWrongType, fmt.Sprintf("%q must be %s, got %s", te.Field, expectedKind(te.Field), te.Value)
		}
		return Reading{}, ReasonNotJSON, err.Error()
	}
	ts, err := parseTS(e.TS, received, skew)
	if err != nil {
		return Reading{}, ReasonBadTimestamp, err.Error()
	}
	fields, reason, detail := metricFields(e.Metrics)
	if reason != "" {
		return Reading{}, reason, detail
	}
	if len(fields) == 0 {
		return Reading{}, ReasonNoMetrics, `"metrics" is missing or empty`
	}
	metrics := make(map[string]float64, len(fields))
	// Judged in name order, so an entry with several faults always gets the
	// same reason.
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		v := fields[name]
		if !proactive.ValidMetricName(name) {
			return Reading{}, ReasonBadMetricName, fmt.Sprintf("metric name %q does not match [a-z][a-z0-9_]{0,63}", truncate(name, 80))
		}
		f, reason, detail := parseValue(v)
		if reason != "" {
			return Reading{}, reason, fmt.Sprintf("metric %q: %s", name, detail)
		}
		metrics[name] = f
	}
	return Reading{Time: ts, Metrics: metrics}, "", ""
}

// metricFields splits the raw "metrics" object into its fields, refusing a
// name given twice. Absent and null are no fields.
func metricFields(raw json.RawMessage) (map[string]json.RawMessage, Reason, string) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, "", ""
	}
	if raw[0] != '{' {
		return nil, ReasonWrongType, `"metrics" must be an object, got ` + jsonKind(raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return nil, ReasonNotJSON, err.Error()
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, ReasonNotJSON, err.Error()
		}
		name, _ := tok.(string) // an object's keys are strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, ReasonNotJSON, err.Error()
		}
		if _, dup := fields[name]; dup {
			return nil, ReasonDuplicateMetric, fmt.Sprintf("metric %q is given twice", truncate(name, 80))
		}
		fields[name] = v
	}
	return fields, "", ""
}

// parseTS reads a timestamp, received when absent, and refuses one before
// MinTime or more than skew after received.
func parseTS(raw json.RawMessage, received time.Time, skew time.Duration) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return received, nil
	}
	var t time.Time
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return t, fmt.Errorf("ts: %v", err)
		}
		p, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return t, fmt.Errorf("ts %q is not RFC 3339", truncate(s, 40))
		}
		t = p
	default:
		ms, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			// A float with a zero fraction (1.7e12) is still a whole millisecond.
			f, ferr := strconv.ParseFloat(string(raw), 64)
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
				return t, fmt.Errorf("ts %s is neither whole Unix milliseconds nor an RFC 3339 string", truncate(string(raw), 40))
			}
			ms = int64(f)
		}
		t = time.UnixMilli(ms)
	}
	if t.Before(MinTime) {
		return t, fmt.Errorf("ts %s is before 2000-01-01: is the device's clock set?", truncate(string(raw), 40))
	}
	if t.After(received.Add(skew)) {
		return t, fmt.Errorf("ts %s is more than %s ahead of the time of receipt", truncate(string(raw), 40), proactive.FormatDuration(skew))
	}
	return t, nil
}

func parseValue(raw json.RawMessage) (float64, Reason, string) {
	s := string(raw)
	switch {
	case s == "true":
		return 1, "", ""
	case s == "false":
		return 0, "", ""
	case len(s) > 0 && (s[0] == '-' || s[0] >= '0' && s[0] <= '9'):
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, ReasonNonFinite, fmt.Sprintf("%s is not a finite number", truncate(s, 40))
		}
		return f, "", ""
	case len(s) > 0 && s[0] == '"':
		var str string
		_ = json.Unmarshal(raw, &str)
		switch strings.ToLower(strings.TrimSpace(str)) {
		case "nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity":
			return 0, ReasonNonFinite, fmt.Sprintf("%s is not a finite number", truncate(s, 40))
		}
	}
	return 0, ReasonWrongType, "must be a number or a boolean, got " + jsonKind(raw)
}

// DecodeStatus decodes a status payload {"online": true|false}.
func DecodeStatus(payload []byte) (bool, *EntryError) {
	if len(payload) > MaxPayload {
		return false, &EntryError{-1, ReasonTooLarge, fmt.Sprintf("payload is %d bytes, the limit is %d", len(payload), MaxPayload)}
	}
	trimmed := bytes.TrimSpace(payload)
	if !json.Valid(trimmed) {
		return false, &EntryError{-1, ReasonNotJSON, jsonSyntaxDetail(trimmed)}
	}
	var st struct {
		Online *bool `json:"online"`
	}
	if err := json.Unmarshal(trimmed, &st); err != nil {
		return false, &EntryError{-1, ReasonWrongType, `status must be {"online": true|false}`}
	}
	if st.Online == nil {
		return false, &EntryError{-1, ReasonWrongType, `status must be {"online": true|false}: "online" is missing`}
	}
	return *st.Online, nil
}

func jsonSyntaxDetail(b []byte) string {
	var v any
	err := json.Unmarshal(b, &v)
	if err == nil {
		return "invalid JSON"
	}
	return "invalid JSON: " + err.Error()
}

func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func expectedKind(field string) string {
	switch field {
	case "metrics":
		return "an object"
	case "ts":
		return "Unix milliseconds or an RFC 3339 string"
	}
	return "a number"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// TopicKind is what a topic carries.
type TopicKind int

// The topics the ingester understands.
const (
	TopicUnknown TopicKind = iota
	TopicTelemetry
	TopicStatus
	TopicEvents
	topicKinds // how many there are
)

// ParseTopic splits "{prefix}/{device_id}/telemetry", ".../status" or
// ".../events". It
// returns TopicUnknown and no error for topics that are not ours: outside the
// prefix, or with another suffix (devices/x/commands). A topic of ours with an
// invalid device id, or a topic with no suffix at all, is an error.
func ParseTopic(prefix, topic string) (proactive.DeviceID, TopicKind, error) {
	rest, ok := strings.CutPrefix(topic, prefix+"/")
	if !ok {
		return "", TopicUnknown, nil
	}
	id, suffix, ok := strings.Cut(rest, "/")
	if !ok {
		return "", TopicUnknown, fmt.Errorf("topic %q has no /telemetry, /status or /events suffix", truncate(topic, 100))
	}
	var kind TopicKind
	switch suffix {
	case "telemetry":
		kind = TopicTelemetry
	case "status":
		kind = TopicStatus
	case "events":
		kind = TopicEvents
	default:
		return "", TopicUnknown, nil
	}
	if !proactive.ValidDeviceID(id) {
		return "", kind, fmt.Errorf("device id %q does not match [A-Za-z0-9_.-]{1,64}", truncate(id, 80))
	}
	return proactive.DeviceID(id), kind, nil
}
