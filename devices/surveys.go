package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/proactivehq/proactive"
)

// The loyalty and effort surveys (NPS, CES) that may follow a ticket's
// satisfaction question; the CSAT answer itself stays on outreach.

// SurveyAsk records that a survey question (NPS or CES) was put to the
// conversation's customer: the question awaits its answer, and the
// conversation's clarifications start afresh for it.
type SurveyAsk struct {
	Survey   proactive.Survey
	Customer string
}

// SurveyScore is a customer's answer to the survey question their
// conversation awaits.
type SurveyScore struct {
	Survey proactive.Survey
	Score  int
}

// askSurvey writes a SurveyAsk for ticket at at.
func (tx *Tx) askSurvey(ctx context.Context, ticket int64, a SurveyAsk, at time.Time) error {
	if a.Survey != proactive.SurveyNPS && a.Survey != proactive.SurveyCES {
		return fmt.Errorf("ask survey: %q is not nps or ces", a.Survey)
	}
	if _, err := tx.tx.ExecContext(ctx, `INSERT INTO survey_answers (ticket_id, survey, customer_id, asked_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (ticket_id, survey) DO NOTHING`, ticket, string(a.Survey), a.Customer, dbTime(at)); err != nil {
		return fmt.Errorf("record %s question: %w", a.Survey, err)
	}
	return tx.ResetClarifications(ctx, ticket)
}

// ResetClarifications gives a ticket's conversation its clarifying answers
// afresh, for a new question.
func (tx *Tx) ResetClarifications(ctx context.Context, ticket int64) error {
	if _, err := tx.tx.ExecContext(ctx, `UPDATE outreach SET clarified = FALSE, clarifications = 0 WHERE ticket_id = $1`, ticket); err != nil {
		return fmt.Errorf("reset clarifications: %w", err)
	}
	return nil
}

// scoreSurvey writes a SurveyScore for ticket at at; an answer given
// already is kept.
func (tx *Tx) scoreSurvey(ctx context.Context, ticket int64, s SurveyScore, at time.Time) error {
	if !s.Survey.Valid(s.Score) {
		return proactive.Errorf(proactive.EInvalid, "%d is not an answer to the %s question", s.Score, s.Survey)
	}
	if _, err := tx.tx.ExecContext(ctx, `UPDATE survey_answers SET score = $3, answered_at = $4
		WHERE ticket_id = $1 AND survey = $2 AND score IS NULL`, ticket, string(s.Survey), s.Score, dbTime(at)); err != nil {
		return fmt.Errorf("record %s answer: %w", s.Survey, err)
	}
	return nil
}

// LastSurveyAsked returns when the customer was last asked the survey's
// question, zero when never.
func (c *conn) LastSurveyAsked(ctx context.Context, customer string, survey proactive.Survey) (time.Time, error) {
	var at sql.NullTime
	err := c.read.QueryRowContext(ctx, `SELECT asked_at FROM survey_answers WHERE customer_id = $1 AND survey = $2
		ORDER BY asked_at DESC LIMIT 1`, customer, string(survey)).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, fmt.Errorf("read last %s question: %w", survey, err)
	}
	return at.Time.UTC(), nil
}

// SurveyScores returns a ticket's answers to the NPS and CES questions
// (absent when not asked or not answered).
func (c *conn) SurveyScores(ctx context.Context, ticket int64) (map[proactive.Survey]int, error) {
	rows, err := c.read.QueryContext(ctx, `SELECT survey, score FROM survey_answers WHERE ticket_id = $1 AND score IS NOT NULL`, ticket)
	if err != nil {
		return nil, fmt.Errorf("read survey answers: %w", err)
	}
	defer rows.Close()
	out := map[proactive.Survey]int{}
	for rows.Next() {
		var s string
		var v int
		if err := rows.Scan(&s, &v); err != nil {
			return nil, fmt.Errorf("read survey answers: %w", err)
		}
		out[proactive.Survey(s)] = v
	}
	return out, rows.Err()
}

// DoneVisits counts the visits made for a ticket.
func (c *conn) DoneVisits(ctx context.Context, ticket int64) (int, error) {
	var n int
	if err := c.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM appointments WHERE ticket_id = $1 AND status = 'done'`, ticket).Scan(&n); err != nil {
		return 0, fmt.Errorf("count visits: %w", err)
	}
	return n, nil
}
