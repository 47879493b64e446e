package devices_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/proactivehq/proactive"
	"github.com/proactivehq/proactive/devices"
)

// The measures are aggregates in the database, exact to the microsecond
// the store keeps on both dialects (SQLite keeps times as text).
func TestMeasures(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		clk := newClock()
		s := mustOpen(t, dsn, withClock(clk))
		ctx := t.Context()
		m, err := s.Measures(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := (devices.Measures{RulePrecision: map[string]float64{}}); !reflect.DeepEqual(m, want) {
			t.Errorf("empty database: %+v, want zeros", m)
		}

		mustCustomer(t, s, "c1", "+33611111111")
		mustTechnician(t, s, "t1")
		var tickets []proactive.Ticket
		for _, d := range []string{"d1", "d2", "d3"} {
			mustDevice(t, s, d, "c1")
			tickets = append(tickets, mustOpenTicket(t, s, alert(d, "compressor")))
		}
		opened := clk.Now()
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
		// Latencies of 1.000001s, 2.5s and 0.999999s; two offers, the first
		// booked, the second declined; two survey answers.
		lat := []time.Duration{time.Second + time.Microsecond, 2500 * time.Millisecond, time.Second - time.Microsecond}
		stages := []string{"scheduled", "done", "survey"}
		for i, tk := range tickets {
			var offered, csat any
			if i < 2 {
				offered = opened
			}
			if i != 1 {
				csat = 4 + i/2
			}
			exec(`INSERT INTO outreach (ticket_id, customer_id, device_id, stage, offer_no, alert_at, offered_at, first_sms_at, updated_at, csat)
				VALUES ($1, 'c1', $2, $3, 1, $4, $5, $6, $4, $7)`, tk.ID, string(tk.Device), stages[i], opened, offered, opened.Add(lat[i]), csat)
		}
		// The first ticket's visit took two trips: the first 90 minutes and
		// 7µs after its opening; it closes with a confirmed fault.
		visit := opened.Add(90*time.Minute + 7*time.Microsecond)
		for i, at := range []time.Time{visit, visit.Add(24 * time.Hour)} {
			exec(`INSERT INTO appointments (ticket_id, technician_id, starts_at, ends_at, status, booked_at, booked_by, done_at)
				VALUES ($1, 't1', $2, $3, 'done', $4, 'test', $5)`, tickets[0].ID, at.Add(-time.Hour), at, opened, at.Add(time.Duration(i)))
		}
		mustTransition(t, s, tickets[0].ID, proactive.TicketOffered, proactive.TicketScheduled, proactive.TicketVisited)
		clk.Add(48*time.Hour + 3*time.Microsecond)
		if _, err := s.CloseTicket(ctx, tickets[0].ID, proactive.OutcomeFaultConfirmed, "", "tech"); err != nil {
			t.Fatal(err)
		}
		// The third, visited once, closes with no fault found.
		exec(`INSERT INTO appointments (ticket_id, technician_id, starts_at, ends_at, status, booked_at, booked_by, done_at)
			VALUES ($1, 't1', $2, $3, 'done', $4, 'test', $3)`, tickets[2].ID, opened.Add(time.Hour), opened.Add(2*time.Hour), opened)
		mustTransition(t, s, tickets[2].ID, proactive.TicketScheduled, proactive.TicketVisited)
		clk.Add(time.Hour)
		if _, err := s.CloseTicket(ctx, tickets[2].ID, proactive.OutcomeNoFaultFound, "", "tech"); err != nil {
			t.Fatal(err)
		}

		m, err = s.Measures(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := devices.Measures{
			AlertToFirstSMS:    1500 * time.Millisecond,
			AlertToFirstSMSP50: time.Second + time.Microsecond,
			AlertToFirstSMSP99: time.Second + time.Microsecond,
			Offers:             2,
			OfferAcceptance:    0.5,
			TimeToVisit:        (90*time.Minute + 7*time.Microsecond + 2*time.Hour) / 2,
			ResolutionTime:     (48*time.Hour + 3*time.Microsecond + 49*time.Hour + 3*time.Microsecond) / 2,
			FirstVisitFixRate:  0, // the first needed two visits, the third found nothing
			CSAT:               4.5,
			CSATAnswers:        2,
			RulePrecision:      map[string]float64{"compressor_wear": 0.5},
		}
		if !reflect.DeepEqual(m, want) {
			t.Errorf("measures:\n got %+v\nwant %+v", m, want)
		}
		if got, err := s.SurveyAnswer(ctx, tickets[2].ID); err != nil || got != 5 {
			t.Errorf("SurveyAnswer = %d, %v; want 5", got, err)
		}
	})
}
