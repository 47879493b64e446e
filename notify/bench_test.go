package notify_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
	"github.com/proactivehq/proactive/notify"
	"github.com/proactivehq/proactive/notify/internal/faketwilio"
	"github.com/proactivehq/proactive/notify/twilio"
)

// BenchmarkAlertToSMS measures, on each dialect, the latency from an alert
// handed to Notifier.Alerts to the offer's request arriving at the fake
// Twilio server (p50 and p99 over 1,000 alerts, one after the other, with
// Run going; with the p99 of its two parts, the alert's transaction and
// the sender's path), and the outbox's throughput: 1,000 offers committed while no
// sender runs, then drained by Run. Run with -benchtime 1x.
func BenchmarkAlertToSMS(b *testing.B) {
	const alerts = 1000
	for _, d := range testenv.Dialects {
		b.Run(d.Name, func(b *testing.B) {
			for range b.N {
				ctx := b.Context()
				st, err := devices.OpenOptions(ctx, d.DSN(b), devices.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				tw := faketwilio.New(nil)
				defer tw.Close()
				benchFleet(b, st, 2*alerts)
				sender, err := twilio.New(twilio.Options{AccountSID: "AC0123456789", AuthToken: authToken,
					MessagingServiceSID: "MG0123456789", APIURL: tw.URL})
				if err != nil {
					b.Fatal(err)
				}
				n := notify.New(notify.Options{Store: st, Sender: sender, PublicURL: "https://proactive.example",
					Logger: discard(), SlotHold: time.Nanosecond, PollInterval: 50 * time.Millisecond,
					IncidentMinDevices: 2*alerts + 1}) // every offer's latency, none held for an incident

				// Latency, with the sender running.
				runCtx, stop := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- n.Run(runCtx) }()
				lat := make([]time.Duration, 0, alerts)
				// The latency in two parts: Alerts (the ticket, the offer and
				// the outbox row committed) and from there to Twilio (woken
				// sender, claim, request).
				inTx := make([]time.Duration, 0, alerts)
				toSend := make([]time.Duration, 0, alerts)
				b.ResetTimer()
				for i := range alerts {
					t0 := time.Now()
					n.Alerts(ctx, []proactive.Alert{alert(fmt.Sprintf("dev-%d", i), "compressor", proactive.SeverityWarning, t0)})
					t1 := time.Now()
					select {
					case p := <-tw.Received:
						if p.To != benchPhone(i) || p.MessagingServiceSid != "MG0123456789" || p.From != "" {
							b.Fatalf("alert %d: SMS to %s from %q/%q", i, p.To, p.From, p.MessagingServiceSid)
						}
						lat = append(lat, p.At.Sub(t0))
						inTx = append(inTx, t1.Sub(t0))
						toSend = append(toSend, max(p.At.Sub(t1), 0))
					case <-time.After(10 * time.Second):
						b.Fatalf("alert %d: no SMS in 10s", i)
					}
				}
				stop()
				<-done

				// Throughput of the outbox alone.
				for i := alerts; i < 2*alerts; i++ {
					n.Alerts(ctx, []proactive.Alert{alert(fmt.Sprintf("dev-%d", i), "compressor", proactive.SeverityWarning, time.Now())})
				}
				runCtx, stop = context.WithCancel(ctx)
				start := time.Now()
				go func() { done <- n.Run(runCtx) }()
				var last time.Time
				for i := range alerts {
					select {
					case p := <-tw.Received:
						last = p.At
					case <-time.After(30 * time.Second):
						b.Fatalf("outbox drained %d of %d messages in 30s", i, alerts)
					}
				}
				stop()
				<-done
				b.StopTimer()

				ms := func(d []time.Duration, q int) float64 {
					slices.Sort(d)
					return float64(d[len(d)*q/100].Microseconds()) / 1000
				}
				b.ReportMetric(ms(lat, 50), "p50-ms")
				b.ReportMetric(ms(lat, 99), "p99-ms")
				b.ReportMetric(ms(inTx, 99), "alert-tx-p99-ms")
				b.ReportMetric(ms(toSend, 99), "to-send-p99-ms")
				b.ReportMetric(float64(alerts)/last.Sub(start).Seconds(), "outbox-msgs/s")
			}
		})
	}
}

func benchPhone(i int) string { return fmt.Sprintf("+3361%07d", i) }

// benchFleet registers n customers, each with consent, no quiet hours and a
// device in Paris, and ten technicians who cover everywhere.
func benchFleet(b *testing.B, st *devices.Store, n int) {
	ctx := b.Context()
	for i := range n {
		id := fmt.Sprintf("cust-%d", i)
		if _, err := st.CreateCustomer(ctx, proactive.Customer{ID: id, Name: id, Phone: benchPhone(i),
			QuietHours: &proactive.QuietHours{}}); err != nil {
			b.Fatal(err)
		}
		if _, err := st.RecordConsent(ctx, id, proactive.ConsentEvent{Granted: true, Method: proactive.ConsentImport, Actor: "bench"}); err != nil {
			b.Fatal(err)
		}
		if _, err := st.CreateDevice(ctx, proactive.Device{ID: proactive.DeviceID(fmt.Sprintf("dev-%d", i)), Model: "fridge-a200",
			CustomerID: id, TimeZone: "Europe/Paris", Site: proactive.Address{PostalCode: "75011"}}); err != nil {
			b.Fatal(err)
		}
	}
	every := proactive.WeeklyHours{}
	for d := range every {
		every[d] = []proactive.Shift{{Start: 0, End: 23*60 + 59}}
	}
	for i := range 10 {
		if _, err := st.CreateTechnician(ctx, proactive.Technician{ID: fmt.Sprintf("tech-%d", i), Name: "T", Phone: "+33699999999",
			TimeZone: "Europe/Paris", Skills: []string{"compressor"}, ServiceArea: []string{"*"}, Hours: every}); err != nil {
			b.Fatal(err)
		}
	}
}
