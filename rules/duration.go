package rules

import (
	"errors"
	"fmt"
	"math"
	"time"

	"gopkg.in/yaml.v3"
)

// durationUnits lists the units ParseDuration accepts, largest first. A
// duration must write them in this order, each at most once. A day is always
// 24 hours: rules measure elapsed time, not calendar days.
var durationUnits = []struct {
	name string
	size time.Duration
}{
	{"w", 7 * 24 * time.Hour},
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
}

const durationUnitHint = "use s, m, h, d or w"

// maxParsedDuration is the largest duration ParseDuration returns: the largest
// time.Duration that is a whole number of seconds.
const maxParsedDuration = time.Duration(math.MaxInt64) / time.Second * time.Second

// ParseDuration parses a duration as written in rule files and windows: a
// sequence of whole numbers, each followed by a unit, such as "90s", "30m",
// "1h30m", "7d", "2w" or "1d12h". The units are s, m, h, d (24h) and w (7d),
// written from largest to smallest and each at most once. "0" alone means
// zero. Negative durations, fractions ("1.5h"), other units ("5ms", "1y")
// and durations too large for time.Duration are refused with an error that
// quotes s and says what is wrong.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration (write e.g. 30m, 1h30m or 7d)")
	}
	if s == "0" {
		return 0, nil
	}
	if s[0] == '-' {
		return 0, fmt.Errorf("%q: negative durations are not allowed", s)
	}
	var total time.Duration
	next := 0 // index in durationUnits of the largest unit still allowed
	for i := 0; i < len(s); {
		// A whole number.
		start := i
		var n uint64
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if n > (math.MaxUint64-9)/10 {
				return 0, durationTooLarge(s)
			}
			n = n*10 + uint64(s[i]-'0')
			i++
		}
		if i == start {
			return 0, fmt.Errorf("%q: expected a number at %q (write e.g. 30m, 1h30m or 7d)", s, s[i:])
		}
		if i < len(s) && s[i] == '.' {
			return 0, fmt.Errorf("%q: fractions are not allowed; use a smaller unit, e.g. 90m instead of 1.5h", s)
		}
		// Its unit: everything up to the next digit.
		ustart := i
		for i < len(s) && (s[i] < '0' || s[i] > '9') {
			i++
		}
		unit := s[ustart:i]
		if unit == "" {
			return 0, fmt.Errorf("%q: missing unit after %s (%s)", s, s[start:i], durationUnitHint)
		}
		u := durationUnitIndex(unit)
		if u < 0 {
			return 0, fmt.Errorf("%q: unknown unit %q (%s)", s, unit, durationUnitHint)
		}
		if u < next {
			return 0, fmt.Errorf("%q: unit %q out of place; write units from largest to smallest, each once, e.g. 1d12h or 1h30m", s, unit)
		}
		next = u + 1
		size := durationUnits[u].size
		if n > uint64(maxParsedDuration/size) {
			return 0, durationTooLarge(s)
		}
		v := time.Duration(n) * size
		if v > maxParsedDuration-total {
			return 0, durationTooLarge(s)
		}
		total += v
	}
	return total, nil
}

func durationUnitIndex(unit string) int {
	for i, u := range durationUnits {
		if u.name == unit {
			return i
		}
	}
	return -1
}

func durationTooLarge(s string) error {
	return fmt.Errorf("%q: too large (the largest duration is %s)", s, FormatDuration(maxParsedDuration))
}

// FormatDuration prints d in the form ParseDuration reads, using the largest
// units first and leaving out zero parts: "90m" prints as "1h30m", "168h" as
// "1w", "36h" as "1d12h", and zero as "0s". So ParseDuration(FormatDuration(d))
// returns d for every duration ParseDuration can return. A negative d is
// printed with a leading "-", and a d that is not a whole number of seconds,
// which no unit here can express, is printed by time.Duration.String; neither
// parses back.
func FormatDuration(d time.Duration) string {
	if d%time.Second != 0 {
		return d.String()
	}
	if d == 0 {
		return "0s"
	}
	var b []byte
	// Work on the magnitude as uint64 so that math.MinInt64 does not overflow.
	v := uint64(d)
	if d < 0 {
		b = append(b, '-')
		v = -v
	}
	for _, u := range durationUnits {
		size := uint64(u.size)
		if q := v / size; q > 0 {
			b = fmt.Appendf(b, "%d%s", q, u.name)
			v -= q * size
		}
	}
	return string(b)
}

// Duration is a time.Duration that reads from YAML through ParseDuration, so
// configuration and rule test files can write "30m", "7d" or "2w". A YAML
// null leaves it unchanged.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler. It accepts a scalar that
// ParseDuration accepts; the error names the line of the value.
func (d *Duration) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a single value like 30m, 1h30m or 7d", value.Line)
	}
	v, err := ParseDuration(value.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", value.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler, writing d as FormatDuration does.
func (d Duration) MarshalYAML() (any, error) {
	return FormatDuration(time.Duration(d)), nil
}

// String returns d as FormatDuration prints it.
func (d Duration) String() string {
	return FormatDuration(time.Duration(d))
}
