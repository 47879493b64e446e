package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/proactivehq/proactive"
)

// Measures are the outcomes of the outreach loop over all tickets so far.
// Durations are means; rates are in [0, 1]; a measure without data is 0.
type Measures struct {
	// AlertToFirstSMS is from an alert firing to its offer being taken by
	// the provider; P50 and P99 too.
	AlertToFirstSMS    time.Duration `json:"alert_to_first_sms"`
	AlertToFirstSMSP50 time.Duration `json:"alert_to_first_sms_p50"`
	AlertToFirstSMSP99 time.Duration `json:"alert_to_first_sms_p99"`
	// Offers counts conversations that got an offer; OfferAcceptance is the
	// share of the decided ones (booked, declined or expired) that booked.
	Offers          int     `json:"offers"`
	OfferAcceptance float64 `json:"offer_acceptance"`
	// TimeToVisit is from a ticket's opening to its visit being done.
	TimeToVisit time.Duration `json:"time_to_visit"`
	// ResolutionTime is from a ticket's opening to its closing with an
	// outcome.
	ResolutionTime time.Duration `json:"resolution_time"`
	// FirstVisitFixRate is the share of the tickets closed with a fix
	// (fault_confirmed or part_replaced, after a visit) that one visit
	// fixed for good: no second visit, and no other ticket of the device
	// and component within RepeatWindow after closing (see Outcomes).
	FirstVisitFixRate float64 `json:"first_visit_fix_rate"`
	// CSAT is the mean satisfaction answer (1–5), of CSATAnswers answers.
	CSAT        float64 `json:"csat"`
	CSATAnswers int     `json:"csat_answers"`
	// RulePrecision is, per rule, the share of its closed tickets whose
	// outcome confirmed a fault (fault_confirmed or part_replaced).
	RulePrecision map[string]float64 `json:"rule_precision"`
}

// micros is the SQL expression of column's time as microseconds since the
// Unix epoch, exactly, in both dialects: differences and sums of these are
// durations that aggregates keep (SQLite stores times as text, and its
// date functions round to the millisecond).
func (s *Store) micros(column string) string {
	if s.dialect == Postgres {
		return `CAST(EXTRACT(EPOCH FROM ` + column + `) * 1000000 AS BIGINT)`
	}
	// The text is "2006-01-02 15:04:05.999999999-07:00": whole seconds with
	// the offset, plus the fraction between them.
	return strings.NewReplacer("X", column).Replace(
		`(unixepoch(substr(X, 1, 19) || substr(X, -6)) * 1000000
		+ CAST(ROUND(CAST('0' || substr(X, 20, length(X) - 25) AS REAL) * 1000000) AS INTEGER))`)
}

// sumSQL is SUM(expr) as a BIGINT, 0 over no rows.
func sumSQL(expr string) string { return `CAST(COALESCE(SUM(` + expr + `), 0) AS BIGINT)` }

// fromMicros converts microseconds to a Duration.
func fromMicros(n int64) time.Duration { return time.Duration(n) * time.Microsecond }

