package main

import "github.com/proactivehq/proactive/internal/config"

// The configuration's loader and defaults, under the names the tests of
// the commands use.
var (
	loadConfig    = config.Load
	defaultConfig = config.Default
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
