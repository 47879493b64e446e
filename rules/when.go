package rules

import (
	"fmt"
	"strings"
	"time"
)

// ParseTime reads a point in time, as a backtest's --from and --to give it: "now", a time
// relative to now ("-30d", "-12h", "-1w2d", as ParseDuration reads
// them after the minus), RFC 3339, or a date (midnight UTC).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-"):
		d, err := parseDuration(s[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: %w", s, err)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want now, a time relative to now like -30d or -12h, RFC 3339 like 2026-11-01T00:00:00Z, or a date like 2026-11-01", s)
}

// CompileFiles loads and compiles the rule files of patterns, as a backtest
// runs them, returning every problem (each file:line), and one when the
// files hold no rule.
func CompileFiles(patterns []string) (*RuleSet, []error) {
	specs, probs := LoadFiles(patterns)
	var set *RuleSet
	if len(probs) == 0 {
		set, probs = Compile(specs)
	}
	var errs []error
	for _, p := range probs {
		errs = append(errs, p)
	}
	if len(probs) == 0 && len(specs) == 0 {
		errs = append(errs, fmt.Errorf("no rules in %s", strings.Join(patterns, ", ")))
	}
	return set, errs
}
