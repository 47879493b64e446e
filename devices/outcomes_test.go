package devices_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// The outcome measures grouped by month (UTC), device model and rule, on
// both dialects: survey answers, fixes, first-visit fixes (a repeat within
// 30 days spoils one, a false alarm does not) and alert to fix.
func TestOutcomesGrouped(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		ctx := t.Context()
		if got, err := s.Outcomes(ctx, devices.ByMonth); err != nil || len(got) != 0 {
			t.Errorf("empty database: %+v, %v; want no groups", got, err)
		}
		if _, err := s.Outcomes(ctx, "week"); proactive.ErrorCode(err) != proactive.EInvalid {
			t.Errorf("group by week: %v, want invalid", err)
		}
		mustCustomer(t, s, "c1", "+33611111111")
		mustTechnician(t, s, "t1")
		mustDevice(t, s, "d1", "c1") // fridge-a200
		if _, err := s.CreateDevice(ctx, proactive.Device{ID: "d2", Model: "heatpump-x", CustomerID: "c1", TimeZone: "Europe/Paris",
			Site: proactive.Address{PostalCode: "75011", Country: "FR"}}); err != nil {
			t.Fatal(err)
		}
		db, err := devices.RawDB(dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		day := func(month time.Month, d int) time.Time { return time.Date(2026, month, d, 10, 0, 0, 0, time.UTC) }
		paris := time.FixedZone("CEST", 2*3600)
		ticket := func(dev, component, rule, status string, opened time.Time, closed any, outcome any) int64 {
			t.Helper()
			var id int64
			if err := db.QueryRowContext(ctx, `INSERT INTO tickets (device_id, component, rule, status, severity, summary, opened_at, updated_at, closed_at, outcome, outcome_notes)
				VALUES ($1, $2, $3, $4, 'warning', 's', $5, $5, $6, $7, '') RETURNING id`, dev, component, rule, status, opened, closed, outcome).Scan(&id); err != nil {
				t.Fatal(err)
			}
			return id
		}
		slot := 0
		visit := func(ticket int64, done time.Time) {
			t.Helper()
			slot++
			start := day(1, 1).Add(time.Duration(slot) * time.Hour)
			exec(`INSERT INTO appointments (ticket_id, technician_id, starts_at, ends_at, status, booked_at, booked_by, done_at)
				VALUES ($1, 't1', $2, $3, 'done', $2, 'x', $4)`, ticket, start, start.Add(time.Hour), done)
		}
		csat := func(ticket int64, dev string, score int, at time.Time) {
			t.Helper()
			exec(`INSERT INTO outreach (ticket_id, customer_id, device_id, stage, offer_no, alert_at, updated_at, csat, csat_at)
				VALUES ($1, 'c1', $2, 'done', 1, $3, $3, $4, $3)`, ticket, dev, at, score)
		}
		answer := func(ticket int64, survey string, score any, at time.Time) {
			t.Helper()
			var answered any
			if score != nil {
				answered = at
			}
			exec(`INSERT INTO survey_answers (ticket_id, survey, customer_id, asked_at, score, answered_at) VALUES ($1, $2, 'c1', $3, $4, $5)`,
				ticket, survey, at, score, answered)
		}
		// T1: one visit, fixed; its answers given 1 April 00:30 in Paris,
		// still March in UTC. A false alarm on the same compressor five
		// days later is no repeat; a no-fault ticket 36 days later is out
		// of the window (and no fix itself).
		march31 := time.Date(2026, 4, 1, 0, 30, 0, 0, paris)
		t1 := ticket("d1", "compressor", "r_comp", "closed", day(3, 1), day(3, 5), "fault_confirmed")
		visit(t1, day(3, 3))
		csat(t1, "d1", 5, march31)
		answer(t1, "nps", 10, march31)
		answer(t1, "ces", 5, march31)
		ticket("d1", "compressor", "r_comp", "closed", day(3, 10), day(3, 10), "false_alarm")
		t5 := ticket("d1", "compressor", "r_comp", "closed", day(4, 10), day(4, 12), "no_fault_found")
		visit(t5, day(4, 11))
		// T2: two visits, fixed in April 22 days after its alert.
		t2 := ticket("d1", "fan", "r_fan", "closed", day(3, 10), day(4, 2), "part_replaced")
		visit(t2, day(3, 20))
		visit(t2, day(4, 1))
		csat(t2, "d1", 3, day(4, 2))
		answer(t2, "nps", 6, day(4, 2))
		answer(t2, "ces", nil, day(4, 2)) // asked, never answered
		// T3: one visit, fixed in a day, but the fault is back 17 days
		// after closing (T4).
		t3 := ticket("d2", "compressor", "r_comp", "closed", day(4, 1), day(4, 3), "fault_confirmed")
		visit(t3, day(4, 2))
		csat(t3, "d2", 4, day(4, 3))
		answer(t3, "nps", 8, day(4, 3))
		answer(t3, "ces", 2, day(4, 3))
		ticket("d2", "compressor", "r_comp", "open", day(4, 20), nil, nil)

		const d = 24 * time.Hour
		for _, tc := range []struct {
			by   devices.GroupBy
			want []devices.Outcomes
		}{
			{devices.ByNone, []devices.Outcomes{{Key: "", CSAT: 4, CSATAnswers: 3, NPS: 0, NPSAnswers: 3, Promoters: 1, Passives: 1, Detractors: 1,
				CES: 3.5, CESAnswers: 2, Fixes: 3, FirstVisitFixes: 1, FirstVisitFixRate: 1.0 / 3, AlertToFix: 25 * d / 3}}},
			{devices.ByMonth, []devices.Outcomes{
				{Key: "2026-03", CSAT: 5, CSATAnswers: 1, NPS: 100, NPSAnswers: 1, Promoters: 1, CES: 5, CESAnswers: 1,
					Fixes: 1, FirstVisitFixes: 1, FirstVisitFixRate: 1, AlertToFix: 2 * d},
				{Key: "2026-04", CSAT: 3.5, CSATAnswers: 2, NPS: -50, NPSAnswers: 2, Passives: 1, Detractors: 1, CES: 2, CESAnswers: 1,
					Fixes: 2, AlertToFix: 23 * d / 2},
			}},
			{devices.ByModel, []devices.Outcomes{
				{Key: "fridge-a200", CSAT: 4, CSATAnswers: 2, NPS: 0, NPSAnswers: 2, Promoters: 1, Detractors: 1, CES: 5, CESAnswers: 1,
					Fixes: 2, FirstVisitFixes: 1, FirstVisitFixRate: 0.5, AlertToFix: 12 * d},
				{Key: "heatpump-x", CSAT: 4, CSATAnswers: 1, NPS: 0, NPSAnswers: 1, Passives: 1, CES: 2, CESAnswers: 1,
					Fixes: 1, AlertToFix: d},
			}},
			{devices.ByRule, []devices.Outcomes{
				{Key: "r_comp", CSAT: 4.5, CSATAnswers: 2, NPS: 50, NPSAnswers: 2, Promoters: 1, Passives: 1, CES: 3.5, CESAnswers: 2,
					Fixes: 2, FirstVisitFixes: 1, FirstVisitFixRate: 0.5, AlertToFix: 3 * d / 2},
				{Key: "r_fan", CSAT: 3, CSATAnswers: 1, NPS: -100, NPSAnswers: 1, Detractors: 1,
					Fixes: 1, AlertToFix: 22 * d},
			}},
		} {
			got, err := s.Outcomes(ctx, tc.by)
			if err != nil {
				t.Fatalf("by %q: %v", tc.by, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("by %q:\n got %+v\nwant %+v", tc.by, got, tc.want)
			}
		}
		m, err := s.Measures(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.FirstVisitFixRate != 1.0/3 {
			t.Errorf("first-visit fix rate %v, want 1/3", m.FirstVisitFixRate)
		}
	})
}
