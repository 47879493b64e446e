package proactive_test

import (
	"testing"
	"time"

	"github.com/proactivehq/proactive"
)

func TestFormatLocal(t *testing.T) {
	berlin := proactive.LoadZone("Europe/Berlin", nil)
	dubai := proactive.LoadZone("Asia/Dubai", nil)     // tz data has no abbreviation: Go says "+04"
	kolkata := proactive.LoadZone("Asia/Kolkata", nil) // IST
	newfoundland := proactive.LoadZone("America/St_Johns", nil)
	if berlin == nil || dubai == nil || kolkata == nil || newfoundland == nil {
		t.Fatal("zone data missing")
	}
	winter := time.Date(2026, 1, 13, 7, 0, 0, 0, time.UTC)
	summer := time.Date(2026, 7, 14, 6, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		t    time.Time
		loc  *time.Location
		want string
	}{
		{"berlin winter", winter, berlin, "Tue 13 Jan 08:00 CET"},
		{"berlin summer", summer, berlin, "Tue 14 Jul 08:00 CEST"},
		{"no abbreviation", winter, dubai, "Tue 13 Jan 11:00 UTC+04:00"},
		{"utc", winter, time.UTC, "Tue 13 Jan 07:00 UTC"},
		{"abbreviated", winter, kolkata, "Tue 13 Jan 12:30 IST"},
		{"negative half hour", winter, newfoundland, "Tue 13 Jan 03:30 NST"},
		{"fixed zone without a name", winter, time.FixedZone("", -(3*3600 + 1800)), "Tue 13 Jan 03:30 UTC-03:30"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := proactive.FormatLocal(tc.t, tc.loc, "Mon 2 Jan 15:04"); got != tc.want {
				t.Errorf("FormatLocal = %q, want %q", got, tc.want)
			}
		})
	}
	if got, want := proactive.FormatLocalSpan(summer, summer.Add(2*time.Hour), berlin), "Tue 14 Jul 08:00–10:00 CEST"; got != want {
		t.Errorf("span %q, want %q", got, want)
	}
	// The night the clocks go back: 02:30 CEST to 02:30 CET.
	fall := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)
	if got, want := proactive.FormatLocalSpan(fall, fall.Add(time.Hour), berlin), "Sun 25 Oct 02:30 CEST–02:30 CET"; got != want {
		t.Errorf("span over the change %q, want %q", got, want)
	}
	if got, want := proactive.FormatLocalClock(winter, winter.Add(2*time.Hour), dubai), "11:00–13:00 UTC+04:00"; got != want {
		t.Errorf("clock span %q, want %q", got, want)
	}
	if got := proactive.LoadZone("Mars/Olympus", time.UTC); got != time.UTC {
		t.Errorf("unknown zone gave %v, want the fallback", got)
	}
}
