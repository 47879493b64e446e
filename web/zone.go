package web

import (
	"os"
	"strings"
	"time"
)

// LocalZone is the machine's time zone under its IANA name (from TZ, or
// the /etc/localtime link), for Options.Location (the pages' times and the chart's axis):
// browsers know Europe/Berlin but not Go's "Local". It falls back to
// time.Local, whose times the chart then shows in the browser's zone.
func LocalZone() *time.Location {
	name, set := os.LookupEnv("TZ")
	if set && name == "" {
		return time.UTC // as Go reads an empty TZ
	}
	name = strings.TrimPrefix(name, ":")
	if !set {
		if target, err := os.Readlink("/etc/localtime"); err == nil {
			if _, after, ok := strings.Cut(target, "zoneinfo/"); ok {
				name = after
			}
		}
	}
	if name == "" || name == "Local" {
		return time.Local
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.Local
	}
	return loc
}
