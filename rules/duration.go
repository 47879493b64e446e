package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// parseDuration reads a duration of a rule file, a rule test or a window in
// the platform's grammar (proactive.ParseDuration: "30m", "1h30m", "7d",
// "2w"), refusing negative ones: rules measure elapsed time.
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
