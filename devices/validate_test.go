package devices_test

import (
	"encoding/json"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

func TestNormalizePhone(t *testing.T) {
	for in, want := range map[string]string{
		"+14155550123":        "+14155550123",
		" +44 (20) 7946-0958": "+442079460958",
		"+33 6.12.34.56.78":   "+33612345678",
		"0612345678":          "",
		"+0612345678":         "",
		"+1234567":            "+1234567",
		"+123456":             "",
		"+1234567890123456":   "",
		"+1 415 555 O123":     "",
	} {
		got, ok := devices.NormalizePhone(in)
		if ok != (want != "") || (ok && got != want) {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestNormalizeLanguage(t *testing.T) {
	for in, want := range map[string]string{
		"en": "en", "FR": "fr", "de-ch": "de-CH", "de_CH": "de-CH", "sr-latn-rs": "sr-Latn-RS", "es-419": "es-419",
		"zh-Hant": "zh-Hant", "fil": "fil",
		"english": "", "e": "", "en-": "", "en-USA": "", "en-US-x": "", "": "", "12": "", "en-1234": "",
	} {
		got, ok := devices.NormalizeLanguage(in)
		if ok != (want != "") || (ok && got != want) {
			t.Errorf("NormalizeLanguage(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestClock(t *testing.T) {
	for in, want := range map[string]int{"00:00": 0, "8:05": 485, "21:00": 1260, "23:59": 1439,
		"24:00": -1, "12:60": -1, "1200": -1, "12:5": -1, "-1:00": -1, "": -1, "ab:cd": -1, "123:00": -1} {
		c, err := proactive.ParseClock(in)
		if (err == nil) != (want >= 0) || (err == nil && int(c) != want) {
			t.Errorf("ParseClock(%q) = %d, %v; want %d", in, c, err, want)
		}
	}
	q := proactive.DefaultQuietHours
	for s, quiet := range map[string]bool{"21:00": true, "23:59": true, "00:00": true, "07:59": true, "08:00": false, "12:00": false, "20:59": false} {
		if q.Contains(proactive.MustClock(s)) != quiet {
			t.Errorf("quiet at %s: %v", s, !quiet)
		}
	}
	var v struct{ At proactive.Clock }
	if err := json.Unmarshal([]byte(`{"At":"07:30"}`), &v); err != nil || v.At != 450 {
		t.Errorf("unmarshal: %d, %v", v.At, err)
	}
	if b, err := json.Marshal(v); err != nil || string(b) != `{"At":"07:30"}` {
		t.Errorf("marshal: %s, %v", b, err)
	}
}

// FuzzParseClock checks that whatever parses prints back the same.
func FuzzParseClock(f *testing.F) {
	for _, s := range []string{"08:00", "8:00", "23:59", "24:00", "", "::", "9:5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := proactive.ParseClock(s)
		if err != nil {
			return
		}
		if !c.Valid() {
			t.Fatalf("ParseClock(%q) = %d, not a time of day", s, c)
		}
		if back, err := proactive.ParseClock(c.String()); err != nil || back != c {
			t.Fatalf("ParseClock(%q) = %s, which parses as %d, %v", s, c, back, err)
		}
	})
}

// FuzzNormalize checks that normalised phones and languages are fixed points.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+14155550123", "+44 (20) 7946-0958", "de_ch", "sr-latn-rs", "es-419", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, ok := devices.NormalizePhone(s); ok {
			if p2, ok2 := devices.NormalizePhone(p); !ok2 || p2 != p {
				t.Fatalf("phone %q → %q → %q, %v", s, p, p2, ok2)
			}
		}
		if l, ok := devices.NormalizeLanguage(s); ok {
			if l2, ok2 := devices.NormalizeLanguage(l); !ok2 || l2 != l {
				t.Fatalf("language %q → %q → %q, %v", s, l, l2, ok2)
			}
		}
	})
}

// FuzzWeeklyHours checks that hours which decode encode back to the same.
func FuzzWeeklyHours(f *testing.F) {
	f.Add(`{"mon":[{"start":"08:00","end":"12:00"}],"sat":[]}`)
	f.Add(`{"Funday":[]}`)
	f.Add(`{"tue":[{"start":"25:00"}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		var w proactive.WeeklyHours
		if json.Unmarshal([]byte(s), &w) != nil {
			return
		}
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatalf("%s decoded but does not encode: %v", s, err)
		}
		var back proactive.WeeklyHours
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s → %s does not decode: %v", s, b, err)
		}
		b2, _ := json.Marshal(back)
		if string(b2) != string(b) {
			t.Fatalf("%s → %s → %s", s, b, b2)
		}
	})
}
