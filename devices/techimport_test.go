package devices_test

import (
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

func TestParseWeeklyHours(t *testing.T) {
	w, err := devices.ParseWeeklyHours("mon-fri 08:00-12:00 13:00-17:00; sat 09:00-12:00; fri-sun 18:00-20:00")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		day  time.Weekday
		at   string
		want bool
	}{
		{time.Monday, "08:00", true},
		{time.Monday, "12:30", false},
		{time.Friday, "16:59", true},
		{time.Friday, "19:00", true},
		{time.Saturday, "10:00", true},
		{time.Saturday, "19:00", true},
		{time.Sunday, "19:00", true},
		{time.Sunday, "10:00", false},
		{time.Thursday, "19:00", false},
	}
	for _, tt := range tests {
		if got := w.Works(tt.day, proactive.MustClock(tt.at)); got != tt.want {
			t.Errorf("%s %s: works %v, want %v", tt.day, tt.at, got, tt.want)
		}
	}
	for _, bad := range []string{"mon", "monday 08:00-10:00", "mon 8-10", "mon 08:00-25:00", "tue-xyz 08:00-09:00"} {
		if _, err := devices.ParseWeeklyHours(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestImportTechnicians(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		const file = `technician_id,name,phone,time_zone,skills,service_area,hours
tech-1,Ada Field,+4915550900001,Europe/Berlin,compressor fan,10 12,mon-fri 08:00-17:00
tech-2,Bo Bad,0612,Europe/Berlin,compressor,*,mon-fri 08:00-17:00
tech-3,Cy Hours,+4915550900003,Europe/Berlin,fan,*,someday 08:00-17:00
tech-4,Di Wide,+4915550900004,Europe/Berlin,refrigerant;filter,*,mon-sun 07:00-19:00
`
		rep, err := devices.ImportTechnicians(t.Context(), s, strings.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Rows != 4 || rep.Created != 2 || len(rep.Rejected) != 2 {
			t.Fatalf("report %+v, want 4 rows, 2 created, 2 rejected", rep)
		}
		if r := rep.Rejected[0]; r.Line != 3 || !strings.Contains(r.Reason, "E.164") {
			t.Errorf("first rejection %+v, want line 3 about the phone", r)
		}
		if r := rep.Rejected[1]; r.Line != 4 || !strings.Contains(r.Reason, "hours") {
			t.Errorf("second rejection %+v, want line 4 about the hours", r)
		}
		tech, err := s.GetTechnician(t.Context(), "tech-1")
		if err != nil {
			t.Fatal(err)
		}
		if !tech.Serves("12345") || tech.Serves("20095") || len(tech.Skills) != 2 || !tech.Hours.Works(time.Wednesday, proactive.MustClock("09:00")) {
			t.Errorf("tech-1 stored as %+v", tech)
		}
		again, err := devices.ImportTechnicians(t.Context(), s, strings.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		if again.Unchanged != 2 || again.Created != 0 || again.Updated != 0 {
			t.Errorf("second import %+v, want 2 unchanged", again)
		}
		changed := strings.Replace(file, "Ada Field", "Ada Fieldwork", 1)
		if rep, err := devices.ImportTechnicians(t.Context(), s, strings.NewReader(changed)); err != nil || rep.Updated != 1 {
			t.Errorf("changed import %+v, %v: want 1 updated", rep, err)
		}
		if _, err := devices.ImportTechnicians(t.Context(), s, strings.NewReader("technician_id,name\nx,y\n")); err == nil {
			t.Error("missing columns: no error")
		}
	})
}

// TestImportTechniciansBadCSV checks a malformed file is an error, not a panic.
func TestImportTechniciansBadCSV(t *testing.T) {
	s := mustOpen(t, sqliteDSN(t))
	bad := "technician_id,name,phone,time_zone,skills,service_area,hours\n\"tech-1,x\"y,+4915550900001,UTC,fan,*,mon 08:00-09:00\n"
	if _, err := devices.ImportTechnicians(t.Context(), s, strings.NewReader(bad)); err == nil {
		t.Fatal("no error for a bad quote")
	}
}
