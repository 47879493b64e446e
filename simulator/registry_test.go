package simulator_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/simulator"
)

// TestRegistry writes one row per device with its model, zone and a test
// customer, the same for the same scenario and start.
func TestRegistry(t *testing.T) {
	sc, err := simulator.Builtin("demo")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var a, b bytes.Buffer
	if err := sc.Registry(&a, start); err != nil {
		t.Fatal(err)
	}
	if err := sc.Registry(&b, start); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Error("two runs differ")
	}
	rows, err := csv.NewReader(&a).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != strings.Join(simulator.RegistryColumns, ",") {
		t.Errorf("header %s", got)
	}
	devs := sc.Devices()
	if len(rows) != len(devs)+1 {
		t.Fatalf("%d rows for %d devices", len(rows)-1, len(devs))
	}
	first := start.Add(-sc.Backfill)
	for i, d := range devs {
		r := rows[i+1]
		if r[0] != d.ID || r[1] != d.Model || r[8] != d.TimeZone || r[2] != "cust-"+d.ID || r[6] != "none" || r[7] != "true" {
			t.Errorf("row %d = %v for %+v", i+1, r, d)
		}
		if want := "+4915550" + []string{"000001", "000002"}[min(i, 1)]; i < 2 && r[4] != want {
			t.Errorf("row %d phone %s, want %s", i+1, r[4], want)
		}
		inst, err := time.Parse(time.DateOnly, r[9])
		if err != nil || !inst.Before(first.AddDate(0, 0, -29)) || inst.Before(first.AddDate(-5, 0, -1)) {
			t.Errorf("row %d installed_on %s, want 30 days to 5 years before %s", i+1, r[9], first)
		}
	}
}
