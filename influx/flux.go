package influx

import "strings"

var fluxEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "${", `\${`)

// fluxString quotes s as a Flux string literal: backslashes, quotes, line
// breaks and interpolation (${) escaped, so that no input can end the
// literal or inject Flux.
func fluxString(s string) string { return `"` + fluxEscaper.Replace(s) + `"` }