// Measures computes the outreach measures with aggregates in the database,
// a handful of rows whatever the number of tickets.
func (c *conn) Measures(ctx context.Context) (Measures, error) {
	m := Measures{RulePrecision: map[string]float64{}}
	if err := c.latencies(ctx, &m); err != nil {
		return m, fmt.Errorf("measures: %w", err)
	}
	// Offer acceptance: a conversation with a visit booked accepted; one
	// done without any declined or expired.
	var booked, refused int
	if err := c.read.QueryRowContext(ctx, `SELECT COUNT(*),
		`+sumSQL(`CASE WHEN EXISTS (SELECT 1 FROM appointments a WHERE a.ticket_id = o.ticket_id) THEN 1 ELSE 0 END`)+`,
		`+sumSQL(`CASE WHEN o.stage = 'done' AND NOT EXISTS (SELECT 1 FROM appointments a WHERE a.ticket_id = o.ticket_id) THEN 1 ELSE 0 END`)+`
		FROM outreach o WHERE o.offered_at IS NOT NULL`).Scan(&m.Offers, &booked, &refused); err != nil {
		return m, fmt.Errorf("measures: offers: %w", err)
	}
	if booked+refused > 0 {
		m.OfferAcceptance = float64(booked) / float64(booked+refused)
	}
	// Visits, resolution and first-visit fixes, over the tickets visited
	// or closed, each with its done visits' count and the first one's time.
	opened, closed := c.s.micros("t.opened_at"), c.s.micros("t.closed_at")
	isClosed := `t.status = 'closed' AND t.closed_at IS NOT NULL`
	var visits, resolved int
	var toVisit, toResolve int64
	if err := c.read.QueryRowContext(ctx, `SELECT COUNT(v.ticket_id), `+sumSQL(`v.first - `+opened)+`,
		`+sumSQL(`CASE WHEN `+isClosed+` THEN 1 ELSE 0 END`)+`,
		`+sumSQL(`CASE WHEN `+isClosed+` THEN `+closed+` - `+opened+` ELSE 0 END`)+`
		FROM tickets t LEFT JOIN (SELECT ticket_id, MIN(`+c.s.micros("done_at")+`) AS first
			FROM appointments WHERE status = 'done' GROUP BY ticket_id) v ON v.ticket_id = t.id
		WHERE t.status IN ('visited', 'closed')`).Scan(&visits, &toVisit, &resolved, &toResolve); err != nil {
		return m, fmt.Errorf("measures: visits: %w", err)
	}
	if visits > 0 {
		m.TimeToVisit = fromMicros(toVisit) / time.Duration(visits)
	}
	if resolved > 0 {
		m.ResolutionTime = fromMicros(toResolve) / time.Duration(resolved)
	}
	var fixes, fixedFirst int
	if err := c.read.QueryRowContext(ctx, `SELECT COUNT(*), `+sumSQL(c.s.firstVisitFix("t", "v.n"))+`
		FROM tickets t JOIN (SELECT ticket_id, COUNT(*) AS n FROM appointments WHERE status = 'done' GROUP BY ticket_id) v
		ON v.ticket_id = t.id WHERE `+fixedTicket("t")).Scan(&fixes, &fixedFirst); err != nil {
		return m, fmt.Errorf("measures: first-visit fixes: %w", err)
	}
	if fixes > 0 {
		m.FirstVisitFixRate = float64(fixedFirst) / float64(fixes)
	}
	rows, err := c.read.QueryContext(ctx, `SELECT rule, COUNT(*),
		`+sumSQL(`CASE WHEN outcome IN ('fault_confirmed', 'part_replaced') THEN 1 ELSE 0 END`)+`
		FROM tickets WHERE status = 'closed' AND closed_at IS NOT NULL GROUP BY rule`)
	if err != nil {
		return m, fmt.Errorf("measures: precision: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rule string
		var n, confirmed int
		if err := rows.Scan(&rule, &n, &confirmed); err != nil {
			return m, fmt.Errorf("measures: precision: %w", err)
		}
		m.RulePrecision[rule] = float64(confirmed) / float64(n)
	}
	if err := rows.Err(); err != nil {
		return m, fmt.Errorf("measures: precision: %w", err)
	}
	var csat int64
	if err := c.read.QueryRowContext(ctx, `SELECT COUNT(*), `+sumSQL("csat")+` FROM outreach WHERE csat IS NOT NULL`).
		Scan(&m.CSATAnswers, &csat); err != nil {
		return m, fmt.Errorf("measures: csat: %w", err)
	}
	if m.CSATAnswers > 0 {
		m.CSAT = float64(csat) / float64(m.CSATAnswers)
	}
	return m, nil
}

// latencies fills the alert-to-first-SMS mean and percentiles in one pass
// over the sorted latencies: their count and sum, and the two at the ranks
// the percentiles name.
func (c *conn) latencies(ctx context.Context, m *Measures) error {
	rows, err := c.read.QueryContext(ctx, `SELECT n, total, d FROM (
		SELECT d, ROW_NUMBER() OVER (ORDER BY d) - 1 AS k, COUNT(*) OVER () AS n, CAST(SUM(d) OVER () AS BIGINT) AS total
		FROM (SELECT `+c.s.micros("first_sms_at")+` - `+c.s.micros("alert_at")+` AS d
			FROM outreach WHERE first_sms_at IS NOT NULL) l) r
		WHERE k = (n - 1) * 50 / 100 OR k = (n - 1) * 99 / 100 ORDER BY k`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var ranked []time.Duration
	for rows.Next() {
		var n, total, d int64
		if err := rows.Scan(&n, &total, &d); err != nil {
			return err
		}
		m.AlertToFirstSMS = fromMicros(total) / time.Duration(n)
		ranked = append(ranked, fromMicros(d))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	switch len(ranked) {
	case 1: // both percentiles name one rank
		m.AlertToFirstSMSP50, m.AlertToFirstSMSP99 = ranked[0], ranked[0]
	case 2:
		m.AlertToFirstSMSP50, m.AlertToFirstSMSP99 = ranked[0], ranked[1]
	}
	return nil
}

// SurveyAnswer returns the 1–5 satisfaction answer of a ticket's
// conversation, 0 without one. ENotFound when the ticket has no
// conversation.
func (c *conn) SurveyAnswer(ctx context.Context, ticket int64) (int, error) {
	var csat sql.NullInt64
	err := c.read.QueryRowContext(ctx, `SELECT csat FROM outreach WHERE ticket_id = $1`, ticket).Scan(&csat)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, proactive.Errorf(proactive.ENotFound, "ticket %d has no conversation", ticket)
	} else if err != nil {
		return 0, fmt.Errorf("read survey answer: %w", err)
	}
	return int(csat.Int64), nil
}
