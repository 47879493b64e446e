package ingest

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeFastAgrees checks the one-pass decoder against the full one:
// whatever decodeFast accepts, the full decoder accepts whole, with the same
// readings. (Internal: the two decoders are the point.)
func FuzzDecodeFastAgrees(f *testing.F) {
	for _, s := range []string{
		`{"ts": 1763791200000, "metrics": {"compressor_current": 5.2, "cabinet_temp": 4.1}}`,
		`[{"ts": 1763791200000, "metrics": {"a": 1}}, {"ts": "2025-11-22T06:00:00.5+01:00", "metrics": {"a": 2, "b": true}}]`,
		` {"metrics": {"a": -0.0, "b": false, "c": 1e-400}, "ts": null} `,
		`{"ts": 1.7637912e12, "metrics": {"a": 1E+3}}`,
		`{"ts": 1763791200000, "metrics": {"a": 1, "a": 2}}`,
		`{"TS": 1763791200000, "metrics": {"a": 1}}`,
		`{"metrics": {"a": 1e400}}`,
		`{"metrics": {"a\u0062": 1}}`,
		`[{"metrics": {"a": 1}}, []]`,
		`{"metrics": {"a": 01}}`,
		`{"metrics": {}}`,
		"{\"metrics\": {\"a\": 1}}\x00",
	} {
		f.Add([]byte(s))
	}
	received := time.Date(2025, 11, 22, 6, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, payload []byte) {
		trimmed := bytes.TrimSpace(payload)
		if len(trimmed) == 0 || len(payload) > MaxPayload {
			return
		}
		fast, ok := decodeFast(trimmed, received, DefaultMaxClockSkew)
		if !ok {
			return
		}
		full, errs := decodeTelemetry(trimmed, received, DefaultMaxClockSkew)
		if len(errs) > 0 {
			t.Fatalf("decodeFast accepted %q, the full decoder found %v", payload, errs)
		}
		if len(fast) != len(full) {
			t.Fatalf("%q: decodeFast gives %d readings, the full decoder %d", payload, len(fast), len(full))
		}
		for i := range fast {
			if !fast[i].Time.Equal(full[i].Time) || !reflect.DeepEqual(fast[i].Metrics, full[i].Metrics) {
				t.Fatalf("%q entry %d: decodeFast gives %v, the full decoder %v", payload, i, fast[i], full[i])
			}
		}
	})
}

// BenchmarkDecodeTelemetry compares the one-pass decoder with the full one
// on the benchmark fleet's payload.
func BenchmarkDecodeTelemetry(b *testing.B) {
	payload := []byte(`{"ts": 1763856000000, "metrics": {"compressor_current": 4.95, "cabinet_temp": 3.80, "ambient_temp": 22.5, "door_open": false, "power_w": 137.0}}`)
	received := time.Now()
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, errs := DecodeTelemetry(payload, received); errs != nil {
				b.Fatal(errs)
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, errs := decodeTelemetry(payload, received, DefaultMaxClockSkew); errs != nil {
				b.Fatal(errs)
			}
		}
	})
}
