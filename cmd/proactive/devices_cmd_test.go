package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

// runDevices runs `proactive devices ARGS...` on the SQLite database db.
func runDevices(t *testing.T, db string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := envMap(map[string]string{"PROACTIVE_DB": db})
	err = run(t.Context(), append([]string{"proactive", "devices"}, args...), getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

func mustWriteFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDevicesCmdImport(t *testing.T) {
	db := filepath.Join(t.TempDir(), "proactive.db")
	file := mustWriteFile(t, "fleet.csv", `device_id,model,customer_id,customer_name,customer_phone,sms_consent,time_zone
hp-1,heatpump-x,c1,Ann,+33612345678,true,Europe/Paris
hp-2,heatpump-x,c1,,,,Europe/Paris
hp-3,heatpump-x,,,,,Nowhere/Land
`)
	stdout, stderr, err := runDevices(t, db, "import", file)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	want := "3 rows: 2 created, 0 updated, 0 unchanged, 1 rejected\n" +
		`line 4: device hp-3: time_zone: "Nowhere/Land" is not an IANA time zone such as Europe/Paris` + "\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	stdout, _, err = runDevices(t, db, "import", file)
	if err != nil || !strings.HasPrefix(stdout, "3 rows: 0 created, 0 updated, 2 unchanged, 1 rejected\n") {
		t.Errorf("second import: %v\n%s", err, stdout)
	}

	// File-level errors exit non-zero.
	bad := mustWriteFile(t, "bad.csv", "device_id,model,colour\nd1,m,red\n")
	if _, _, err := runDevices(t, db, "import", bad); err == nil || !strings.Contains(err.Error(), `unknown column(s) "colour"`) {
		t.Errorf("unknown column: %v", err)
	}
	if _, _, err := runDevices(t, db, "import", filepath.Join(t.TempDir(), "missing.csv")); err == nil {
		t.Error("missing file: no error")
	}
	if _, stderr, err := runDevices(t, db, "import"); err == nil || !strings.Contains(stderr, "usage: proactive devices import") {
		t.Errorf("no file: %v\n%s", err, stderr)
	}
}

// The fleet that `simulate --registry` writes imports cleanly: every row
// created, the devices with their models and time zones.
func TestDevicesCmdImportSimulatorRegistry(t *testing.T) {
	dir := t.TempDir()
	fleet := filepath.Join(dir, "fleet.csv")
	var out, errOut bytes.Buffer
	noEnv := envMap(nil)
	if err := run(t.Context(), []string{"proactive", "simulate", "--scenario", "demo", "--start", simStart.Format(time.RFC3339),
		"--registry", fleet}, noEnv, &out, &errOut); err != nil {
		t.Fatalf("simulate --registry: %v\n%s", err, errOut.String())
	}
	b, err := os.ReadFile(fleet)
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(string(b), "\n") - 1
	if n < 2 {
		t.Fatalf("registry has %d rows:\n%s", n, b)
	}
	db := filepath.Join(dir, "proactive.db")
	stdout, stderr, err := runDevices(t, db, "import", fleet)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if want := strconv.Itoa(n) + " rows: " + strconv.Itoa(n) + " created, 0 updated, 0 unchanged, 0 rejected\n"; stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
	store, err := devices.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	d, err := store.GetDevice(t.Context(), "fridge-001")
	if err != nil || d.Model != "fridge-a1" || d.TimeZone != "Europe/Berlin" || d.CustomerID != "cust-fridge-001" || d.Installed.IsZero() {
		t.Errorf("fridge-001 = %+v, %v", d, err)
	}
	c, err := store.CustomerByPhone(t.Context(), "+4915550000001")
	if err != nil || c.ID != "cust-fridge-001" || !c.SMSConsent {
		t.Errorf("customer = %+v, %v", c, err)
	}
}

func TestDevicesCmdImportTechnicians(t *testing.T) {
	db := filepath.Join(t.TempDir(), "proactive.db")
	file := mustWriteFile(t, "techs.csv", `technician_id,name,phone,time_zone,skills,service_area,hours
t1,Tess,+4915550999001,UTC,compressor fan,*,mon-fri 08:00-17:00
t2,Bad,+4915550999002,UTC,fan,*,mon 17:00-08:00
`)
	stdout, stderr, err := runDevices(t, db, "import", "--technicians", file)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if !strings.HasPrefix(stdout, "2 rows: 1 created, 0 updated, 0 unchanged, 1 rejected\nline 3: technician t2: ") {
		t.Errorf("stdout:\n%s", stdout)
	}
	s, err := devices.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if tech, err := s.GetTechnician(t.Context(), "t1"); err != nil || len(tech.Skills) != 2 {
		t.Errorf("t1: %+v, %v", tech, err)
	}
}

// TestServeSeesDevicesImportedMeanwhile: a running serve counts the devices
// registered at its start in its directory, and within its refresh those
// that `proactive devices import`, another process, registers meanwhile.
func TestServeSeesDevicesImportedMeanwhile(t *testing.T) {
	t.Parallel()
	influx := testenv.Influx(t)
	env := baseEnv(t, influx)
	env["PROACTIVE_MQTT_LISTEN"] = testenv.FreeAddr(t)
	db := env["PROACTIVE_DB"]
	if _, stderr, err := runDevices(t, db, "import", mustWriteFile(t, "one.csv", "device_id,model,time_zone\nd1,heatpump-x,UTC\n")); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	p := startServe(t, env)
	if got := metric(t, p.http, "proactive_device_directory_devices"); got != 1 {
		t.Errorf("directory of %v devices at start, want 1", got)
	}
	if _, stderr, err := runDevices(t, db, "import", mustWriteFile(t, "two.csv", "device_id,model,time_zone\nd2,heatpump-x,UTC\n")); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	testenv.Eventually(t, 0, func() error {
		if got := metric(t, p.http, "proactive_device_directory_devices"); got != 2 {
			return fmt.Errorf("directory of %v devices, want 2", got)
		}
		return nil
	})
}
