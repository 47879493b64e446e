package proactive_test

import (
	"encoding/json"
	"flag"
	"math"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
)

func TestParseDuration(t *testing.T) {
	const day, week = 24 * time.Hour, 7 * 24 * time.Hour
	good := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"-0", 0},
		{"0s", 0},
		{"0w0d0h0m0s", 0},
		{"90s", 90 * time.Second},
		{"30m", 30 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"30m1h", 90 * time.Minute},
		{"1h1h", 2 * time.Hour},
		{"336h", 2 * week},
		{"7d", week},
		{"1d12h", 36 * time.Hour},
		{"2w", 2 * week},
		{"1w2d3h4m5s", week + 2*day + 3*time.Hour + 4*time.Minute + 5*time.Second},
		{"007m", 7 * time.Minute},
		{"1.5h", 90 * time.Minute},
		{"1.5d", 36 * time.Hour},
		{".5s", 500 * time.Millisecond},
		{"1.s", time.Second},
		{"500ms", 500 * time.Millisecond},
		{"1s500ms", 1500 * time.Millisecond},
		{"10us", 10 * time.Microsecond},
		{"10µs", 10 * time.Microsecond},
		{"10ns", 10},
		{"+5m", 5 * time.Minute},
		{"-5m", -5 * time.Minute},
		{"-1w2d", -9 * day},
		{"15250w1d23h47m16.854775807s", math.MaxInt64},
		{"-15250w1d23h47m16.854775808s", math.MinInt64},
		{"9223372036854775807ns", math.MaxInt64},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			got, err := proactive.ParseDuration(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}

	const hint = "(use s, m, h, d or w)"
	const tooLarge = "too large (the limit is about 292 years, 15250w1d23h47m16.854775807s)"
	bad := []struct {
		in, want string
	}{
		{"", "empty duration (write e.g. 30m, 1h30m or 7d)"},
		{"-", `"-": expected a number after the sign (write e.g. 30m, 1h30m or 7d)`},
		{"7x", `"7x": unknown unit "x" ` + hint},
		{"1y", `"1y": unknown unit "y" ` + hint},
		{"1H", `"1H": unknown unit "H" ` + hint},
		{"1h 30m", `"1h 30m": unknown unit "h " ` + hint},
		{"30", `"30": missing unit after 30 ` + hint},
		{"1h30", `"1h30": missing unit after 30 ` + hint},
		{"00", `"00": missing unit after 00 ` + hint},
		{"1.5", `"1.5": missing unit after 1.5 ` + hint},
		{"h", `"h": expected a number at "h" (write e.g. 30m, 1h30m or 7d)`},
		{" 5m", `" 5m": expected a number at " 5m" (write e.g. 30m, 1h30m or 7d)`},
		{".s", `".s": expected a number at ".s" (write e.g. 30m, 1h30m or 7d)`},
		{"--5m", `"--5m": expected a number at "-5m" (write e.g. 30m, 1h30m or 7d)`},
		{"15251w", `"15251w": ` + tooLarge},
		{"15250w3d", `"15250w3d": ` + tooLarge},
		{"9223372037s", `"9223372037s": ` + tooLarge},
		{"9223372036854775808ns", `"9223372036854775808ns": ` + tooLarge},
		{"99999999999999999999999s", `"99999999999999999999999s": ` + tooLarge},
	}
	for _, tt := range bad {
		t.Run(tt.in, func(t *testing.T) {
			got, err := proactive.ParseDuration(tt.in)
			if err == nil {
				t.Fatalf("ParseDuration(%q) = %v, want error %q", tt.in, got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("ParseDuration(%q) error\n got: %s\nwant: %s", tt.in, err, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{500 * time.Millisecond, "500ms"},
		{-3 * time.Microsecond, "-3µs"},
		{90 * time.Second, "1m30s"},
		{30 * time.Minute, "30m"},
		{90 * time.Minute, "1h30m"},
		{24 * time.Hour, "1d"},
		{36 * time.Hour, "1d12h"},
		{7 * 24 * time.Hour, "1w"},
		{14 * 24 * time.Hour, "2w"},
		{8*24*time.Hour + time.Second, "1w1d1s"},
		{-90 * time.Minute, "-1h30m"},
		{1500 * time.Millisecond, "1.5s"},
		{time.Hour + 1, "1h0.000000001s"},
		{math.MaxInt64, "15250w1d23h47m16.854775807s"},
		{math.MinInt64, "-15250w1d23h47m16.854775808s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := proactive.FormatDuration(tt.in)
			if got != tt.want {
				t.Fatalf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
			}
			back, err := proactive.ParseDuration(got)
			if err != nil || back != tt.in {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", got, back, err, tt.in)
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	var v struct {
		Every proactive.Duration `json:"every"`
	}
	if err := json.Unmarshal([]byte(`{"every": "2w"}`), &v); err != nil || time.Duration(v.Every) != 14*24*time.Hour {
		t.Fatalf("decode 2w = %v, %v", v.Every, err)
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) != `{"every":"2w"}` {
		t.Fatalf("encode = %s, %v", b, err)
	}
	err = json.Unmarshal([]byte(`{"every": "2 weeks"}`), &v)
	if err == nil {
		t.Fatal("decode 2 weeks: no error")
	}

	// A flag takes it through flag.TextVar, with the same grammar.
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var d proactive.Duration
	fs.TextVar(&d, "timeout", proactive.Duration(3*time.Second), "")
	if err := fs.Parse([]string{"-timeout", "1d12h"}); err != nil || time.Duration(d) != 36*time.Hour {
		t.Fatalf("-timeout 1d12h = %v, %v", d, err)
	}
}

// FuzzParseDuration checks that ParseDuration takes everything
// time.ParseDuration takes, with the same value, and reads back what
// FormatDuration prints.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "1h30m", "7d", "2w", "1.5h", "-5m", "+3s", "500ms", "10µs", ".5s",
		"15250w1d23h47m16.854775807s", "9223372036854775808ns", "1h 30m", "1.0000000000000000001h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := proactive.ParseDuration(s)
		if want, goErr := time.ParseDuration(s); goErr == nil && (err != nil || got != want) {
			t.Fatalf("ParseDuration(%q) = %v, %v; time.ParseDuration = %v", s, got, err, want)
		}
		if err != nil {
			return
		}
		text := proactive.FormatDuration(got)
		back, err := proactive.ParseDuration(text)
		if err != nil || back != got {
			t.Fatalf("ParseDuration(%q) = %v; FormatDuration = %q, parses back to %v, %v", s, got, text, back, err)
		}
	})
}
