package ingest_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
)

type eventCase struct {
	name    string
	payload string
	want    []proactive.Event
	// wantErrs are compared on Entry and Reason; Detail must not be empty.
	wantErrs []ingest.EntryError
}

// ev is an event as the decoder returns it: without device or model.
func ev(at time.Time, code string) proactive.Event {
	return proactive.Event{Time: at, Code: code}
}

func eventCases() []eventCase {
	at := time.UnixMilli(tsMillis)
	code64 := "E" + strings.Repeat("1", 63)
	text256 := strings.Repeat("é", 256)
	full := proactive.Event{Time: at, Code: "E101", Component: "compressor", Severity: "error", Text: "overcurrent trip"}
	with := func(f func(*proactive.Event)) []proactive.Event {
		e := ev(received, "E1")
		f(&e)
		return []proactive.Event{e}
	}
	return []eventCase{
		// Shapes.
		{
			name:    "the contract's example",
			payload: `{"ts": 1763791200000, "code": "E101", "component": "compressor", "severity": "error", "text": "overcurrent trip"}`,
			want:    []proactive.Event{full},
		},
		{
			name:    "array of events",
			payload: `[{"ts": 1763791200000, "code": "E101"}, {"ts": 1763791201000, "code": "W7", "severity": "warning"}]`,
			want:    []proactive.Event{ev(at, "E101"), {Time: at.Add(time.Second), Code: "W7", Severity: "warning"}},
		},
		{name: "surrounding whitespace", payload: "\n {\"code\": \"E1\"} \t", want: []proactive.Event{ev(received, "E1")}},
		{
			// As for telemetry: encoding/json's matching, unknown keys ignored.
			name:    "unknown fields are ignored",
			payload: `{"code": "E1", "firmware": "1.2.3", "extra": {"nested": [1, 2]}, "metrics": {"a": 1}}`,
			want:    []proactive.Event{ev(received, "E1")},
		},
		{name: "keys match without regard to case", payload: `{"CODE": "E1", "Severity": "info"}`, want: with(func(e *proactive.Event) { e.Severity = "info" })},
		{name: "a repeated key takes the last value", payload: `{"code": "E1", "code": "E2"}`, want: []proactive.Event{ev(received, "E2")}},
		{name: "empty array", payload: `[]`, wantErrs: whole(ingest.ReasonNoEvents)},
		{name: "empty object has no code", payload: `{}`, wantErrs: whole(ingest.ReasonBadEventCode)},

		// Timestamps, as for telemetry.
		{name: "ts absent is the time of receipt", payload: `{"code": "E1"}`, want: []proactive.Event{ev(received, "E1")}},
		{name: "ts null is the time of receipt", payload: `{"ts": null, "code": "E1"}`, want: []proactive.Event{ev(received, "E1")}},
		{name: "ts Unix milliseconds", payload: `{"ts": 1763791200000, "code": "E1"}`, want: []proactive.Event{ev(at, "E1")}},
		{name: "ts RFC 3339 with offset", payload: `{"ts": "2025-11-22T07:00:00.25+01:00", "code": "E1"}`, want: []proactive.Event{ev(at.Add(250*time.Millisecond), "E1")}},
		{name: "ts bad string", payload: `{"ts": "yesterday", "code": "E1"}`, wantErrs: whole(ingest.ReasonBadTimestamp)},
		{name: "ts fractional milliseconds", payload: `{"ts": 1763791200000.5, "code": "E1"}`, wantErrs: whole(ingest.ReasonBadTimestamp)},
		{name: "ts boolean", payload: `{"ts": true, "code": "E1"}`, wantErrs: whole(ingest.ReasonBadTimestamp)},
		{name: "ts after 2262", payload: `{"ts": 9300000000000, "code": "E1"}`, wantErrs: whole(ingest.ReasonBadTimestamp)},
		{name: "ts before 2000", payload: `{"ts": 1, "code": "E1"}`, wantErrs: whole(ingest.ReasonBadTimestamp)},
		{name: "ts more than 7 days ahead", payload: `{"ts": "2025-12-01T00:00:00Z", "code": "E1"}`, wantErrs: whole(ingest.ReasonBadTimestamp)},

		// code.
		{name: "code every allowed character", payload: `{"code": "Az09_.:-"}`, want: []proactive.Event{ev(received, "Az09_.:-")}},
		{name: "code one character", payload: `{"code": "7"}`, want: []proactive.Event{ev(received, "7")}},
		{name: "code 64 characters", payload: `{"code": "` + code64 + `"}`, want: []proactive.Event{ev(received, code64)}},
		{name: "code with an escape", payload: `{"code": "E\u0031"}`, want: []proactive.Event{ev(received, "E1")}},
		{name: "code 65 characters", payload: `{"code": "` + code64 + `1"}`, wantErrs: whole(ingest.ReasonBadEventCode)},
		{name: "code missing", payload: `{"ts": 1763791200000, "text": "no code"}`, wantErrs: whole(ingest.ReasonBadEventCode)},
		{name: "code null", payload: `{"code": null}`, wantErrs: whole(ingest.ReasonBadEventCode)},
		{name: "code empty", payload: `{"code": ""}`, wantErrs: whole(ingest.ReasonBadEventCode)},
		{name: "code with space", payload: `{"code": "E 1"}`, wantErrs: whole(ingest.ReasonBadEventCode)},
		{name: "code with slash", payload: `{"code": "E/1"}`, wantErrs: whole(ingest.ReasonBadEventCode)},
		{name: "code with comma", payload: `{"code": "E,1"}`, wantErrs: whole(ingest.ReasonBadEventCode)},
		{name: "code with equals sign", payload: `{"code": "E=1"}`, wantErrs: whole(ingest.ReasonBadEventCode)},
		{name: "code non-ASCII", payload: `{"code": "É1"}`, wantErrs: whole(ingest.ReasonBadEventCode)},
		{name: "code a number", payload: `{"code": 101}`, wantErrs: whole(ingest.ReasonWrongType)},
		{name: "code an object", payload: `{"code": {"id": "E1"}}`, wantErrs: whole(ingest.ReasonWrongType)},

		// component.
		{name: "component", payload: `{"code": "E1", "component": "fan_2"}`, want: with(func(e *proactive.Event) { e.Component = "fan_2" })},
		{name: "component null is absent", payload: `{"code": "E1", "component": null}`, want: []proactive.Event{ev(received, "E1")}},
		{name: "component empty is absent", payload: `{"code": "E1", "component": ""}`, want: []proactive.Event{ev(received, "E1")}},
		{name: "component uppercase", payload: `{"code": "E1", "component": "Fan"}`, wantErrs: whole(ingest.ReasonBadComponent)},
		{name: "component with hyphen", payload: `{"code": "E1", "component": "fan-2"}`, wantErrs: whole(ingest.ReasonBadComponent)},
		{name: "component leading digit", payload: `{"code": "E1", "component": "2fan"}`, wantErrs: whole(ingest.ReasonBadComponent)},
		{name: "component 65 characters", payload: `{"code": "E1", "component": "a` + strings.Repeat("b", 64) + `"}`, wantErrs: whole(ingest.ReasonBadComponent)},
		{name: "component a number", payload: `{"code": "E1", "component": 2}`, wantErrs: whole(ingest.ReasonWrongType)},

		// severity.
		{name: "severity info", payload: `{"code": "E1", "severity": "info"}`, want: with(func(e *proactive.Event) { e.Severity = "info" })},
		{name: "severity warning", payload: `{"code": "E1", "severity": "warning"}`, want: with(func(e *proactive.Event) { e.Severity = "warning" })},
		{name: "severity error", payload: `{"code": "E1", "severity": "error"}`, want: with(func(e *proactive.Event) { e.Severity = "error" })},
		{name: "severity critical", payload: `{"code": "E1", "severity": "critical"}`, want: with(func(e *proactive.Event) { e.Severity = "critical" })},
		{name: "severity null is absent", payload: `{"code": "E1", "severity": null}`, want: []proactive.Event{ev(received, "E1")}},
		{name: "severity in capitals", payload: `{"code": "E1", "severity": "ERROR"}`, wantErrs: whole(ingest.ReasonBadSeverity)},
		{name: "severity unknown", payload: `{"code": "E1", "severity": "fatal"}`, wantErrs: whole(ingest.ReasonBadSeverity)},
		{name: "severity a number", payload: `{"code": "E1", "severity": 3}`, wantErrs: whole(ingest.ReasonWrongType)},

		// text.
		{name: "text 256 characters", payload: `{"code": "E1", "text": "` + text256 + `"}`, want: with(func(e *proactive.Event) { e.Text = text256 })},
		{name: "text with newline, tab and quotes", payload: `{"code": "E1", "text": "line 1\nline\t2 \"q\" \\"}`, want: with(func(e *proactive.Event) { e.Text = "line 1\nline\t2 \"q\" \\" })},
		{name: "text null is absent", payload: `{"code": "E1", "text": null}`, want: []proactive.Event{ev(received, "E1")}},
		{name: "text 257 characters", payload: `{"code": "E1", "text": "` + text256 + `x"}`, wantErrs: whole(ingest.ReasonBadText)},
		{name: "text with a control character", payload: `{"code": "E1", "text": "bell\u0007"}`, wantErrs: whole(ingest.ReasonBadText)},
		{name: "text with a NUL", payload: `{"code": "E1", "text": "a\u0000b"}`, wantErrs: whole(ingest.ReasonBadText)},
		{name: "text invalid UTF-8", payload: "{\"code\": \"E1\", \"text\": \"bad \xff byte\"}", wantErrs: whole(ingest.ReasonBadText)},
		{name: "text a number", payload: `{"code": "E1", "text": 42}`, wantErrs: whole(ingest.ReasonWrongType)},
		{name: "text an array", payload: `{"code": "E1", "text": ["a"]}`, wantErrs: whole(ingest.ReasonWrongType)},

		// Several faults: the first field in the order ts, code, component,
		// severity, text gives the reason.
		{name: "bad ts and bad code", payload: `{"ts": "x", "code": ""}`, wantErrs: whole(ingest.ReasonBadTimestamp)},
		{name: "bad code and bad severity", payload: `{"code": "E 1", "severity": "x"}`, wantErrs: whole(ingest.ReasonBadEventCode)},
		{name: "bad severity and bad text", payload: `{"code": "E1", "severity": "x", "text": 1}`, wantErrs: whole(ingest.ReasonBadSeverity)},

		// Whole payloads.
		{name: "empty payload", payload: ``, wantErrs: whole(ingest.ReasonNotJSON)},
		{name: "plain text", payload: `E101 overcurrent`, wantErrs: whole(ingest.ReasonNotJSON)},
		{name: "truncated object", payload: `{"code": "E1"`, wantErrs: whole(ingest.ReasonNotJSON)},
		{name: "trailing garbage", payload: `{"code": "E1"} x`, wantErrs: whole(ingest.ReasonNotJSON)},
		{name: "top-level string", payload: `"E101"`, wantErrs: whole(ingest.ReasonWrongType)},
		{name: "top-level number", payload: `101`, wantErrs: whole(ingest.ReasonWrongType)},
		{name: "top-level null", payload: `null`, wantErrs: whole(ingest.ReasonWrongType)},

		// Arrays with bad entries keep the good ones.
		{
			name: "array with bad entries keeps the good ones",
			payload: `[
				{"ts": 1763791200000, "code": "E101", "component": "compressor", "severity": "error", "text": "overcurrent trip"},
				{"code": "bad code"},
				"E2",
				{"ts": "later", "code": "E3"},
				{"ts": 1763791201000, "code": "E4"},
				{"code": "E5", "component": "Fan"},
				{"code": "E6", "severity": "fatal"},
				{"code": "E7", "text": "` + text256 + `!"},
				{"code": 8}
			]`,
			want: []proactive.Event{full, ev(at.Add(time.Second), "E4")},
			wantErrs: []ingest.EntryError{
				{Entry: 1, Reason: ingest.ReasonBadEventCode},
				{Entry: 2, Reason: ingest.ReasonWrongType},
				{Entry: 3, Reason: ingest.ReasonBadTimestamp},
				{Entry: 5, Reason: ingest.ReasonBadComponent},
				{Entry: 6, Reason: ingest.ReasonBadSeverity},
				{Entry: 7, Reason: ingest.ReasonBadText},
				{Entry: 8, Reason: ingest.ReasonWrongType},
			},
		},
		{name: "truncated array", payload: `[{"code": "E1"},`, wantErrs: whole(ingest.ReasonNotJSON)},
	}
}

