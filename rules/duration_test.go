package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"go.yaml.in/yaml/v3"
)

// Rules read durations in the platform's grammar, but never negative ones.
func TestParseDuration(t *testing.T) {
	good := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"90s", 90 * time.Second},
		{"1h30m", 90 * time.Minute},
		{"1.5h", 90 * time.Minute},
		{"7d", 7 * 24 * time.Hour},
		{"2w", 14 * 24 * time.Hour},
		{"500ms", 500 * time.Millisecond},
		{"+5m", 5 * time.Minute},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	bad := []struct {
		in, want string
	}{
		{"", "empty duration (write e.g. 30m, 1h30m or 7d)"},
		{"-5m", `"-5m": negative durations are not allowed`},
		{"-0", `"-0": negative durations are not allowed`},
		{"7x", `"7x": unknown unit "x" (use s, m, h, d or w)`},
		{"30", `"30": missing unit after 30 (use s, m, h, d or w)`},
	}
	for _, tt := range bad {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			if err == nil || err.Error() != tt.want {
				t.Errorf("parseDuration(%q) = %v, %v; want error %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// proactive.Duration decodes from YAML through its text form.
func TestDurationYAML(t *testing.T) {
	type config struct {
		Window proactive.Duration `yaml:"window"`
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
		{src: "x: 1\nwindow: 7x", wantErr: `"7x": unknown unit "x" (use s, m, h, d or w)`},
		{src: "window: 3600", wantErr: `"3600": missing unit after 3600 (use s, m, h, d or w)`},
		{src: "window: [1h]", wantErr: "cannot unmarshal !!seq into proactive.Duration"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			c := config{Window: proactive.Duration(time.Hour)}
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
}
