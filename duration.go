package proactive

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The units of ParseDuration. A day is always 24 hours and a week 7 days: the
// platform measures elapsed time, not calendar days.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

var durationUnits = map[string]uint64{
	"ns": uint64(time.Nanosecond),
	"us": uint64(time.Microsecond),
	"µs": uint64(time.Microsecond), // U+00B5, as time.Duration.String writes it
	"μs": uint64(time.Microsecond), // U+03BC
	"ms": uint64(time.Millisecond),
	"s":  uint64(time.Second),
	"m":  uint64(time.Minute),
	"h":  uint64(time.Hour),
	"d":  uint64(Day),
	"w":  uint64(Week),
}

const durationHint = "use s, m, h, d or w"

// ParseDuration parses a duration as the platform writes them everywhere
// (configuration, rule files, scenarios, flags): an optional sign, then
// numbers, each followed by a unit, such as "90s", "1h30m", "1.5h", "7d",
// "2w" or "500ms". The units are ns, us (or µs), ms, s, m, h, d (24h) and
// w (7d). "0" alone means zero. It accepts everything time.ParseDuration
// accepts, with the same value. An error quotes s and says what is wrong.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, errors.New("empty duration (write e.g. 30m, 1h30m or 7d)")
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, fmt.Errorf("%q: expected a number after the sign (write e.g. 30m, 1h30m or 7d)", orig)
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit = 1 << 63
	}
	var total uint64
	for s != "" {
		num := s
		// A whole number, then maybe a fraction.
		var v uint64
		i := 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if v > (1<<63)/10 {
				return 0, durationTooLarge(orig)
			}
			v = v*10 + uint64(s[i]-'0')
			if v > 1<<63 {
				return 0, durationTooLarge(orig)
			}
		}
		digits := i > 0
		var frac uint64
		scale := 1.0
		if i < len(s) && s[i] == '.' {
			i++
			overflow := false
			for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
				digits = true
				if overflow || frac > (1<<63-1)/10 {
					overflow = true
					continue
				}
				frac = frac*10 + uint64(s[i]-'0')
				scale *= 10
			}
		}
		if !digits {
			return 0, fmt.Errorf("%q: expected a number at %q (write e.g. 30m, 1h30m or 7d)", orig, s)
		}
		num, s = num[:i], s[i:]
		// Its unit: everything up to the next number.
		j := 0
		for j < len(s) && s[j] != '.' && (s[j] < '0' || s[j] > '9') {
			j++
		}
		if j == 0 {
			return 0, fmt.Errorf("%q: missing unit after %s (%s)", orig, num, durationHint)
		}
		unit, ok := durationUnits[s[:j]]
		if !ok {
			return 0, fmt.Errorf("%q: unknown unit %q (%s)", orig, s[:j], durationHint)
		}
		s = s[j:]
		if v > (1<<63)/unit {
			return 0, durationTooLarge(orig)
		}
		v *= unit
		if frac > 0 {
			// As time.ParseDuration computes it, so that both agree.
			v += uint64(float64(frac) * (float64(unit) / scale))
			if v > 1<<63 {
				return 0, durationTooLarge(orig)
			}
		}
		total += v
		if total > limit {
			return 0, durationTooLarge(orig)
		}
	}
	if neg {
		return -time.Duration(total), nil
	}
	return time.Duration(total), nil
}

// ParseNonNegativeDuration is ParseDuration refusing negative durations, for
// what measures elapsed time: rule windows, scenario lengths, intervals.
func ParseNonNegativeDuration(s string) (time.Duration, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "-") {
		return 0, fmt.Errorf("%q: negative durations are not allowed", s)
	}
	return ParseDuration(s)
}

func durationTooLarge(s string) error {
	return fmt.Errorf("%q: too large (the limit is about 292 years, %s)", s, FormatDuration(1<<63-1))
}

// FormatDuration prints d in the form ParseDuration reads, in its largest
// units first and without zero parts: 90m prints as "1h30m", 168h as "1w",
// 36h as "1d12h", 1500ms as "1.5s" and zero as "0s". A duration under a
// second prints as time.Duration.String does ("500ms"). ParseDuration reads
// back every string it prints as the same duration.
func FormatDuration(d time.Duration) string {
	if d > -time.Second && d < time.Second {
		return d.String()
	}
	var b []byte
	// Work on the magnitude as uint64 so that math.MinInt64 does not overflow.
	v := uint64(d)
	if d < 0 {
		b = append(b, '-')
		v = -v
	}
	for _, u := range []struct {
		name string
		size uint64
	}{{"w", uint64(Week)}, {"d", uint64(Day)}, {"h", uint64(time.Hour)}, {"m", uint64(time.Minute)}} {
		if q := v / u.size; q > 0 {
			b = strconv.AppendUint(b, q, 10)
			b = append(b, u.name...)
			v -= q * u.size
		}
	}
	if v == 0 {
		return string(b)
	}
	sec := uint64(time.Second)
	b = strconv.AppendUint(b, v/sec, 10)
	if ns := v % sec; ns != 0 {
		f := []byte(strconv.FormatUint(ns+sec, 10))[1:] // nine digits, leading zeros kept
		for f[len(f)-1] == '0' {
			f = f[:len(f)-1]
		}
		b = append(b, '.')
		b = append(b, f...)
	}
	return string(append(b, 's'))
}

// Duration is a time.Duration whose text form, in YAML, JSON and
// configuration files, is the one ParseDuration reads and FormatDuration
// prints: "30m", "7d", "2w".
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler with ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler with FormatDuration.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(FormatDuration(time.Duration(d))), nil
}

// String returns d as FormatDuration prints it.
func (d Duration) String() string { return FormatDuration(time.Duration(d)) }
