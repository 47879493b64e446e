package ingest_test

import (
	"strings"
	"testing"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/ingest"
)

func TestWriteMosquittoACL(t *testing.T) {
	var b strings.Builder
	if err := ingest.WriteMosquittoACL(&b, "fleet", "ingest", []proactive.DeviceID{"fridge-1"}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"user ingest\n", "topic read fleet/+/telemetry\n", "topic read $SYS/#\n",
		"topic read fleet/+/events\n",
		"\nuser fridge-1\ntopic write fleet/fridge-1/telemetry\ntopic write fleet/fridge-1/status\ntopic write fleet/fridge-1/events\n"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("no %q in\n%s", line, b.String())
		}
	}
	for _, c := range []struct {
		prefix, user string
		ids          []proactive.DeviceID
		want         string
	}{
		{"fleet", "a b", nil, "want a name without spaces"},
		{"fleet/#", "ingest", nil, "without wildcards"},
		{"fleet", "ingest", []proactive.DeviceID{"x\ntopic write #"}, "not valid in an ACL"},
		{"fleet", "ingest", []proactive.DeviceID{"ingest"}, "the platform's MQTT user name"},
	} {
		if err := ingest.WriteMosquittoACL(&strings.Builder{}, c.prefix, c.user, c.ids); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %q %q: %v, want %q", c.prefix, c.user, c.ids, err, c.want)
		}
	}
}
