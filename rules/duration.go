package rules

import (
	"time"

	"github.com/proactivehq/proactive"
)

// parseDuration reads a duration of a rule file, a rule test or a window in the platform's one grammar
// ("30m", "1h30m", "7d", "2w"), refusing negative ones.
func parseDuration(s string) (time.Duration, error) { return proactive.ParseNonNegativeDuration(s) }
