package rules

import (
	"math"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	const day, week = 24 * time.Hour, 7 * 24 * time.Hour
	good := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"0s", 0},
		{"0w0d0h0m0s", 0},
		{"90s", 90 * time.Second},
		{"30m", 30 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"90m", 90 * time.Minute},
		{"168h", week},
		{"7d", week},
		{"1d12h", 36 * time.Hour},
		{"2w", 2 * week},
		{"1w2d3h4m5s", week + 2*day + 3*time.Hour + 4*time.Minute + 5*time.Second},
		{"007m", 7 * time.Minute},
		{"15250w1d23h47m16s", time.Duration(math.MaxInt64) / time.Second * time.Second},
		{"9223372036s", 9223372036 * time.Second},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}

	bad := []struct {
		in, want string
	}{
		{"", "empty duration (write e.g. 30m, 1h30m or 7d)"},
		{"-5m", `"-5m": negative durations are not allowed`},
		{"-0", `"-0": negative durations are not allowed`},
		{"+5m", `"+5m": expected a number at "+5m" (write e.g. 30m, 1h30m or 7d)`},
		{"7x", `"7x": unknown unit "x" (use s, m, h, d or w)`},
		{"1y", `"1y": unknown unit "y" (use s, m, h, d or w)`},
		{"5ms", `"5ms": unknown unit "ms" (use s, m, h, d or w)`},
		{"10ns", `"10ns": unknown unit "ns" (use s, m, h, d or w)`},
		{"1H", `"1H": unknown unit "H" (use s, m, h, d or w)`},
		{"1h 30m", `"1h 30m": unknown unit "h " (use s, m, h, d or w)`},
		{"30", `"30": missing unit after 30 (use s, m, h, d or w)`},
		{"1h30", `"1h30": missing unit after 30 (use s, m, h, d or w)`},
		{"00", `"00": missing unit after 00 (use s, m, h, d or w)`},
		{"h", `"h": expected a number at "h" (write e.g. 30m, 1h30m or 7d)`},
		{" 5m", `" 5m": expected a number at " 5m" (write e.g. 30m, 1h30m or 7d)`},
		{"1.5h", `"1.5h": fractions are not allowed; use a smaller unit, e.g. 90m instead of 1.5h`},
		{"30m1h", `"30m1h": unit "h" out of place; write units from largest to smallest, each once, e.g. 1d12h or 1h30m`},
		{"1h1h", `"1h1h": unit "h" out of place; write units from largest to smallest, each once, e.g. 1d12h or 1h30m`},
		{"15251w", `"15251w": too large (the largest duration is 15250w1d23h47m16s)`},
		{"15250w3d", `"15250w3d": too large (the largest duration is 15250w1d23h47m16s)`},
		{"9223372037s", `"9223372037s": too large (the largest duration is 15250w1d23h47m16s)`},
		{"99999999999999999999999s", `"99999999999999999999999s": too large (the largest duration is 15250w1d23h47m16s)`},
	}
	for _, tt := range bad {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
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
		{90 * time.Second, "1m30s"},
		{30 * time.Minute, "30m"},
		{90 * time.Minute, "1h30m"},
		{24 * time.Hour, "1d"},
		{36 * time.Hour, "1d12h"},
		{7 * 24 * time.Hour, "1w"},
		{14 * 24 * time.Hour, "2w"},
		{8*24*time.Hour + time.Second, "1w1d1s"},
		{-90 * time.Minute, "-1h30m"},
		{time.Duration(math.MaxInt64) / time.Second * time.Second, "15250w1d23h47m16s"},
		{time.Duration(math.MinInt64) / time.Second * time.Second, "-15250w1d23h47m16s"},
		{1500 * time.Millisecond, "1.5s"},
		{time.Duration(math.MinInt64), "-2562047h47m16.854775808s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := FormatDuration(tt.in)
			if got != tt.want {
				t.Fatalf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
			}
			if tt.in < 0 || tt.in%time.Second != 0 {
				return // not something ParseDuration returns
			}
			back, err := ParseDuration(got)
			if err != nil || back != tt.in {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", got, back, err, tt.in)
			}
		})
	}
}

func TestDurationYAML(t *testing.T) {
	type config struct {
		Window Duration `yaml:"window"`
	}
	tests := []struct {
		src     string
		want    time.Duration
		wantErr string
	}{
		{src: "window: 7d", want: 7 * 24 * time.Hour},
		{src: "window: 0", want: 0},
		{src: "window: \"1h30m\"", want: 90 * time.Minute},
		{src: "window: ~", want: time.Hour}, // null leaves the value alone
		{src: "x: 1\nwindow: 7x", wantErr: `line 2: "7x": unknown unit "x" (use s, m, h, d or w)`},
		{src: "window: 3600", wantErr: `line 1: "3600": missing unit after 3600 (use s, m, h, d or w)`},
		{src: "window: [1h]", wantErr: "line 1: a duration must be a single value like 30m, 1h30m or 7d"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			c := config{Window: Duration(time.Hour)}
			err := yaml.Unmarshal([]byte(tt.src), &c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || time.Duration(c.Window) != tt.want {
				t.Fatalf("got %v, %v; want %v", time.Duration(c.Window), err, tt.want)
			}
			out, err := yaml.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			var back config
			if err := yaml.Unmarshal(out, &back); err != nil || back != c {
				t.Errorf("round trip through %q: got %v, %v", out, back.Window, err)
			}
		})
	}
	if got := Duration(36 * time.Hour).String(); got != "1d12h" {
		t.Errorf("String() = %q, want 1d12h", got)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "0s", "90s", "30m", "1h30m", "7d", "2w", "1d12h", "1w2d3h4m5s",
		"15250w1d23h47m16s", "15251w", "-5m", "1.5h", "5ms", "30m1h", "", "1h 30m", "99999999999999999999s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if err.Error() == "" {
				t.Errorf("ParseDuration(%q): empty error", s)
			}
			return
		}
		if d < 0 || d%time.Second != 0 {
			t.Fatalf("ParseDuration(%q) = %v: negative or not whole seconds", s, d)
		}
		text := FormatDuration(d)
		back, err := ParseDuration(text)
		if err != nil || back != d {
			t.Errorf("ParseDuration(%q) = %v; FormatDuration gives %q, which parses to %v, %v", s, d, text, back, err)
		}
		if len(text) > len("15250w1d23h47m16s") {
			t.Errorf("FormatDuration(%v) = %q, longer than the largest duration", d, text)
		}
	})
}
