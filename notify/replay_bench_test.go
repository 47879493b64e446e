package notify_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/notify"
)

// BenchmarkReplay replays a backtest's alerts through the notifier: the
// figure is the time one backtest's tickets and texts take, registering
// the fleet included.
func BenchmarkReplay(b *testing.B) {
	for _, c := range []struct {
		name            string
		devices, alerts int
		days            int
	}{
		{"140 alerts of 100 devices over 90 days", 100, 140, 90},
		{"2000 alerts of 10000 devices over 8 days", 10000, 2000, 8},
	} {
		b.Run(c.name, func(b *testing.B) {
			start := monday0830.UTC()
			fleet := map[proactive.DeviceID]string{}
			for i := range c.devices {
				fleet[proactive.DeviceID(fmt.Sprintf("dev-%05d", i))] = "fridge-a1"
			}
			var alerts []proactive.Alert
			span := time.Duration(c.days) * 24 * time.Hour
			for i := range c.alerts {
				at := start.Add(span * time.Duration(i) / time.Duration(c.alerts))
				alerts = append(alerts, replayAlert("wear", "", fmt.Sprintf("dev-%05d", (i*7919)%c.devices), at))
			}
			var tickets, texts int
			for b.Loop() {
				o := notify.ReplayOptions{Notify: notify.Options{GroupWait: 30 * time.Second}, Dir: b.TempDir(), Fleet: fleet,
					To: start.Add(span), True: func(a proactive.Alert) bool { return a.Device < "dev-00050" }}
				res, err := notify.Replay(b.Context(), alerts, o)
				if err != nil {
					b.Fatal(err)
				}
				tickets, texts = counts(res)
			}
			b.ReportMetric(float64(tickets), "tickets")
			b.ReportMetric(float64(texts), "texts")
		})
	}
}
