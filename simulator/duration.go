package simulator

import (
	"fmt"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// parseDuration reads a duration of a scenario in the platform's grammar
// (proactive.ParseDuration: "90s", "1.5h", "8d", "1d12h"), refusing negative
// ones.
func parseDuration(s string) (time.Duration, error) {
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q: negative durations are not allowed", s)
	}
	return proactive.ParseDuration(s)
}

// ParseDuration parses a non-negative duration in the platform's grammar.
//
// Deprecated: use proactive.ParseDuration; kept while the redesign merges.
func ParseDuration(s string) (time.Duration, error) { return parseDuration(s) }

// FormatDuration prints d as proactive.FormatDuration does.
//
// Deprecated: use proactive.FormatDuration; kept while the redesign merges.
func FormatDuration(d time.Duration) string { return proactive.FormatDuration(d) }
