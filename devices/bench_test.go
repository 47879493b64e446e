package devices_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/proactivehq/proactive/devices"
)

// BenchmarkOpenTicket measures ticket opens per second on each dialect:
// "new" opens a ticket for a new device+component every time (a write
// transaction with the alert event), "repeat" re-opens tickets already open
// (the idempotent path: one indexed read), and "mixed" runs both from
// GOMAXPROCS goroutines, one open in four new.
func BenchmarkOpenTicket(b *testing.B) {
	for _, d := range dialects {
		b.Run(d.Name, func(b *testing.B) {
			s := mustOpen(b, d.DSN(b))
			const devs = 50
			for i := range devs {
				mustDevice(b, s, fmt.Sprintf("dev-%d", i), "")
			}
			var seq atomic.Int64
			newAlert := func() (string, string) {
				n := seq.Add(1)
				return fmt.Sprintf("dev-%d", n%devs), fmt.Sprintf("c%d", n)
			}
			open := func(b *testing.B, dev, comp string, wantCreated bool) {
				_, created, err := s.OpenTicket(b.Context(), alert(dev, comp))
				if err != nil || created != wantCreated {
					b.Fatalf("OpenTicket(%s, %s): created %v, %v", dev, comp, created, err)
				}
			}
			report := func(b *testing.B) {
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "opens/s")
			}
			b.Run("new", func(b *testing.B) {
				for b.Loop() {
					dev, comp := newAlert()
					open(b, dev, comp, true)
				}
				report(b)
			})
			// 200 open tickets to re-open.
			var existing [][2]string
			for range 200 {
				dev, comp := newAlert()
				open(b, dev, comp, true)
				existing = append(existing, [2]string{dev, comp})
			}
			b.Run("repeat", func(b *testing.B) {
				i := 0
				for b.Loop() {
					e := existing[i%len(existing)]
					open(b, e[0], e[1], false)
					i++
				}
				report(b)
			})
			b.Run("mixed", func(b *testing.B) {
				var n atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						if i%4 == 0 {
							dev, comp := newAlert()
							open(b, dev, comp, true)
						} else {
							e := existing[i%int64(len(existing))]
							open(b, e[0], e[1], false)
						}
					}
				})
				report(b)
			})
		})
	}
}

// BenchmarkCheckDeviceSecret measures a device's MQTT authentication at the
// default bcrypt cost: "bcrypt" with the cache defeated (the first connect
// of each device), "cached" for a reconnect within SecretCacheTTL.
func BenchmarkCheckDeviceSecret(b *testing.B) {
	s, err := devices.OpenOptions(b.Context(), sqliteDSN(b), devices.Options{SecretCacheTTL: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	cached := mustOpen(b, sqliteDSN(b), func(o *devices.Options) { o.BcryptCost = bcrypt.DefaultCost })
	for name, s := range map[string]*devices.Store{"bcrypt": s, "cached": cached} {
		b.Run(name, func(b *testing.B) {
			mustDevice(b, s, "d1", "")
			secret, err := s.SetDeviceSecret(b.Context(), "d1")
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if ok, err := s.CheckDeviceSecret(b.Context(), "d1", secret); !ok || err != nil {
					b.Fatalf("check: %v, %v", ok, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
		})
	}
}
