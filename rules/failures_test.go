package rules_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/rules"
)

func TestParseFailures(t *testing.T) {
	got, err := rules.ReadFailures("f.csv", strings.NewReader("\ufeffComponent, Device_ID ,time\n# a comment\ncompressor,fridge-1,2026-11-01T10:00:00+01:00\ndoor,fridge-2,1761991200000\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []rules.Failure{
		{Device: "fridge-1", Time: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), Component: "compressor"},
		{Device: "fridge-2", Time: time.UnixMilli(1761991200000).UTC(), Component: "door"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := rules.ReadFailures("f.csv", strings.NewReader("device,when\n")); err == nil || !strings.Contains(err.Error(), "no time column") {
		t.Errorf("header without time: %v", err)
	}
}

// The simulator's ground truth CSV is a failures file: its decoys (kind
// decoy, no time) are no failures and are skipped; its faults are read at
// their time.
func TestParseFailuresSkipsDecoys(t *testing.T) {
	truth := `device,model,component,fault,kind,shape,onset,breakdown,then,repaired,time
pump-001,pump-p1,bearing,bearing_wear,fault,linear,2026-03-09T00:00:00Z,2026-03-12T00:00:00Z,hold,2026-03-13T00:00:00Z,2026-03-12T00:00:00Z
pump-002,pump-p1,bearing,bearing_drift,decoy,linear,2026-03-09T00:00:00Z,,,,
pump-003,pump-p1,bearing,bearing_drift,DECOY,linear,2026-03-09T00:00:00Z,,,,2026-03-12T00:00:00Z
`
	got, err := rules.ReadFailures("truth.csv", strings.NewReader(truth))
	if err != nil {
		t.Fatal(err)
	}
	want := []rules.Failure{{Device: "pump-001", Time: time.Date(2026, 3, 12, 0, 0, 0, 0, time.UTC), Component: "bearing"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Without a kind column an empty time is still an error.
	if _, err := rules.ReadFailures("f.csv", strings.NewReader("device,time,component\npump-002,,bearing\n")); err == nil {
		t.Error("a failure without time: no error")
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                  now,
		"-30d":                 now.Add(-30 * 24 * time.Hour),
		"-1w12h":               now.Add(-7*24*time.Hour - 12*time.Hour),
		"-1.5h":                now.Add(-90 * time.Minute),
		"2026-11-01T00:00:00Z": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01":           time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := rules.ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("rules.ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "30d", "--1h", "yesterday", "-"} {
		if _, err := rules.ParseTime(in, now); err == nil {
			t.Errorf("rules.ParseTime(%q): no error", in)
		}
	}
}

// ReadFailures takes any input without panicking; what it accepts has a
// valid device id and a component on every failure.
func FuzzReadFailures(f *testing.F) {
	f.Add("device,time,component\nfridge-1,2026-11-01T10:00:00Z,compressor\n")
	f.Add("\ufeffComponent, Device_ID ,time\n# c\ndoor,fridge-2,1761991200000\n")
	f.Add("device,time,component\n\"a\nb\",x\n")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := rules.ReadFailures("f.csv", strings.NewReader(s))
		if err != nil {
			return
		}
		for _, fl := range got {
			if !proactive.ValidDeviceID(string(fl.Device)) || fl.Component == "" {
				t.Errorf("accepted %+v", fl)
			}
		}
	})
}
