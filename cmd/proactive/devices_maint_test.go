package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/proactivehq/proactive/devices"
)

// devices import --maintenance prints the row summary, rejected rows with
// their reasons, and adds nothing when the file is imported again.
func TestDevicesCmdImportMaintenance(t *testing.T) {
	db := filepath.Join(t.TempDir(), "proactive.db")
	fleet := mustWriteFile(t, "fleet.csv", "device_id,model,time_zone\nhp-1,heatpump-x,Europe/Paris\n")
	if _, stderr, err := runDevices(t, db, "import", fleet); err != nil {
		t.Fatalf("import fleet: %v\n%s", err, stderr)
	}
	file := mustWriteFile(t, "maintenance.csv", `device_id,time,component,kind,notes
hp-1,2026-03-01T08:00:00Z,compressor,replaced,new unit
hp-1,1772352000000,fan,inspected,
hp-1,2026-03-01T08:00:00Z,fan,oiled,
hp-9,2026-03-01T08:00:00Z,fan,inspected,
`)
	stdout, stderr, err := runDevices(t, db, "import", "--maintenance", file)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	want := "4 rows: 2 created, 0 updated, 0 unchanged, 2 rejected\n" +
		`line 4: device hp-1: kind: "oiled" is not replaced, repaired or inspected` + "\n" +
		`line 5: device hp-9: device_id: "hp-9" is not a registered device` + "\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	stdout, _, err = runDevices(t, db, "import", "--maintenance", file)
	if err != nil || !strings.HasPrefix(stdout, "4 rows: 0 created, 0 updated, 2 unchanged, 2 rejected\n") {
		t.Errorf("second import: %v\n%s", err, stdout)
	}
	s, err := devices.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.MaintenanceAfter(t.Context(), 0, 0); err != nil || len(got) != 2 || got[0].Component != "compressor" {
		t.Errorf("records %+v, %v", got, err)
	}

	bad := mustWriteFile(t, "bad.csv", "device_id,time,kind\nhp-1,1,replaced\n")
	if _, _, err := runDevices(t, db, "import", "--maintenance", bad); err == nil || !strings.Contains(err.Error(), "missing required column component") {
		t.Errorf("missing column: %v", err)
	}
	if _, _, err := runDevices(t, db, "import", "--maintenance", "--technicians", file); err == nil {
		t.Error("--maintenance with --technicians: no error")
	}
}
