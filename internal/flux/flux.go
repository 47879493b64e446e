// Package flux holds what the InfluxDB readers of ingest and rules share
// in writing Flux queries, which may not import each other.
package flux

import "strings"

var escaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "${", `\${`)

// String quotes s as a Flux string literal: backslashes, quotes, line
// breaks and interpolation (${) escaped, so that no input can end the
// literal or inject Flux.
func String(s string) string { return `"` + escaper.Replace(s) + `"` }
