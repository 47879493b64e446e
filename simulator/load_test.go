package simulator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive/simulator"
)

// The load fleet sends one reading per device per interval, spread evenly
// over the interval, from the start on and without end.
func TestLoadTest(t *testing.T) {
	sc, err := simulator.LoadTest(2000, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	g := simulator.NewGenerator(sc, start)
	if n := len(g.Devices()); n != 2000 || g.Devices()[0].ID != "load-000001" || !g.End().IsZero() || len(g.Truth()) != 0 {
		t.Fatalf("%d devices from %s, end %s, %d faults", n, g.Devices()[0].ID, g.End(), len(g.Truth()))
	}
	perDevice := map[string]int{}
	perSecond := make([]int, 60)
	for {
		m, ok := g.Next()
		if !ok {
			t.Fatal("the load fleet ended")
		}
		if !m.At.Before(start.Add(time.Minute)) {
			break
		}
		if m.Status || len(m.Readings) != 1 || len(m.Readings[0].Metrics) != 3 {
			t.Fatalf("message %+v: want one reading of three metrics", m)
		}
		perDevice[m.Device]++
		perSecond[int(m.At.Sub(start)/time.Second)]++
	}
	for dev, n := range perDevice {
		if n != 6 {
			t.Fatalf("%s sent %d readings in a minute, want 6", dev, n)
		}
	}
	// 200 a second on average; evenly spread means no second far from it.
	for s, n := range perSecond {
		if n < 140 || n > 260 {
			t.Errorf("second %d: %d messages, want about 200", s, n)
		}
	}
	for _, tc := range []struct {
		devices  int
		interval time.Duration
		want     string
	}{
		{0, time.Second, "0 devices"},
		{1_000_000, time.Second, "want 1 to 999999"},
		{10, time.Millisecond, "want at least 1s"},
	} {
		if _, err := simulator.LoadTest(tc.devices, tc.interval); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadTest(%d, %s): %v, want %q", tc.devices, tc.interval, err, tc.want)
		}
	}
}
