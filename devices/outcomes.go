package devices

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/proactivehq/proactive"
)

// RepeatWindow is how long after a fixed ticket closes another ticket of
// the same device and component (one not dismissed as a false alarm) makes
// the fix a repeat, not a first-visit fix.
const RepeatWindow = 30 * 24 * time.Hour

// Outcomes are the customer-facing measures of a group of tickets: the
// survey answers (satisfaction, loyalty, effort) and the faults fixed.
// Means and rates are 0 without data.
type Outcomes struct {
	// Key names the group: a month ("2026-03", UTC), a device model or a
	// rule; empty for all tickets.
	Key string
	// CSAT is the mean satisfaction answer (1–5), of CSATAnswers.
	CSAT        float64
	CSATAnswers int
	// NPS is the Net Promoter Score (−100 to 100) of NPSAnswers answers:
	// Promoters (9–10), Passives (7–8) and Detractors (0–6).
	NPS                             float64
	NPSAnswers                      int
	Promoters, Passives, Detractors int
	// CES is the mean effort answer (1–5, 5 the easiest), of CESAnswers.
	CES        float64
	CESAnswers int
	// Fixes counts the tickets closed with a fix (outcome fault_confirmed
	// or part_replaced, after a visit); FirstVisitFixes those fixed by
	// their one visit with no repeat ticket within RepeatWindow after
	// closing; FirstVisitFixRate is their share.
	Fixes             int
	FirstVisitFixes   int
	FirstVisitFixRate float64
	// AlertToFix is the mean time from a fixed ticket's opening (its
	// alert) to the visit that fixed it.
	AlertToFix time.Duration
}

// GroupBy is how Outcomes groups tickets.
type GroupBy string

// The groupings: none (all tickets in one group), by month (of the answer,
// or of the fixed ticket's closing, in UTC), by device model, by rule.
const (
	ByNone  GroupBy = ""
	ByMonth GroupBy = "month"
	ByModel GroupBy = "model"
	ByRule  GroupBy = "rule"
)

// Valid reports whether g is a grouping.
func (g GroupBy) Valid() bool { return g == ByNone || g == ByMonth || g == ByModel || g == ByRule }

// groupKey is the SQL expression of a row's group, at time column at for
// ByMonth; the rows have the ticket as t and its device as d.
func (s *Store) groupKey(g GroupBy, at string) string {
	switch g {
	case ByMonth:
		if s.dialect == Postgres {
			return `to_char(` + at + ` AT TIME ZONE 'UTC', 'YYYY-MM')`
		}
		return `strftime('%Y-%m', ` + s.micros(at) + ` / 1000000, 'unixepoch')`
	case ByModel:
		return `COALESCE(d.model, '')`
	case ByRule:
		return `t.rule`
	}
	return `''`
}

