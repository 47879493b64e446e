package influx_test

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/influx"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/rules"
)

// The store is the event source of rebuilds and backtests.
var _ rules.EventStore = (*influx.Store)(nil)

// Events written through Write come back from Events in time order across
// devices (then by device and code), within [from, to), of one device when
// asked, with component, severity, text and model as written.
func TestEventsReadBack(t *testing.T) {
	srv := testenv.Influx(t)
	s := influx.New(influx.Options{URL: srv.URL(), Bucket: srv.Bucket()})
	t.Cleanup(s.Close)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var all []proactive.Event
	// Three days, so that the reads span several chunks; every 7 minutes an
	// event of d-a, every 11 one of d-b, some at the same time as d-a's.
	for i := range 3 * 24 * 60 {
		at := start.Add(time.Duration(i) * time.Minute)
		if i%7 == 0 {
			all = append(all, proactive.Event{Device: "d-a", Model: "m1", Time: at, Code: fmt.Sprintf("E10%d", i%3),
				Component: "compressor", Severity: proactive.SeverityError, Text: fmt.Sprintf("trip %d, \"hot\" é", i)})
		}
		if i%11 == 0 {
			all = append(all, proactive.Event{Device: "d-b", Model: "m, 2=x", Time: at.Add(123 * time.Millisecond), Code: "sys:boot.1-a"})
			all = append(all, proactive.Event{Device: "d-b", Model: "m, 2=x", Time: at.Add(123 * time.Millisecond), Code: "W7", Severity: proactive.SeverityWarning})
		}
		if i%77 == 0 {
			all = append(all, proactive.Event{Device: "d-c", Time: at, Code: "A1", Component: "fan"})
		}
	}
	// Written out of order, in several batches, with telemetry among them.
	for i := len(all); i > 0; i -= 500 {
		batch := all[max(i-500, 0):i]
		smp := []proactive.Sample{{Device: "d-a", Time: batch[0].Time, Metrics: map[string]float64{"current": 1}}}
		if err := s.Write(t.Context(), smp, nil, batch); err != nil {
			t.Fatal(err)
		}
	}
	// A telemetry point and a point of another measurement with an event's
	// tags must not come back.
	srv.Write(t, fmt.Sprintf("other,device_id=d-a,code=E100 n=1i %d\n", start.Add(time.Hour).UnixMilli()))

	from, to := start.Add(14*time.Minute), start.Add(60*time.Hour+5*time.Minute) // events of d-a at both
	for _, device := range []proactive.DeviceID{"", "d-b", "d-c"} {
		var want []proactive.Event
		for _, e := range all {
			if !e.Time.Before(from) && e.Time.Before(to) && (device == "" || e.Device == device) {
				want = append(want, e)
			}
		}
		slices.SortFunc(want, func(a, b proactive.Event) int {
			return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Device, b.Device), cmp.Compare(a.Code, b.Code))
		})
		var got []proactive.Event
		if err := s.Events(t.Context(), from, to, device, func(e proactive.Event) error {
			got = append(got, e)
			return nil
		}); err != nil {
			t.Fatalf("Events of %q: %v", device, err)
		}
		if len(got) != len(want) {
			t.Fatalf("Events of %q: %d events, want %d", device, len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Device != w.Device || !g.Time.Equal(w.Time) || g.Code != w.Code || g.Component != w.Component ||
				g.Severity != w.Severity || g.Text != w.Text || g.Model != w.Model {
				t.Fatalf("Events of %q: event %d is %+v, want %+v", device, i, g, w)
			}
		}
	}

	if err := s.Events(t.Context(), from, to, `x" or true or "`, func(proactive.Event) error { return nil }); err == nil {
		t.Error("a device id that is not one was accepted")
	}
	stop := errors.New("stop")
	if err := s.Events(t.Context(), from, to, "", func(proactive.Event) error { return stop }); err != stop {
		t.Errorf("Events returned %v, want fn's error", err)
	}

	// The restart rebuild reads them through StoredHistory.
	h := rules.StoredHistory(s)
	if h.Events == nil {
		t.Fatal("StoredHistory of the store has no events")
	}
	n, want := 0, 0
	for _, e := range all {
		if !e.Time.Before(from) && e.Time.Before(to) {
			want++
		}
	}
	if err := h.Events(from, to)(t.Context(), func(proactive.Event) error { n++; return nil }); err != nil || n != want {
		t.Errorf("StoredHistory events: %d, %v; want %d", n, err, want)
	}
}
