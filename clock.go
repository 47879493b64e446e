package proactive

import (
	"fmt"
	"strings"
)

// Clock is a local time of day, in minutes after midnight (0 to 1439). Its
// text form, in JSON too, is "HH:MM".
type Clock int

// ParseClock parses "HH:MM" (24-hour; "H:MM" too).
func ParseClock(s string) (Clock, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || !isDigits(h) || !isDigits(m) {
		return 0, fmt.Errorf("time of day %q: want HH:MM", s)
	}
	hh := int(h[0] - '0')
	if len(h) == 2 {
		hh = hh*10 + int(h[1]-'0')
	}
	mm := int(m[0]-'0')*10 + int(m[1]-'0')
	if hh > 23 || mm > 59 {
		return 0, fmt.Errorf("time of day %q: out of range 00:00–23:59", s)
	}
	return Clock(hh*60 + mm), nil
}

// MustClock is ParseClock for constants; it panics on a bad value.
func MustClock(s string) Clock {
	c, err := ParseClock(s)
	if err != nil {
		panic(err)
	}
	return c
}

// Valid reports whether c is a time of day.
func (c Clock) Valid() bool { return c >= 0 && c < 24*60 }

// String returns c as "HH:MM".
func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// MarshalText implements encoding.TextMarshaler.
func (c Clock) MarshalText() ([]byte, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("time of day %d minutes: out of range", int(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Clock) UnmarshalText(b []byte) error {
	v, err := ParseClock(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// QuietHours is a daily span of local time, [Start, End), that wraps past
// midnight when End is before Start. Start == End means no quiet hours.
type QuietHours struct {
	Start Clock `json:"start"`
	End   Clock `json:"end"`
}

// DefaultQuietHours is 21:00–08:00.
var DefaultQuietHours = QuietHours{Start: 21 * 60, End: 8 * 60}

// Contains reports whether the local time of day t is quiet.
func (q QuietHours) Contains(t Clock) bool {
	if q.Start <= q.End {
		return t >= q.Start && t < q.End
	}
	return t >= q.Start || t < q.End
}

// ParseQuietHours reads quiet hours written as HH:MM-HH:MM (21:00-08:00
// wraps past midnight) or "none" for a customer who may be texted at any
// hour.
func ParseQuietHours(s string) (QuietHours, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "none") {
		return QuietHours{}, nil
	}
	bad := fmt.Errorf("%q is not quiet hours like 21:00-08:00, or none", s)
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return QuietHours{}, bad
	}
	start, err := ParseClock(strings.TrimSpace(a))
	if err != nil {
		return QuietHours{}, bad
	}
	end, err := ParseClock(strings.TrimSpace(b))
	if err != nil {
		return QuietHours{}, bad
	}
	return QuietHours{Start: start, End: end}, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
