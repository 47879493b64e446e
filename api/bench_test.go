package api_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/api"
	"github.com/proactivehq/proactive/devices"
	"github.com/proactivehq/proactive/internal/testenv"
)

const benchTickets = 10_000

// seedTickets inserts n tickets, each on its own device, in bulk: a quarter
// each open, offered, scheduled (half of them tech-1's) and closed.
func seedTickets(tb testing.TB, dsn string, n int) {
	tb.Helper()
	ctx := tb.Context()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const batch = 500
	tx, err := testenv.RawDB(tb, dsn).BeginTx(ctx, nil)
	if err != nil {
		tb.Fatalf("seed tickets: %v", err)
	}
	defer tx.Rollback()
	err = func() error {
		for start := 0; start < n; start += batch {
			end := min(n, start+batch)
			var dv, tk []string
			var dargs, targs []any
			for i := start; i < end; i++ {
				id := fmt.Sprintf("bench-%05d", i)
				at := now.Add(time.Duration(i) * time.Minute)
				k := len(dargs)
				dv = append(dv, fmt.Sprintf("($%d, 'fridge-a200', 'Europe/Paris', $%d, $%d)", k+1, k+2, k+3))
				dargs = append(dargs, id, at, at)
				status := []string{"open", "offered", "scheduled", "closed"}[i%4]
				var tech any
				if status == "scheduled" || status == "closed" {
					tech = []string{"tech-1", "tech-2"}[(i/4)%2]
				}
				k = len(targs)
				tk = append(tk, fmt.Sprintf("($%d, 'compressor', 'compressor_wear', $%d, 'warning', 'Compressor current above its weekly norm', $%d, $%d, $%d, '')",
					k+1, k+2, k+3, k+4, k+5))
				targs = append(targs, id, status, at, at, tech)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO devices (id, model, time_zone, created_at, updated_at) VALUES `+strings.Join(dv, ", "), dargs...); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO tickets (device_id, component, rule, status, severity, summary, opened_at, updated_at, technician_id, outcome_notes)
				VALUES `+strings.Join(tk, ", "), targs...); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		tb.Fatalf("seed tickets: %v", err)
	}
}

// BenchmarkTicketList measures GET /api/v1/tickets over real HTTP, the
// real handler and store, with 10,000 tickets on SQLite and PostgreSQL, and
// reports latency percentiles: the first page (50), a page at a random
// cursor (100), and a filtered list (status and technician).
func BenchmarkTicketList(b *testing.B) {
	for _, d := range testenv.Dialects {
		b.Run(d.Name, func(b *testing.B) {
			dsn := d.DSN(b)
			f := newFixture(b, dsn, func(o *api.Options) { o.RateLimit = 1 << 30 })
			seedTickets(b, dsn, benchTickets)
			tok := f.token[devices.RoleDispatcher]
			var newest devices.Page[proactive.Ticket]
			f.do(b, tok, "GET", "/tickets?limit=1", "").decode(b, &newest)
			maxID := newest.Items[0].ID
			rng := rand.New(rand.NewPCG(1, 2))
			for _, q := range []struct {
				name  string
				path  func() string
				items int
			}{
				{"first-page", func() string { return "/tickets" }, 50},
				{"cursor-page", func() string { return fmt.Sprintf("/tickets?limit=100&cursor=%d", 200+rng.Int64N(maxID-200)) }, 100},
				{"filtered", func() string { return "/tickets?status=scheduled,closed&technician_id=tech-1&limit=50" }, 50},
			} {
				b.Run(q.name, func(b *testing.B) {
					// A warm-up request checks the answer and fills the caches.
					r := f.do(b, tok, "GET", q.path(), "")
					if r.status != 200 || strings.Count(string(r.body), `"component"`) != q.items {
						b.Fatalf("status %d, want %d items: %.300s", r.status, q.items, r.body)
					}
					lat := make([]time.Duration, 0, b.N)
					b.ResetTimer()
					for b.Loop() {
						path := q.path()
						start := time.Now()
						r := f.do(b, tok, "GET", path, "")
						lat = append(lat, time.Since(start))
						if r.status != 200 {
							b.Fatalf("status %d: %s", r.status, r.body)
						}
					}
					b.StopTimer()
					slices.Sort(lat)
					pct := func(p float64) float64 {
						return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
					}
					b.ReportMetric(pct(0.50), "p50-ms")
					b.ReportMetric(pct(0.99), "p99-ms")
					b.ReportMetric(0, "ns/op") // the percentiles say it better
				})
			}
		})
	}
}
