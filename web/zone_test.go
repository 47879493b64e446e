package web_test

import (
	"testing"
	"time"

	"github.com/proactivehq/proactive/web"
)

func TestLocalZone(t *testing.T) {
	for tz, want := range map[string]string{"Europe/Berlin": "Europe/Berlin", ":America/New_York": "America/New_York", "": "UTC", "Nowhere/Else": time.Local.String()} {
		t.Setenv("TZ", tz)
		if got := web.LocalZone().String(); got != want {
			t.Errorf("TZ=%q: %s, want %s", tz, got, want)
		}
	}
}
