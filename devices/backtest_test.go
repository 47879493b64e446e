package devices_test

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// TestBacktests saves backtest summaries and reads back the last of each
// rule, scored and not, on both dialects.
func TestBacktests(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := mustOpen(t, dsn)
		if got, err := s.LatestBacktests(ctx); err != nil || len(got) != 0 {
			t.Fatalf("LatestBacktests on a fresh store: %v, %v", got, err)
		}
		run := time.Date(2026, 3, 10, 9, 30, 0, 123456000, time.UTC)
		from, to := run.AddDate(0, 0, -30), run
		wear := devices.Backtest{Rule: "compressor_wear", RunAt: run, From: from, To: to, Samples: 86_400, Fires: 12, Devices: 9,
			TicketsPerDay: 0.4, Scored: true, Failures: 5, Detected: 4, Recall: 0.8, MedianLead: 50 * time.Hour, FalseAlarms: 3,
			Report: json.RawMessage(`{"rule": "compressor_wear", "fires": 12, "first_fires": [{"device_id": "fridge-1"}]}`)}
		door := devices.Backtest{Rule: "door_seal", RunAt: run, From: from, To: to, Samples: 86_400, Fires: 0, Devices: 0}
		if err := s.SaveBacktest(ctx, wear, door); err != nil {
			t.Fatal(err)
		}
		got, err := s.LatestBacktests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wear.Report = json.RawMessage(`{"fires":12,"first_fires":[{"device_id":"fridge-1"}],"rule":"compressor_wear"}`)
		door.Report = json.RawMessage(`{}`)
		if !reflect.DeepEqual(got, map[string]devices.Backtest{"compressor_wear": wear, "door_seal": door}) {
			t.Errorf("LatestBacktests =\n%+v\nwant\n%+v", got, map[string]devices.Backtest{"compressor_wear": wear, "door_seal": door})
		}

		// A later run replaces a rule's summary and leaves the others.
		again := wear
		again.RunAt, again.Fires, again.Scored, again.Failures, again.Detected, again.Recall, again.MedianLead, again.FalseAlarms =
			run.Add(time.Hour), 20, false, 0, 0, 0, 0, 0
		if err := s.SaveBacktest(ctx, again); err != nil {
			t.Fatal(err)
		}
		got = mustBacktests(s.LatestBacktests(ctx))
		if b := got["compressor_wear"]; b.Fires != 20 || b.Scored || b.Recall != 0 || !b.RunAt.Equal(run.Add(time.Hour)) {
			t.Errorf("after a second run: %+v", b)
		}
		if b := got["door_seal"]; !b.RunAt.Equal(run) || len(got) != 2 {
			t.Errorf("the other rule's summary changed: %+v (%d rules)", b, len(got))
		}
	})
}

func TestBacktestInvalid(t *testing.T) {
	s := mustOpen(t, sqliteDSN(t))
	run := time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)
	good := devices.Backtest{Rule: "r", RunAt: run, From: run.Add(-time.Hour), To: run}
	for name, f := range map[string]func(*devices.Backtest){
		"no rule":        func(b *devices.Backtest) { b.Rule = "" },
		"empty period":   func(b *devices.Backtest) { b.From = b.To },
		"negative fires": func(b *devices.Backtest) { b.Fires = -1 },
		"NaN per day":    func(b *devices.Backtest) { b.TicketsPerDay = math.NaN() },
		"recall over 1":  func(b *devices.Backtest) { b.Scored, b.Failures, b.Recall = true, 1, 1.5 },
		"detected > all": func(b *devices.Backtest) { b.Scored, b.Failures, b.Detected = true, 1, 2 },
		"report array":   func(b *devices.Backtest) { b.Report = json.RawMessage(`[1]`) },
		"report broken":  func(b *devices.Backtest) { b.Report = json.RawMessage(`{"a":`) },
	} {
		t.Run(name, func(t *testing.T) {
			b := good
			f(&b)
			wantCode(t, s.SaveBacktest(t.Context(), good, b), proactive.EInvalid)
		})
	}
	// Nothing of a refused batch is saved.
	if got := mustBacktests(s.LatestBacktests(t.Context())); len(got) != 0 {
		t.Errorf("a refused batch saved %v", got)
	}
}

// mustBacktests returns got, or panics on err (failing the test).
func mustBacktests(got map[string]devices.Backtest, err error) map[string]devices.Backtest {
	if err != nil {
		panic(err)
	}
	return got
}
