package influx_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/ingest"
	"github.com/proactivehq/proactive/internal/testenv"
)

// Device events published on {prefix}/{id}/events go through the ingester
// into the events measurement of a real influxd: tags device_id, code, and
// component and model when known; fields n=1i, and text and severity when
// given, newlines and tabs in the text stored as spaces. The message is
// acknowledged once they are there.
func TestEventsThroughIngestIntoInflux(t *testing.T) {
	srv := testenv.Influx(t)
	for _, c := range []struct {
		name        string
		compression influx.Compression
	}{{"plain", influx.CompressNone}, {"gzip", influx.CompressGzip}} {
		t.Run(c.name, func(t *testing.T) {
			s := influx.New(influx.Options{URL: srv.URL(), Bucket: srv.Bucket(), Compression: c.compression})
			t.Cleanup(s.Close)
			dev := "fridge-" + c.name
			in := ingest.New(ingest.Options{
				Writer: s, Logger: slog.New(slog.DiscardHandler),
				Lookup: func(id proactive.DeviceID) (string, bool) {
					if string(id) == dev {
						return `Frost, 2000 =deluxe`, true
					}
					return "", false
				},
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- in.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			})

			text := "overcurrent trip: 12.5 A, \"phase\" L1\\L2\nsecond line\tafter a tab, é ✓ =,"
			payload := fmt.Sprintf(`[
				{"ts": "2026-11-20T08:00:00.123Z", "code": "E101", "component": "compressor", "severity": "error", "text": %q},
				{"ts": 1795161601000, "code": "sys:boot.1-a"}
			]`, text)
			acked := make(chan bool, 1)
			msg := ingest.Message{
				Topic: "devices/" + dev + "/events", Payload: []byte(payload), Received: time.Now(),
				Ack: func() { acked <- true }, Nack: func() { acked <- false },
			}
			if err := in.Handle(t.Context(), msg); err != nil {
				t.Fatal(err)
			}
			select {
			case ok := <-acked:
				if !ok {
					t.Fatal("message nacked")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("message neither acked nor nacked")
			}
			if dl := in.DeadLetters().Recent(0); len(dl) != 0 {
				t.Fatalf("dead letters: %+v", dl)
			}

			type point struct {
				tags   map[string]string
				fields map[string]any
			}
			got := map[time.Time]point{}
			for _, series := range srv.Query(t, `SELECT * FROM "events" WHERE "device_id" = '`+dev+`' GROUP BY *`) {
				for _, row := range series.Values {
					p := point{tags: map[string]string{}, fields: map[string]any{}}
					for k, v := range series.Tags {
						if v != "" {
							p.tags[k] = v
						}
					}
					var at time.Time
					for i, col := range series.Columns {
						switch {
						case col == "time":
							at = row[i].(time.Time)
						case row[i] != nil:
							p.fields[col] = row[i]
						}
					}
					got[at] = p
				}
			}
			want := map[time.Time]point{
				time.Date(2026, 11, 20, 8, 0, 0, 123_000_000, time.UTC): {
					tags:   map[string]string{"device_id": dev, "code": "E101", "component": "compressor", "model": `Frost, 2000 =deluxe`},
					fields: map[string]any{"n": 1.0, "text": strings.NewReplacer("\n", " ", "\t", " ").Replace(text), "severity": "error"},
				},
				time.UnixMilli(1795161601000).UTC(): {
					tags:   map[string]string{"device_id": dev, "code": "sys:boot.1-a", "model": `Frost, 2000 =deluxe`},
					fields: map[string]any{"n": 1.0},
				},
			}
			if len(got) != len(want) {
				t.Fatalf("stored %d events of %s, want %d: %+v", len(got), dev, len(want), got)
			}
			for at, w := range want {
				g, ok := got[at]
				if !ok {
					t.Errorf("no event at %v: %+v", at, got)
					continue
				}
				if fmt.Sprint(g.tags) != fmt.Sprint(w.tags) {
					t.Errorf("at %v: tags %v, want %v", at, g.tags, w.tags)
				}
				if fmt.Sprint(g.fields) != fmt.Sprint(w.fields) {
					t.Errorf("at %v: fields %q, want %q", at, g.fields, w.fields)
				}
			}
		})
	}
	// n is an integer (n=1i), so that sum("n") counts events.
	types := map[string]any{}
	for _, series := range srv.Query(t, `SHOW FIELD KEYS FROM "events"`) {
		for _, row := range series.Values {
			types[fmt.Sprint(row[0])] = row[1]
		}
	}
	if want := map[string]any{"n": "integer", "severity": "string", "text": "string"}; fmt.Sprint(types) != fmt.Sprint(want) {
		t.Errorf("field types %v, want %v", types, want)
	}
}