func TestDecodeEvents(t *testing.T) {
	for _, tc := range eventCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := ingest.DecodeEvents([]byte(tc.payload), received)
			assertEvents(t, got, tc.want)
			assertEntryErrors(t, errs, tc.wantErrs)
		})
	}
}

func TestDecodeEventsSize(t *testing.T) {
	valid := `{"code": "E1"}`
	t.Run("exactly 64 KiB is accepted", func(t *testing.T) {
		p := valid + strings.Repeat(" ", ingest.MaxPayload-len(valid))
		got, errs := ingest.DecodeEvents([]byte(p), received)
		assertEvents(t, got, []proactive.Event{ev(received, "E1")})
		assertEntryErrors(t, errs, nil)
	})
	t.Run("one byte over 64 KiB is too large", func(t *testing.T) {
		p := valid + strings.Repeat(" ", ingest.MaxPayload+1-len(valid))
		got, errs := ingest.DecodeEvents([]byte(p), received)
		assertEvents(t, got, nil)
		assertEntryErrors(t, errs, whole(ingest.ReasonTooLarge))
	})
}

// FuzzDecodeEvents checks what the events decoder promises for any payload:
// every event it returns passes proactive.Event.Validate once its device is
// known, every rejection has a declared reason and a detail, a whole-payload
// rejection stands alone, and an array's entries are each an event or an
// error, in order.
func FuzzDecodeEvents(f *testing.F) {
	for _, tc := range eventCases() {
		f.Add([]byte(tc.payload))
	}
	f.Add([]byte(`[{"code": "E1"}, [], {"ts": "2025-11-22T06:00:00Z", "code": "x:y", "text": "\ud83d\ude00"}]`))
	f.Add([]byte(`{"code": "E1", "text": "\ud800"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		events, errs := ingest.DecodeEvents(payload, received)
		if len(events)+len(errs) == 0 {
			t.Fatalf("no events and no errors for %q", payload)
		}
		for i, e := range events {
			if e.Device != "" || e.Model != "" {
				t.Errorf("event %d has device %q, model %q: the topic says whose it is", i, e.Device, e.Model)
			}
			e.Device = "fridge-1"
			if err := e.Validate(); err != nil {
				t.Errorf("event %d of %q: %v", i, payload, err)
			}
			if e.Time.Before(ingest.MinTime) || e.Time.After(received.Add(ingest.DefaultMaxClockSkew)) {
				t.Errorf("event %d time %v is before 2000 or over 7 days ahead", i, e.Time)
			}
		}
		for _, e := range errs {
			if !slices.Contains(ingest.Reasons, e.Reason) {
				t.Errorf("error with undeclared reason %q", e.Reason)
			}
			if e.Detail == "" {
				t.Errorf("error %s has no detail", e.Reason)
			}
		}
		for _, e := range errs {
			if e.Entry == -1 {
				if len(errs) != 1 || len(events) != 0 {
					t.Fatalf("whole-payload error %v comes with %d events and errors %v", e, len(events), errs)
				}
				return
			}
		}
		trimmed := bytes.TrimSpace(payload)
		var entries []json.RawMessage
		if !json.Valid(trimmed) || trimmed[0] != '[' || json.Unmarshal(trimmed, &entries) != nil {
			if json.Valid(trimmed) && trimmed[0] == '{' && len(events) == 1 && len(errs) == 0 {
				return // a valid single object
			}
			t.Fatalf("%q: events %d and per-entry errors %v, but it is not a valid array", payload, len(events), errs)
		}
		if len(events)+len(errs) != len(entries) {
			t.Fatalf("%d entries but %d events and %d errors", len(entries), len(events), len(errs))
		}
		for i, e := range errs {
			if e.Entry < 0 || e.Entry >= len(entries) || i > 0 && e.Entry <= errs[i-1].Entry {
				t.Fatalf("error indexes out of range or order for %d entries: %v", len(entries), errs)
			}
		}
	})
}

func assertEvents(t *testing.T, got, want []proactive.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) {
			t.Errorf("event %d time = %v, want %v", i, g.Time, w.Time)
		}
		g.Time, w.Time = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("event %d = %+v, want %+v", i, g, w)
		}
	}
}
