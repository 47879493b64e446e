package devices

import (
	"context"
	"fmt"
)

// The contact policy's reads and writes (product.md, "Who is contacted"):
// why a ticket's customer was not texted, and each rule's measured trust.

// confirmedSQL is the outcomes that confirmed a fault; every other outcome
// (no_fault_found, false_alarm) counts against a rule's precision.
const confirmedSQL = `('fault_confirmed', 'part_replaced')`

// RuleTrust is a rule's record: how many of its tickets closed with an
// outcome, and how many of those confirmed a fault.
type RuleTrust struct {
	Rule      string `json:"rule"`
	Outcomes  int    `json:"outcomes"`
	Confirmed int    `json:"confirmed"`
}

// Precision is the share of the outcomes that confirmed a fault, 0 with no
// outcome.
func (r RuleTrust) Precision() float64 {
	if r.Outcomes == 0 {
		return 0
	}
	return float64(r.Confirmed) / float64(r.Outcomes)
}

// RuleTrust reads one rule's record; a rule without tickets has none.
func (c *conn) RuleTrust(ctx context.Context, rule string) (RuleTrust, error) {
	r := RuleTrust{Rule: rule}
	if err := c.read.QueryRowContext(ctx, `SELECT COUNT(*),
		`+sumSQL(`CASE WHEN outcome IN `+confirmedSQL+` THEN 1 ELSE 0 END`)+`
		FROM tickets WHERE rule = $1 AND status = 'closed' AND outcome IS NOT NULL`, rule).Scan(&r.Outcomes, &r.Confirmed); err != nil {
		return RuleTrust{}, fmt.Errorf("rule trust: %w", err)
	}
	return r, nil
}

// RulesTrust reads every rule's record, by rule; rules without an outcome
// are left out.
func (c *conn) RulesTrust(ctx context.Context) (map[string]RuleTrust, error) {
	rows, err := c.read.QueryContext(ctx, `SELECT rule, COUNT(*),
		`+sumSQL(`CASE WHEN outcome IN `+confirmedSQL+` THEN 1 ELSE 0 END`)+`
		FROM tickets WHERE status = 'closed' AND outcome IS NOT NULL GROUP BY rule`)
	if err != nil {
		return nil, fmt.Errorf("rules trust: %w", err)
	}
	defer rows.Close()
	out := map[string]RuleTrust{}
	for rows.Next() {
		var r RuleTrust
		if err := rows.Scan(&r.Rule, &r.Outcomes, &r.Confirmed); err != nil {
			return nil, fmt.Errorf("rules trust: %w", err)
		}
		out[r.Rule] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rules trust: %w", err)
	}
	return out, nil
}

// Hold records on a ticket why its customer was not texted (reason, such
// as review or contact_cooldown), in this transaction. ENotFound for no
// such ticket.
func (tx *Tx) Hold(ctx context.Context, id int64, reason string) error {
	v := newValidator("hold")
	v.text("reason", reason, 100, true)
	if err := v.err(); err != nil {
		return err
	}
	res, err := tx.tx.ExecContext(ctx, `UPDATE tickets SET held_reason = $2 WHERE id = $1`, id, reason)
	if err != nil {
		return fmt.Errorf("hold ticket: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("hold ticket: %w", err)
	} else if n == 0 {
		return notFound("ticket", id)
	}
	return nil
}