// Outcomes computes the outcome measures grouped by g, aggregates in the
// database, the groups in the order of their keys. EInvalid for an unknown
// grouping.
func (c *conn) Outcomes(ctx context.Context, g GroupBy) ([]Outcomes, error) {
	if !g.Valid() {
		return nil, proactive.Errorf(proactive.EInvalid, "group by %q: want month, model or rule", g)
	}
	groups := map[string]*Outcomes{}
	group := func(k sql.NullString) *Outcomes {
		o := groups[k.String]
		if o == nil {
			o = &Outcomes{Key: k.String}
			groups[k.String] = o
		}
		return o
	}
	scan := func(what, q string, row func(scan func(...any) error) error) error {
		rows, err := c.read.QueryContext(ctx, q)
		if err != nil {
			return fmt.Errorf("outcomes: %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := row(rows.Scan); err != nil {
				return fmt.Errorf("outcomes: %s: %w", what, err)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("outcomes: %s: %w", what, err)
		}
		return nil
	}
	s := c.s
	err := scan("csat", `SELECT `+s.groupKey(g, "COALESCE(o.csat_at, o.updated_at)")+`, COUNT(*), `+sumSQL("o.csat")+`
		FROM outreach o JOIN tickets t ON t.id = o.ticket_id LEFT JOIN devices d ON d.id = t.device_id
		WHERE o.csat IS NOT NULL GROUP BY 1`, func(scan func(...any) error) error {
		var k sql.NullString
		var n, sum int64
		if err := scan(&k, &n, &sum); err != nil {
			return err
		}
		o := group(k)
		o.CSATAnswers, o.CSAT = int(n), float64(sum)/float64(n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = scan("surveys", `SELECT `+s.groupKey(g, "a.answered_at")+`, a.survey, COUNT(*), `+sumSQL("a.score")+`,
		`+sumSQL("CASE WHEN a.score >= 9 THEN 1 ELSE 0 END")+`, `+sumSQL("CASE WHEN a.score <= 6 THEN 1 ELSE 0 END")+`
		FROM survey_answers a JOIN tickets t ON t.id = a.ticket_id LEFT JOIN devices d ON d.id = t.device_id
		WHERE a.score IS NOT NULL GROUP BY 1, 2`, func(scan func(...any) error) error {
		var k sql.NullString
		var survey string
		var n, sum, promoters, detractors int64
		if err := scan(&k, &survey, &n, &sum, &promoters, &detractors); err != nil {
			return err
		}
		o := group(k)
		switch proactive.Survey(survey) {
		case proactive.SurveyNPS:
			o.NPSAnswers, o.Promoters, o.Detractors = int(n), int(promoters), int(detractors)
			o.Passives = o.NPSAnswers - o.Promoters - o.Detractors
			o.NPS = proactive.NPS(o.Promoters, o.Passives, o.Detractors)
		case proactive.SurveyCES:
			o.CESAnswers, o.CES = int(n), float64(sum)/float64(n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = scan("fixes", `SELECT `+s.groupKey(g, "t.closed_at")+`, COUNT(*), `+sumSQL(s.firstVisitFix("t", "v.n"))+`,
		`+sumSQL(`v.last - `+s.micros("t.opened_at"))+`
		FROM tickets t LEFT JOIN devices d ON d.id = t.device_id
		JOIN (SELECT ticket_id, COUNT(*) AS n, MAX(`+s.micros("done_at")+`) AS last FROM appointments
			WHERE status = 'done' GROUP BY ticket_id) v ON v.ticket_id = t.id
		WHERE `+fixedTicket("t")+` GROUP BY 1`, func(scan func(...any) error) error {
		var k sql.NullString
		var n, first, toFix int64
		if err := scan(&k, &n, &first, &toFix); err != nil {
			return err
		}
		o := group(k)
		o.Fixes, o.FirstVisitFixes = int(n), int(first)
		o.FirstVisitFixRate = float64(first) / float64(n)
		o.AlertToFix = fromMicros(toFix) / time.Duration(n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Outcomes, 0, len(groups))
	for _, o := range groups {
		out = append(out, *o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// fixedTicket is the SQL condition that ticket t was closed with a fix.
func fixedTicket(t string) string {
	return t + `.status = 'closed' AND ` + t + `.closed_at IS NOT NULL AND ` + t + `.outcome IN ('fault_confirmed', 'part_replaced')`
}

// firstVisitFix is the SQL condition that fixed ticket t, with visits done
// visits, was fixed at its first: one visit, and no other ticket of its
// device and component (but a false alarm) opened after it and within
// RepeatWindow of its closing.
func (s *Store) firstVisitFix(t, visits string) string {
	return `CASE WHEN ` + visits + ` = 1 AND NOT EXISTS (SELECT 1 FROM tickets r
		WHERE r.device_id = ` + t + `.device_id AND r.component = ` + t + `.component AND r.id <> ` + t + `.id
		AND COALESCE(r.outcome, '') <> 'false_alarm'
		AND ` + s.micros("r.opened_at") + ` > ` + s.micros(t+".opened_at") + `
		AND ` + s.micros("r.opened_at") + ` <= ` + s.micros(t+".closed_at") + ` + ` + fmt.Sprint(RepeatWindow.Microseconds()) + `)
		THEN 1 ELSE 0 END`
}
