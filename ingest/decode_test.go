package ingest_test

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
)

// received is the time of receipt the decoder is given in these tests.
var received = time.Date(2025, 11, 22, 6, 0, 0, 0, time.UTC)

// tsMillis is 2025-11-22T06:00:00Z in Unix milliseconds.
const tsMillis = 1763791200000

type telemetryCase struct {
	name    string
	payload string
	want    []ingest.Reading
	// wantErrs are compared on Entry and Reason; Detail must not be empty.
	wantErrs []ingest.EntryError
}

func reading(t time.Time, kv ...any) ingest.Reading {
	m := make(map[string]float64, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(float64)
	}
	return ingest.Reading{Time: t, Metrics: m}
}

func whole(r ingest.Reason) []ingest.EntryError {
	return []ingest.EntryError{{Entry: -1, Reason: r}}
}

func metricsPayload(name string) string {
	return `{"metrics": {"` + name + `": 1}}`
}

func telemetryCases() []telemetryCase {
	at := time.UnixMilli(tsMillis)
	name64 := "a" + strings.Repeat("b", 63)
	name65 := "a" + strings.Repeat("b", 64)
	return []telemetryCase{
		// Shapes.
		{
			name:    "single object",
			payload: `{"ts": 1763791200000, "metrics": {"compressor_current": 5.2, "cabinet_temp": 4.1}}`,
			want:    []ingest.Reading{reading(at, "compressor_current", 5.2, "cabinet_temp", 4.1)},
		},
		{
			name:    "array of objects",
			payload: `[{"ts": 1763791200000, "metrics": {"a": 1}}, {"ts": 1763791201000, "metrics": {"a": 2, "b": 3}}]`,
			want: []ingest.Reading{
				reading(at, "a", 1.0),
				reading(at.Add(time.Second), "a", 2.0, "b", 3.0),
			},
		},
		{
			name:    "surrounding whitespace",
			payload: " \n\t{\"metrics\": {\"a\": 1}}\r\n ",
			want:    []ingest.Reading{reading(received, "a", 1.0)},
		},
		{
			name:     "empty array",
			payload:  `[]`,
			wantErrs: whole(ingest.ReasonNoMetrics),
		},

		// Timestamps.
		{
			name:    "ts absent is the time of receipt",
			payload: `{"metrics": {"a": 1}}`,
			want:    []ingest.Reading{reading(received, "a", 1.0)},
		},
		{
			name:    "ts null is the time of receipt",
			payload: `{"ts": null, "metrics": {"a": 1}}`,
			want:    []ingest.Reading{reading(received, "a", 1.0)},
		},
		{
			name:    "ts absent in one array entry only",
			payload: `[{"ts": 1763791200000, "metrics": {"a": 1}}, {"metrics": {"a": 2}}]`,
			want:    []ingest.Reading{reading(at, "a", 1.0), reading(received, "a", 2.0)},
		},
		{
			name:    "ts Unix milliseconds",
			payload: `{"ts": 1763791200123, "metrics": {"a": 1}}`,
			want:    []ingest.Reading{reading(time.UnixMilli(1763791200123), "a", 1.0)},
		},
		{
			name:     "ts zero is the epoch, a clock never set",
			payload:  `{"ts": 0, "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts one millisecond",
			payload:  `{"ts": 1, "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts negative milliseconds before 1970",
			payload:  `{"ts": -86400000, "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts just before 2000",
			payload:  `{"ts": "1999-12-31T23:59:59.999Z", "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:    "ts 2000-01-01 is the earliest",
			payload: `{"ts": 946684800000, "metrics": {"a": 1}}`,
			want:    []ingest.Reading{reading(ingest.MinTime, "a", 1.0)},
		},
		{
			name:    "ts 7 days ahead of receipt",
			payload: `{"ts": "2025-11-29T06:00:00Z", "metrics": {"a": 1}}`,
			want:    []ingest.Reading{reading(received.Add(ingest.DefaultMaxClockSkew), "a", 1.0)},
		},
		{
			name:     "ts more than 7 days ahead of receipt",
			payload:  `{"ts": "2025-11-29T06:00:00.001Z", "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts bad in one entry of an array",
			payload:  `[{"ts": 1763791200000, "metrics": {"a": 1}}, {"ts": 1, "metrics": {"a": 2}}]`,
			want:     []ingest.Reading{reading(at, "a", 1.0)},
			wantErrs: []ingest.EntryError{{Entry: 1, Reason: ingest.ReasonBadTimestamp}},
		},
		{
			name:    "ts float with zero fraction",
			payload: `{"ts": 1763791200000.0, "metrics": {"a": 1}}`,
			want:    []ingest.Reading{reading(at, "a", 1.0)},
		},
		{
			name:    "ts float in exponent form",
			payload: `{"ts": 1.7637912e12, "metrics": {"a": 1}}`,
			want:    []ingest.Reading{reading(at, "a", 1.0)},
		},
		{
			name:    "ts RFC 3339 UTC",
			payload: `{"ts": "2025-11-22T06:00:00Z", "metrics": {"a": 1}}`,
			want:    []ingest.Reading{reading(at, "a", 1.0)},
		},
		{
			name:    "ts RFC 3339 with offset",
			payload: `{"ts": "2025-11-22T07:30:00+01:30", "metrics": {"a": 1}}`,
			want:    []ingest.Reading{reading(at, "a", 1.0)},
		},
		{
			name:    "ts RFC 3339 nano with negative offset",
			payload: `{"ts": "2025-11-22T01:00:00.123456789-05:00", "metrics": {"a": 1}}`,
			want:    []ingest.Reading{reading(time.Date(2025, 11, 22, 6, 0, 0, 123456789, time.UTC), "a", 1.0)},
		},
		{
			name:     "ts bad string",
			payload:  `{"ts": "yesterday", "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts date without T",
			payload:  `{"ts": "2025-11-22 06:00:00", "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts RFC 3339 without zone",
			payload:  `{"ts": "2025-11-22T06:00:00", "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts milliseconds quoted as a string",
			payload:  `{"ts": "1763791200000", "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts empty string",
			payload:  `{"ts": "", "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts fractional milliseconds",
			payload:  `{"ts": 1763791200000.5, "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts boolean",
			payload:  `{"ts": true, "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts object",
			payload:  `{"ts": {}, "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts after 2262 in milliseconds",
			payload:  `{"ts": 10000000000000, "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts before 1677 in milliseconds",
			payload:  `{"ts": -10000000000000, "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts overflowing int64",
			payload:  `{"ts": 99999999999999999999, "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts huge float",
			payload:  `{"ts": 1e300, "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts RFC 3339 after 2262",
			payload:  `{"ts": "2263-01-01T00:00:00Z", "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},
		{
			name:     "ts RFC 3339 before 1677",
			payload:  `{"ts": "1677-01-01T00:00:00Z", "metrics": {"a": 1}}`,
			wantErrs: whole(ingest.ReasonBadTimestamp),
		},

		// Names given twice: encoding/json would keep the last silently.
		{
			name:     "metric given twice",
			payload:  `{"metrics": {"a": 1, "b": 2, "a": 3}}`,
			wantErrs: whole(ingest.ReasonDuplicateMetric),
		},
		{
			name:     "metric given twice with the same value",
			payload:  `{"metrics": {"a": 1, "a": 1}}`,
			wantErrs: whole(ingest.ReasonDuplicateMetric),
		},
		{
			name:     "metric given twice, once escaped",
			payload:  `{"metrics": {"a": 1, "\u0061": 2}}`,
			wantErrs: whole(ingest.ReasonDuplicateMetric),
		},
		{
			name:     "metric given twice in one entry of an array",
			payload:  `[{"metrics": {"a": 1}}, {"metrics": {"a": 1, "a": 2}}, {"metrics": {"a": 3}}]`,
			want:     []ingest.Reading{reading(received, "a", 1.0), reading(received, "a", 3.0)},
			wantErrs: []ingest.EntryError{{Entry: 1, Reason: ingest.ReasonDuplicateMetric}},
		},
		{
			name:    "same metric in two entries",
			payload: `[{"ts": 1763791200000, "metrics": {"a": 1}}, {"ts": 1763791201000, "metrics": {"a": 2}}]`,
			want:    []ingest.Reading{reading(at, "a", 1.0), reading(at.Add(time.Second), "a", 2.0)},
		},

		// Metric names.
		{name: "name one letter", payload: metricsPayload("a"), want: []ingest.Reading{reading(received, "a", 1.0)}},
		{name: "name with digits and underscores", payload: metricsPayload("temp_2_c"), want: []ingest.Reading{reading(received, "temp_2_c", 1.0)}},
		{name: "name 64 characters", payload: metricsPayload(name64), want: []ingest.Reading{reading(received, name64, 1.0)}},
		{name: "name 65 characters", payload: metricsPayload(name65), wantErrs: whole(ingest.ReasonBadMetricName)},
		{name: "name uppercase", payload: metricsPayload("Cabinet_temp"), wantErrs: whole(ingest.ReasonBadMetricName)},
		{name: "name uppercase inside", payload: metricsPayload("cabinetTemp"), wantErrs: whole(ingest.ReasonBadMetricName)},
		{name: "name leading digit", payload: metricsPayload("1temp"), wantErrs: whole(ingest.ReasonBadMetricName)},
		{name: "name leading underscore", payload: metricsPayload("_temp"), wantErrs: whole(ingest.ReasonBadMetricName)},
		{name: "name with hyphen", payload: metricsPayload("cabinet-temp"), wantErrs: whole(ingest.ReasonBadMetricName)},
		{name: "name with dot", payload: metricsPayload("cabinet.temp"), wantErrs: whole(ingest.ReasonBadMetricName)},
		{name: "name with space", payload: metricsPayload("cabinet temp"), wantErrs: whole(ingest.ReasonBadMetricName)},
		{name: "name non-ASCII", payload: metricsPayload("température"), wantErrs: whole(ingest.ReasonBadMetricName)},
		{name: "name empty", payload: metricsPayload(""), wantErrs: whole(ingest.ReasonBadMetricName)},

		// Values.
		{
			name:    "finite numbers",
			payload: `{"metrics": {"a": 5.2, "b": -3, "c": 0, "d": 1e308, "e": -2.5e-3, "f": 1e-400}}`,
			want:    []ingest.Reading{reading(received, "a", 5.2, "b", -3.0, "c", 0.0, "d", 1e308, "e", -2.5e-3, "f", 0.0)},
		},
		{
			name:    "booleans count as one and zero",
			payload: `{"metrics": {"door_open": true, "defrost": false}}`,
			want:    []ingest.Reading{reading(received, "door_open", 1.0, "defrost", 0.0)},
		},
		{name: "string NaN", payload: `{"metrics": {"a": "NaN"}}`, wantErrs: whole(ingest.ReasonNonFinite)},
		{name: "string nan", payload: `{"metrics": {"a": "nan"}}`, wantErrs: whole(ingest.ReasonNonFinite)},
		{name: "string Inf", payload: `{"metrics": {"a": "Inf"}}`, wantErrs: whole(ingest.ReasonNonFinite)},
		{name: "string -Infinity", payload: `{"metrics": {"a": "-Infinity"}}`, wantErrs: whole(ingest.ReasonNonFinite)},
		{name: "string +inf", payload: `{"metrics": {"a": "+inf"}}`, wantErrs: whole(ingest.ReasonNonFinite)},
		{name: "huge number", payload: `{"metrics": {"a": 1e400}}`, wantErrs: whole(ingest.ReasonNonFinite)},
		{name: "huge negative number", payload: `{"metrics": {"a": -1e400}}`, wantErrs: whole(ingest.ReasonNonFinite)},
		{name: "numeric string", payload: `{"metrics": {"a": "5.2"}}`, wantErrs: whole(ingest.ReasonWrongType)},
		{name: "word string", payload: `{"metrics": {"a": "hot"}}`, wantErrs: whole(ingest.ReasonWrongType)},
		{name: "null value", payload: `{"metrics": {"a": null}}`, wantErrs: whole(ingest.ReasonWrongType)},
		{name: "object value", payload: `{"metrics": {"a": {"v": 1}}}`, wantErrs: whole(ingest.ReasonWrongType)},
		{name: "array value", payload: `{"metrics": {"a": [1, 2]}}`, wantErrs: whole(ingest.ReasonWrongType)},
		{
			name:     "one bad value rejects its entry",
			payload:  `{"metrics": {"a": 1, "b": "x"}}`,
			wantErrs: whole(ingest.ReasonWrongType),
		},

		// Metrics.
		{name: "metrics empty", payload: `{"ts": 1763791200000, "metrics": {}}`, wantErrs: whole(ingest.ReasonNoMetrics)},
		{name: "metrics missing", payload: `{"ts": 1763791200000}`, wantErrs: whole(ingest.ReasonNoMetrics)},
		{name: "metrics null", payload: `{"metrics": null}`, wantErrs: whole(ingest.ReasonNoMetrics)},
		{name: "empty object", payload: `{}`, wantErrs: whole(ingest.ReasonNoMetrics)},
		{name: "metrics an array", payload: `{"metrics": [1, 2]}`, wantErrs: whole(ingest.ReasonWrongType)},
		{name: "metrics a number", payload: `{"metrics": 5}`, wantErrs: whole(ingest.ReasonWrongType)},
		{name: "metrics a string", payload: `{"metrics": "a=1"}`, wantErrs: whole(ingest.ReasonWrongType)},

		// Not JSON, or not an object.
		{name: "empty payload", payload: ``, wantErrs: whole(ingest.ReasonNotJSON)},
		{name: "whitespace payload", payload: " \n\t ", wantErrs: whole(ingest.ReasonNotJSON)},
		{name: "plain text", payload: `compressor_current=5.2`, wantErrs: whole(ingest.ReasonNotJSON)},
		{name: "truncated object", payload: `{"metrics": {"a": 1}`, wantErrs: whole(ingest.ReasonNotJSON)},
		{name: "single quotes", payload: `{'metrics': {'a': 1}}`, wantErrs: whole(ingest.ReasonNotJSON)},
		{name: "trailing garbage", payload: `{"metrics": {"a": 1}} x`, wantErrs: whole(ingest.ReasonNotJSON)},
		{name: "two objects", payload: `{"metrics": {"a": 1}}{"metrics": {"a": 2}}`, wantErrs: whole(ingest.ReasonNotJSON)},
		{name: "bare NaN", payload: `{"metrics": {"a": NaN}}`, wantErrs: whole(ingest.ReasonNotJSON)},
		{name: "top-level number", payload: `42`, wantErrs: whole(ingest.ReasonWrongType)},
		{name: "top-level string", payload: `"hello"`, wantErrs: whole(ingest.ReasonWrongType)},
		{name: "top-level boolean", payload: `true`, wantErrs: whole(ingest.ReasonWrongType)},
		{name: "top-level null", payload: `null`, wantErrs: whole(ingest.ReasonWrongType)},

		// Arrays with bad entries keep the good ones.
		{
			name: "array with bad entries keeps the good ones",
			payload: `[
				{"ts": 1763791200000, "metrics": {"a": 1}},
				{"ts": 1763791200000, "metrics": {"B": 1}},
				5,
				{"ts": "not a time", "metrics": {"a": 2}},
				{"ts": 1763791201000, "metrics": {"c": 3}},
				{"metrics": {"a": "Inf"}},
				{"metrics": {}},
				{"metrics": {"a": null}}
			]`,
			want: []ingest.Reading{reading(at, "a", 1.0), reading(at.Add(time.Second), "c", 3.0)},
			wantErrs: []ingest.EntryError{
				{Entry: 1, Reason: ingest.ReasonBadMetricName},
				{Entry: 2, Reason: ingest.ReasonWrongType},
				{Entry: 3, Reason: ingest.ReasonBadTimestamp},
				{Entry: 5, Reason: ingest.ReasonNonFinite},
				{Entry: 6, Reason: ingest.ReasonNoMetrics},
				{Entry: 7, Reason: ingest.ReasonWrongType},
			},
		},
		{
			name:    "array of non-objects",
			payload: `[1, "x", null, [], true]`,
			wantErrs: []ingest.EntryError{
				{Entry: 0, Reason: ingest.ReasonWrongType},
				{Entry: 1, Reason: ingest.ReasonWrongType},
				{Entry: 2, Reason: ingest.ReasonWrongType},
				{Entry: 3, Reason: ingest.ReasonWrongType},
				{Entry: 4, Reason: ingest.ReasonWrongType},
			},
		},
		{
			name:    "array whose only good entry is last",
			payload: `[{"metrics": {}}, {"metrics": {"a": 7}}]`,
			want:    []ingest.Reading{reading(received, "a", 7.0)},
			wantErrs: []ingest.EntryError{
				{Entry: 0, Reason: ingest.ReasonNoMetrics},
			},
		},
		{
			name:     "truncated array",
			payload:  `[{"metrics": {"a": 1}},`,
			wantErrs: whole(ingest.ReasonNotJSON),
		},
	}
}

func TestDecodeTelemetry(t *testing.T) {
	for _, tc := range telemetryCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := ingest.DecodeTelemetry([]byte(tc.payload), received)
			assertReadings(t, got, tc.want)
			assertEntryErrors(t, errs, tc.wantErrs)
		})
	}
}

// TestDecodeTelemetryReasonIsStable checks that a payload with several faults
// is explained by the same reason every time it is decoded, so that the
// dead-letter counters do not depend on map iteration order.
func TestDecodeTelemetryReasonIsStable(t *testing.T) {
	payload := []byte(`{"metrics": {"Bad_name": 1, "b": "NaN", "c": null, "d": 1e400, "E": 2}}`)
	seen := map[ingest.Reason]int{}
	for range 200 {
		_, errs := ingest.DecodeTelemetry(payload, received)
		if len(errs) != 1 {
			t.Fatalf("got %d errors, want 1: %v", len(errs), errs)
		}
		seen[errs[0].Reason]++
	}
	if len(seen) != 1 {
		t.Errorf("the same payload was rejected for different reasons across decodes: %v", seen)
	}
}

func TestDecodeTelemetrySize(t *testing.T) {
	valid := `{"metrics": {"a": 1}}`
	// pad fills a valid payload with JSON whitespace to exactly n bytes.
	pad := func(p string, n int) []byte {
		return []byte(p + strings.Repeat(" ", n-len(p)))
	}
	// array builds an array of valid entries at least n bytes long.
	array := func(n int) []byte {
		var b bytes.Buffer
		b.WriteByte('[')
		for i := 0; b.Len() < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"metrics":{"a":1}}`)
		}
		b.WriteByte(']')
		return b.Bytes()
	}

	t.Run("exactly 64 KiB is accepted", func(t *testing.T) {
		p := pad(valid, ingest.MaxPayload)
		if len(p) != 64<<10 {
			t.Fatalf("payload is %d bytes", len(p))
		}
		got, errs := ingest.DecodeTelemetry(p, received)
		assertReadings(t, got, []ingest.Reading{reading(received, "a", 1.0)})
		assertEntryErrors(t, errs, nil)
	})
	t.Run("one byte over 64 KiB is too large", func(t *testing.T) {
		got, errs := ingest.DecodeTelemetry(pad(valid, ingest.MaxPayload+1), received)
		assertReadings(t, got, nil)
		assertEntryErrors(t, errs, whole(ingest.ReasonTooLarge))
	})
	t.Run("array of good entries over 64 KiB is too large", func(t *testing.T) {
		p := array(ingest.MaxPayload + 1)
		got, errs := ingest.DecodeTelemetry(p, received)
		assertReadings(t, got, nil)
		assertEntryErrors(t, errs, whole(ingest.ReasonTooLarge))
	})
	t.Run("array of good entries under 64 KiB is accepted", func(t *testing.T) {
		p := array(ingest.MaxPayload - 100)
		if len(p) > ingest.MaxPayload {
			t.Fatalf("payload is %d bytes", len(p))
		}
		n := bytes.Count(p, []byte(`"metrics"`))
		got, errs := ingest.DecodeTelemetry(p, received)
		assertEntryErrors(t, errs, nil)
		if len(got) != n {
			t.Fatalf("got %d readings, want %d", len(got), n)
		}
	})
	t.Run("invalid payload over 64 KiB is too large", func(t *testing.T) {
		got, errs := ingest.DecodeTelemetry(bytes.Repeat([]byte("x"), ingest.MaxPayload+1), received)
		assertReadings(t, got, nil)
		assertEntryErrors(t, errs, whole(ingest.ReasonTooLarge))
	})
}

func TestDecodeStatus(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    bool
		reason  ingest.Reason // empty when the payload is valid
	}{
		{name: "online", payload: `{"online": true}`, want: true},
		{name: "offline", payload: `{"online": false}`, want: false},
		{name: "whitespace", payload: "\n {\"online\": true} \n", want: true},
		{name: "online a string", payload: `{"online": "yes"}`, reason: ingest.ReasonWrongType},
		{name: "online a number", payload: `{"online": 1}`, reason: ingest.ReasonWrongType},
		{name: "online null", payload: `{"online": null}`, reason: ingest.ReasonWrongType},
		{name: "online missing", payload: `{}`, reason: ingest.ReasonWrongType},
		{name: "array", payload: `[{"online": true}]`, reason: ingest.ReasonWrongType},
		{name: "top-level boolean", payload: `true`, reason: ingest.ReasonWrongType},
		{name: "top-level null", payload: `null`, reason: ingest.ReasonWrongType},
		{name: "top-level string", payload: `"online"`, reason: ingest.ReasonWrongType},
		{name: "empty payload", payload: ``, reason: ingest.ReasonNotJSON},
		{name: "plain text", payload: `online`, reason: ingest.ReasonNotJSON},
		{name: "truncated", payload: `{"online": tr`, reason: ingest.ReasonNotJSON},
		{name: "exactly 64 KiB", payload: `{"online": true}` + strings.Repeat(" ", ingest.MaxPayload-len(`{"online": true}`)), want: true},
		{name: "over 64 KiB", payload: `{"online": true}` + strings.Repeat(" ", ingest.MaxPayload+1-len(`{"online": true}`)), reason: ingest.ReasonTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ingest.DecodeStatus([]byte(tc.payload))
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("DecodeStatus: %v, want no error", err)
				}
				if got != tc.want {
					t.Errorf("online = %v, want %v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("DecodeStatus = %v, nil; want reason %s", got, tc.reason)
			}
			if err.Reason != tc.reason || err.Entry != -1 {
				t.Errorf("error = {Entry: %d, Reason: %s}, want {Entry: -1, Reason: %s} (%v)", err.Entry, err.Reason, tc.reason, err)
			}
			if err.Detail == "" {
				t.Errorf("error %s has no detail", err.Reason)
			}
		})
	}
}

func TestParseTopic(t *testing.T) {
	id64 := strings.Repeat("d", 64)
	tests := []struct {
		name    string
		prefix  string
		topic   string
		wantID  proactive.DeviceID
		kind    ingest.TopicKind
		wantErr bool
	}{
		{name: "telemetry", prefix: "devices", topic: "devices/fridge-0001/telemetry", wantID: "fridge-0001", kind: ingest.TopicTelemetry},
		{name: "status", prefix: "devices", topic: "devices/fridge-0001/status", wantID: "fridge-0001", kind: ingest.TopicStatus},
		{name: "events", prefix: "devices", topic: "devices/fridge-0001/events", wantID: "fridge-0001", kind: ingest.TopicEvents},
		{name: "events under a multi-level prefix", prefix: "acme/devices", topic: "acme/devices/fridge-1/events", wantID: "fridge-1", kind: ingest.TopicEvents},
		{name: "events with an invalid id", prefix: "devices", topic: "devices/fridge 1/events", wantErr: true},
		{name: "event in the singular", prefix: "devices", topic: "devices/fridge-1/event", kind: ingest.TopicUnknown},
		{name: "every allowed character", prefix: "devices", topic: "devices/Az09_.-x/telemetry", wantID: "Az09_.-x", kind: ingest.TopicTelemetry},
		{name: "one character id", prefix: "devices", topic: "devices/x/status", wantID: "x", kind: ingest.TopicStatus},
		{name: "64 character id", prefix: "devices", topic: "devices/" + id64 + "/telemetry", wantID: proactive.DeviceID(id64), kind: ingest.TopicTelemetry},
		{name: "multi-level prefix", prefix: "acme/devices", topic: "acme/devices/fridge-1/telemetry", wantID: "fridge-1", kind: ingest.TopicTelemetry},

		{name: "65 character id", prefix: "devices", topic: "devices/" + id64 + "d/telemetry", wantErr: true},
		{name: "empty id", prefix: "devices", topic: "devices//telemetry", wantErr: true},
		{name: "id with space", prefix: "devices", topic: "devices/fridge 1/telemetry", wantErr: true},
		{name: "id with plus", prefix: "devices", topic: "devices/fridge+1/status", wantErr: true},
		{name: "id with hash", prefix: "devices", topic: "devices/fridge#/telemetry", wantErr: true},
		{name: "id non-ASCII", prefix: "devices", topic: "devices/frîdge/telemetry", wantErr: true},
		{name: "id with colon", prefix: "devices", topic: "devices/fridge:1/status", wantErr: true},
		{name: "no suffix", prefix: "devices", topic: "devices/fridge-1", wantErr: true},

		{name: "other prefix", prefix: "devices", topic: "other/fridge-1/telemetry", kind: ingest.TopicUnknown},
		{name: "prefix as a word prefix", prefix: "devices", topic: "devicesX/fridge-1/telemetry", kind: ingest.TopicUnknown},
		{name: "prefix alone", prefix: "devices", topic: "devices", kind: ingest.TopicUnknown},
		{name: "empty topic", prefix: "devices", topic: "", kind: ingest.TopicUnknown},
		{name: "system topic", prefix: "devices", topic: "$SYS/broker/uptime", kind: ingest.TopicUnknown},
		{name: "prefix deeper in the topic", prefix: "devices", topic: "acme/devices/fridge-1/telemetry", kind: ingest.TopicUnknown},
		{name: "unknown suffix", prefix: "devices", topic: "devices/fridge-1/commands", kind: ingest.TopicUnknown},
		{name: "suffix with an extra level", prefix: "devices", topic: "devices/fridge-1/telemetry/extra", kind: ingest.TopicUnknown},
		{name: "suffix in capitals", prefix: "devices", topic: "devices/fridge-1/TELEMETRY", kind: ingest.TopicUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, kind, err := ingest.ParseTopic(tc.prefix, tc.topic)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseTopic(%q, %q) = %q, %v, nil; want an error", tc.prefix, tc.topic, id, kind)
				}
				if id != "" {
					t.Errorf("device id = %q alongside error %v, want empty", id, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTopic(%q, %q): %v", tc.prefix, tc.topic, err)
			}
			if id != tc.wantID || kind != tc.kind {
				t.Errorf("ParseTopic(%q, %q) = %q, %v; want %q, %v", tc.prefix, tc.topic, id, kind, tc.wantID, tc.kind)
			}
		})
	}
}

func FuzzDecodeTelemetry(f *testing.F) {
	for _, tc := range telemetryCases() {
		f.Add([]byte(tc.payload))
	}
	f.Add([]byte("\u00a0{\"metrics\": {\"a\": 1}}"))
	f.Add([]byte(`[{"metrics": {"a": 1}}, [], {"ts": "2025-11-22T06:00:00Z", "metrics": {"b": true}}]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		readings, errs := ingest.DecodeTelemetry(payload, received)

		if len(readings)+len(errs) == 0 {
			t.Fatalf("no readings and no errors for %q", payload)
		}
		for i, r := range readings {
			if len(r.Metrics) == 0 {
				t.Errorf("reading %d has no metrics", i)
			}
			for name, v := range r.Metrics {
				if !proactive.ValidMetricName(name) {
					t.Errorf("reading %d has invalid metric name %q", i, name)
				}
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("reading %d metric %q = %v, not finite", i, name, v)
				}
			}
			if r.Time.Before(ingest.MinTime) || r.Time.After(received.Add(ingest.DefaultMaxClockSkew)) {
				t.Errorf("reading %d time %v is before 2000 or over 7 days ahead", i, r.Time)
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

		if len(payload) > ingest.MaxPayload {
			if len(readings) != 0 || len(errs) != 1 || errs[0].Reason != ingest.ReasonTooLarge || errs[0].Entry != -1 {
				t.Fatalf("payload of %d bytes: readings %d, errors %v; want only too_large", len(payload), len(readings), errs)
			}
			return
		}

		// An error about the whole payload stands alone.
		for _, e := range errs {
			if e.Entry == -1 {
				if len(errs) != 1 || len(readings) != 0 {
					t.Fatalf("whole-payload error %v comes with %d readings and errors %v", e, len(readings), errs)
				}
				return
			}
		}
		// Otherwise the entries of an array are each either a reading or an
		// error with its index, in order. The decoder trims Unicode spaces
		// around the payload, so the reference does too.
		trimmed := bytes.TrimSpace(payload)
		var entries []json.RawMessage
		if !json.Valid(trimmed) || trimmed[0] != '[' || json.Unmarshal(trimmed, &entries) != nil {
			if json.Valid(trimmed) && trimmed[0] == '{' && len(readings) == 1 && len(errs) == 0 {
				return // a valid single object
			}
			t.Fatalf("%q: readings %d and per-entry errors %v, but it is not a valid array", payload, len(readings), errs)
		}
		if len(readings)+len(errs) != len(entries) {
			t.Fatalf("%d entries but %d readings and %d errors", len(entries), len(readings), len(errs))
		}
		for i, e := range errs {
			if e.Entry < 0 || e.Entry >= len(entries) {
				t.Fatalf("error index %d out of range for %d entries", e.Entry, len(entries))
			}
			if i > 0 && e.Entry <= errs[i-1].Entry {
				t.Fatalf("error indexes not strictly increasing: %v", errs)
			}
		}
	})
}

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{
		"devices/fridge-0001/telemetry", "devices/fridge-0001/status", "devices//telemetry",
		"devices/a b/status", "devices/x", "devices/x/other", "other/x/telemetry", "", "devices",
		"devices/" + strings.Repeat("d", 65) + "/telemetry", "devices/x/telemetry/y", "devices/x/events",
	} {
		f.Add("devices", s)
	}
	f.Add("", "/x/telemetry")
	f.Add("a/b", "a/b/c/status")
	f.Fuzz(func(t *testing.T, prefix, topic string) {
		id, kind, err := ingest.ParseTopic(prefix, topic)
		if id != "" && !proactive.ValidDeviceID(string(id)) {
			t.Fatalf("ParseTopic(%q, %q) returned invalid device id %q", prefix, topic, id)
		}
		if err != nil {
			if id != "" {
				t.Fatalf("ParseTopic(%q, %q) returned id %q with error %v", prefix, topic, id, err)
			}
			return
		}
		switch kind {
		case ingest.TopicUnknown:
			if id != "" {
				t.Fatalf("ParseTopic(%q, %q) returned id %q for an unknown topic", prefix, topic, id)
			}
		case ingest.TopicTelemetry, ingest.TopicStatus, ingest.TopicEvents:
			suffix := map[ingest.TopicKind]string{ingest.TopicTelemetry: "/telemetry", ingest.TopicStatus: "/status", ingest.TopicEvents: "/events"}[kind]
			if !proactive.ValidDeviceID(string(id)) {
				t.Fatalf("ParseTopic(%q, %q) = %q: not a valid device id", prefix, topic, id)
			}
			if want := prefix + "/" + string(id) + suffix; topic != want {
				t.Fatalf("ParseTopic(%q, %q) = %q, %v: does not rebuild the topic (%q)", prefix, topic, id, kind, want)
			}
		default:
			t.Fatalf("ParseTopic(%q, %q) returned undeclared kind %v", prefix, topic, kind)
		}
	})
}

func assertReadings(t *testing.T, got, want []ingest.Reading) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d readings %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if !got[i].Time.Equal(want[i].Time) {
			t.Errorf("reading %d time = %v, want %v", i, got[i].Time, want[i].Time)
		}
		if len(got[i].Metrics) != len(want[i].Metrics) {
			t.Errorf("reading %d metrics = %v, want %v", i, got[i].Metrics, want[i].Metrics)
			continue
		}
		for k, w := range want[i].Metrics {
			g, ok := got[i].Metrics[k]
			if !ok || g != w || math.Signbit(g) != math.Signbit(w) {
				t.Errorf("reading %d metric %q = %v (present %v), want %v", i, k, g, ok, w)
			}
		}
	}
}

func assertEntryErrors(t *testing.T, got, want []ingest.EntryError) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d errors %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].Entry != want[i].Entry || got[i].Reason != want[i].Reason {
			t.Errorf("error %d = {Entry: %d, Reason: %s} (%v), want {Entry: %d, Reason: %s}",
				i, got[i].Entry, got[i].Reason, got[i], want[i].Entry, want[i].Reason)
		}
		if got[i].Detail == "" {
			t.Errorf("error %d (%s) has no detail", i, got[i].Reason)
		}
	}
}
