package proactive

import (
	"fmt"
	"time"
)

// LoadZone returns the location of an IANA zone name such as
// Europe/Berlin (a site's or a technician's time zone), or fallback when
// the name is empty or unknown.
func LoadZone(name string, fallback *time.Location) *time.Location {
	if name == "" {
		return fallback
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return fallback
	}
	return loc
}

// ZoneLabel names the zone of t as people read it: its abbreviation (CET,
// CEST, UTC, EST), or, for the zones whose tz data has none and which Go
// prints as a bare offset ("+04", "-0330"), the offset as "UTC+04:00".
func ZoneLabel(t time.Time) string {
	name, off := t.Zone()
	if name != "" && name[0] != '+' && name[0] != '-' && (name[0] < '0' || name[0] > '9') {
		return name
	}
	if off == 0 {
		return "UTC"
	}
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	return fmt.Sprintf("UTC%c%02d:%02d", sign, off/3600, off%3600/60)
}

// FormatLocal writes t in loc with layout, labelled with the zone (see
// ZoneLabel): "Tue 10 Mar 08:00 CET". It is the one way staff see a time:
// the site's local time, with its zone, whatever the server's zone is.
func FormatLocal(t time.Time, loc *time.Location, layout string) string {
	l := t.In(loc)
	return l.Format(layout) + " " + ZoneLabel(l)
}

// FormatLocalSpan writes the span [start, end) in loc, labelled with the
// zone once: "Tue 10 Mar 08:00–10:00 CET". The end carries its own day
// when it falls on another one, and its own label when the zone's offset
// changes in between.
func FormatLocalSpan(start, end time.Time, loc *time.Location) string {
	s, e := start.In(loc), end.In(loc)
	zs, ze := ZoneLabel(s), ZoneLabel(e)
	el := "15:04"
	if s.Year() != e.Year() || s.YearDay() != e.YearDay() {
		el = "Mon 2 Jan 15:04"
	}
	if zs != ze {
		return s.Format("Mon 2 Jan 15:04") + " " + zs + "–" + e.Format(el) + " " + ze
	}
	return s.Format("Mon 2 Jan 15:04") + "–" + e.Format(el) + " " + zs
}

// FormatLocalClock writes the times of day of the span [start, end) in loc
// with the zone once, for a page that shows the day apart: "08:00–10:00 CET".
func FormatLocalClock(start, end time.Time, loc *time.Location) string {
	s, e := start.In(loc), end.In(loc)
	if zs, ze := ZoneLabel(s), ZoneLabel(e); zs != ze {
		return s.Format("15:04") + " " + zs + "–" + e.Format("15:04") + " " + ze
	}
	return s.Format("15:04") + "–" + e.Format("15:04") + " " + ZoneLabel(s)
}
