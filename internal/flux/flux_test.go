package flux_test

import (
	"testing"

	"github.com/proactivehq/proactive/internal/flux"
)

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		`pump-1`:            `"pump-1"`,
		`a"b`:               `"a\"b"`,
		`a\b`:               `"a\\b"`,
		"x\ny":              `"x\ny"`,
		`${r._value}`:       `"\${r._value}"`,
		`") |> drop() //`:   `"\") |> drop() //"`,
		"telemetry/autogen": `"telemetry/autogen"`,
	} {
		if got := flux.String(in); got != want {
			t.Errorf("String(%q) = %s, want %s", in, got, want)
		}
	}
}
