package influx

import "testing"

func TestFluxString(t *testing.T) {
	for in, want := range map[string]string{
		`pump-1`:            `"pump-1"`,
		`a"b`:               `"a\"b"`,
		`a\b`:               `"a\\b"`,
		"x\ny":              `"x\ny"`,
		`${r._value}`:       `"\${r._value}"`,
		`") |> drop() //`:   `"\") |> drop() //"`,
		"telemetry/autogen": `"telemetry/autogen"`,
	} {
		if got := fluxString(in); got != want {
			t.Errorf("fluxString(%q) = %s, want %s", in, got, want)
		}
	}
}
