package devices_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/proactivehq/proactive/devices"
)

// rowByRow computes the measures as the notifier did before they were
// aggregates: every row read and folded in Go. It is the reference the
// aggregates must match exactly.
func rowByRow(ctx context.Context, db *sql.DB) (devices.Measures, error) {
	m := devices.Measures{RulePrecision: map[string]float64{}}
	scan := func(q string, row func(func(...any) error) error) error {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := row(rows.Scan); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	var lat []time.Duration
	if err := scan(`SELECT alert_at, first_sms_at FROM outreach WHERE first_sms_at IS NOT NULL`, func(s func(...any) error) error {
		var a, f time.Time
		if err := s(&a, &f); err != nil {
			return err
		}
		lat = append(lat, f.Sub(a))
		return nil
	}); err != nil {
		return m, err
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		m.AlertToFirstSMS = sum / time.Duration(len(lat))
		m.AlertToFirstSMSP50 = lat[(len(lat)-1)*50/100]
		m.AlertToFirstSMSP99 = lat[(len(lat)-1)*99/100]
	}
	var decided, booked int
	if err := scan(`SELECT o.stage, (SELECT COUNT(*) FROM appointments a WHERE a.ticket_id = o.ticket_id)
		FROM outreach o WHERE o.offered_at IS NOT NULL`, func(s func(...any) error) error {
		var stage string
		var appts int
		if err := s(&stage, &appts); err != nil {
			return err
		}
		m.Offers++
		switch {
		case appts > 0:
			decided++
			booked++
		case stage == "done":
			decided++
		}
		return nil
	}); err != nil {
		return m, err
	}
	if decided > 0 {
		m.OfferAcceptance = float64(booked) / float64(decided)
	}
	type visitCount struct {
		n     int
		first time.Time
	}
	done := map[int64]*visitCount{}
	if err := scan(`SELECT ticket_id, done_at FROM appointments WHERE status = 'done'`, func(s func(...any) error) error {
		var id int64
		var at time.Time
		if err := s(&id, &at); err != nil {
			return err
		}
		v := done[id]
		if v == nil {
			v = &visitCount{first: at}
			done[id] = v
		}
		v.n++
		if at.Before(v.first) {
			v.first = at
		}
		return nil
	}); err != nil {
		return m, err
	}
	var visits, resolved, fixes, fixedFirst int
	var toVisit, toResolve time.Duration
	type ruleCount struct{ closed, confirmed int }
	rules := map[string]*ruleCount{}
	if err := scan(`SELECT id, rule, opened_at, closed_at, COALESCE(outcome, ''), status
		FROM tickets WHERE status IN ('visited', 'closed')`, func(s func(...any) error) error {
		var id int64
		var rule, outcome, status string
		var opened time.Time
		var closed sql.NullTime
		if err := s(&id, &rule, &opened, &closed, &outcome, &status); err != nil {
			return err
		}
		v := done[id]
		if v != nil {
			visits++
			toVisit += v.first.Sub(opened)
		}
		if status != "closed" || !closed.Valid {
			return nil
		}
		resolved++
		toResolve += closed.Time.Sub(opened)
		// Every ticket has a component of its own here: no repeats.
		if v != nil && (outcome == "fault_confirmed" || outcome == "part_replaced") {
			fixes++
			if v.n == 1 {
				fixedFirst++
			}
		}
		rc := rules[rule]
		if rc == nil {
			rc = &ruleCount{}
			rules[rule] = rc
		}
		rc.closed++
		if outcome == "fault_confirmed" || outcome == "part_replaced" {
			rc.confirmed++
		}
		return nil
	}); err != nil {
		return m, err
	}
	if visits > 0 {
		m.TimeToVisit = toVisit / time.Duration(visits)
	}
	if resolved > 0 {
		m.ResolutionTime = toResolve / time.Duration(resolved)
	}
	if fixes > 0 {
		m.FirstVisitFixRate = float64(fixedFirst) / float64(fixes)
	}
	for r, c := range rules {
		m.RulePrecision[r] = float64(c.confirmed) / float64(c.closed)
	}
	var sum int
	if err := scan(`SELECT csat FROM outreach WHERE csat IS NOT NULL`, func(s func(...any) error) error {
		var v int
		if err := s(&v); err != nil {
			return err
		}
		sum += v
		m.CSATAnswers++
		return nil
	}); err != nil {
		return m, err
	}
	if m.CSATAnswers > 0 {
		m.CSAT = float64(sum) / float64(m.CSATAnswers)
	}
	return m, nil
}

// The aggregates give exactly what folding the rows in Go gives, on a few
// hundred random tickets, conversations and visits.
func TestMeasuresMatchRowByRow(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn)
		ctx := t.Context()
		mustCustomer(t, s, "c1", "+33611111111")
		for i := range 5 {
			mustTechnician(t, s, fmt.Sprintf("t%d", i))
		}
		for i := range 50 {
			mustDevice(t, s, fmt.Sprintf("dev-%d", i), "c1")
		}
		db, err := devices.RawDB(dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		us := func(max int64) time.Duration { return time.Duration(r.Int64N(max)) * time.Microsecond }
		statuses := []string{"open", "offered", "scheduled", "visited", "closed", "closed", "closed", "cancelled"}
		outcomes := []string{"fault_confirmed", "no_fault_found", "part_replaced"}
		stages := []string{"offer", "scheduled", "survey", "done"}
		const N = 600
		slot := 0
		for i := range N {
			st := statuses[r.IntN(len(statuses))]
			opened := base.Add(us(30 * 86400e6))
			var closed, outcome any
			if st == "closed" {
				closed = opened.Add(us(10 * 86400e6))
				outcome = outcomes[r.IntN(3)]
			}
			var id int64
			if err := tx.QueryRowContext(ctx, `INSERT INTO tickets (device_id, component, rule, status, severity, summary, opened_at, updated_at, closed_at, outcome, outcome_notes)
				VALUES ($1, $2, $3, $4, 'warning', 's', $5, $5, $6, $7, '') RETURNING id`, fmt.Sprintf("dev-%d", i%50), fmt.Sprintf("c%d", i),
				fmt.Sprintf("r%d", i%7), st, opened, closed, outcome).Scan(&id); err != nil {
				t.Fatal(err)
			}
			if r.IntN(10) < 7 {
				var first, offered, csat any
				alertAt := opened.Add(-us(3600e6))
				if r.IntN(10) < 8 {
					first = alertAt.Add(us(120e6))
				}
				if r.IntN(10) < 8 {
					offered = alertAt
				}
				if r.IntN(3) == 0 {
					csat = 1 + r.IntN(5)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO outreach (ticket_id, customer_id, device_id, stage, offer_no, alert_at, offered_at, first_sms_at, updated_at, csat)
					VALUES ($1, 'c1', $2, $3, 1, $4, $5, $6, $4, $7)`, id, fmt.Sprintf("dev-%d", i%50), stages[r.IntN(4)], alertAt, offered, first, csat); err != nil {
					t.Fatal(err)
				}
			}
			for k := range r.IntN(4) {
				status := "done"
				var doneAt any = opened.Add(us(5 * 86400e6))
				if k == 2 {
					status, doneAt = "booked", nil
				}
				slot++
				start := base.Add(time.Duration(slot) * time.Hour)
				if _, err := tx.ExecContext(ctx, `INSERT INTO appointments (ticket_id, technician_id, starts_at, ends_at, status, booked_at, booked_by, done_at)
					VALUES ($1, $2, $3, $4, $5, $3, 'x', $6)`, id, fmt.Sprintf("t%d", slot%5), start, start.Add(time.Hour), status, doneAt); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		want, err := rowByRow(ctx, s.ReadDB())
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Measures(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("aggregates:\n got %+v\nrow by row:\nwant %+v", got, want)
		}
	})
}
