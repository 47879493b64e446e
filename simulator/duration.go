package simulator

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// durationUnits are the units ParseDuration takes. A day is 24 hours and a
// week 7 days: scenarios measure elapsed time, not calendar days.
var durationUnits = map[string]time.Duration{
	"w":  7 * 24 * time.Hour,
	"d":  24 * time.Hour,
	"h":  time.Hour,
	"m":  time.Minute,
	"s":  time.Second,
	"ms": time.Millisecond,
}

// ParseDuration parses a duration as scenarios write them: numbers, each
// followed by a unit, such as "90s", "1.5h", "8d" or "1d12h". The units are
// ms, s, m, h, d (24h) and w (7d); "0" alone is zero. Negative durations
// are refused.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration (write e.g. 30m, 1h30m or 8d)")
	}
	if s == "0" {
		return 0, nil
	}
	if s[0] == '-' {
		return 0, fmt.Errorf("%q: negative durations are not allowed", s)
	}
	var total float64
	for rest := s; rest != ""; {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("%q is not a duration: want a number before each unit (s, m, h, d, w)", s)
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: bad number %q", s, rest[:i])
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && rest[j] >= 'a' && rest[j] <= 'z' {
			j++
		}
		unit, ok := durationUnits[rest[:j]]
		if !ok {
			if j == 0 {
				return 0, fmt.Errorf("%q is not a duration: %v has no unit (s, m, h, d, w)", s, n)
			}
			return 0, fmt.Errorf("%q is not a duration: unknown unit %q (use ms, s, m, h, d or w)", s, rest[:j])
		}
		rest = rest[j:]
		total += n * float64(unit)
	}
	if total > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too long", s)
	}
	return time.Duration(math.Round(total)), nil
}

// FormatDuration writes d with the units of ParseDuration, largest first,
// such as "8d", "1d12h" or "1h30m"; sub-millisecond parts are dropped.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	for _, u := range []struct {
		name string
		size time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if n := d / u.size; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			d -= n * u.size
		}
	}
	if b.Len() == 0 || b.String() == "-" {
		return "0"
	}
	return b.String()
}
