package proactive

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Technician is a field engineer who visits devices.
type Technician struct {
	// ID matches [A-Za-z0-9_.-]{1,64}.
	ID    string `json:"id"`
	Name  string `json:"name"`
	Phone string `json:"phone"` // E.164, like a customer's
	// TimeZone is the IANA zone Hours are in.
	TimeZone string `json:"time_zone"`
	// Skills are the components the technician can repair, with the pattern
	// of rule components ([a-z][a-z0-9_]{0,63}); stored sorted and unique.
	Skills []string `json:"skills"`
	// ServiceArea is where the technician goes: postal code prefixes,
	// matched against the device site's postal code with spaces removed and
	// case ignored ("75" covers Paris, "SW1" covers SW1A 1AA). "*" covers
	// everywhere. Stored upper case, sorted and unique.
	ServiceArea []string `json:"service_area"`
	// Hours are the working hours per weekday, local to TimeZone.
	Hours WeeklyHours `json:"hours"`
	// TimeOff are periods the technician is away, in any order on write,
	// sorted by start on read.
	TimeOff   []TimeOff `json:"time_off,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Serves reports whether the technician's service area covers postalCode.
func (t Technician) Serves(postalCode string) bool {
	pc := NormalizePostalCode(postalCode)
	for _, p := range t.ServiceArea {
		if p == "*" || (pc != "" && strings.HasPrefix(pc, p)) {
			return true
		}
	}
	return false
}

// Away reports whether the technician is on time off at instant at.
func (t Technician) Away(at time.Time) bool {
	for _, o := range t.TimeOff {
		if !at.Before(o.Start) && at.Before(o.End) {
			return true
		}
	}
	return false
}

// NormalizePostalCode upper-cases a postal code and removes its spaces, the
// form in which service areas match it.
func NormalizePostalCode(s string) string {
	return strings.ToUpper(strings.Join(strings.Fields(s), ""))
}

// Shift is one working span of a day, [Start, End), not past midnight.
type Shift struct {
	Start Clock `json:"start"`
	End   Clock `json:"end"`
}

// WeeklyHours are the shifts of each weekday, indexed by time.Weekday
// (Sunday first). Its JSON form is an object keyed by "sun" … "sat".
type WeeklyHours [7][]Shift

var weekdayKeys = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// WeekdayKey returns the key of weekday d in WeeklyHours' JSON form: sun,
// mon, …, sat.
func WeekdayKey(d time.Weekday) string { return weekdayKeys[d] }

// ParseWeekdayKey returns the weekday of a WeekdayKey, in any case.
func ParseWeekdayKey(s string) (time.Weekday, bool) {
	d := slices.Index(weekdayKeys[:], strings.ToLower(s))
	return time.Weekday(d), d >= 0
}

// MarshalJSON writes {"mon": [{"start": "08:00", "end": "17:00"}], ...},
// leaving out days without shifts.
func (w WeeklyHours) MarshalJSON() ([]byte, error) {
	m := map[string][]Shift{}
	for d, shifts := range w {
		if len(shifts) > 0 {
			m[weekdayKeys[d]] = shifts
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (w *WeeklyHours) UnmarshalJSON(b []byte) error {
	var m map[string][]Shift
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var out WeeklyHours
	for k, shifts := range m {
		d, ok := ParseWeekdayKey(k)
		if !ok {
			return fmt.Errorf("working hours: %q is not a weekday (sun, mon, ..., sat)", k)
		}
		out[d] = shifts
	}
	*w = out
	return nil
}

// Works reports whether the local time of day t on weekday d falls in a
// shift.
func (w WeeklyHours) Works(d time.Weekday, t Clock) bool {
	for _, s := range w[d] {
		if t >= s.Start && t < s.End {
			return true
		}
	}
	return false
}

// TimeOff is a period [Start, End) the technician is away.
type TimeOff struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Reason string    `json:"reason,omitempty"`
}
