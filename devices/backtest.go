package devices

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Backtest is the summary of one rule's backtest (`proactive rules
// backtest`): what it would have done over a period of history. The store
// keeps the last one of each rule, for the rules page.
type Backtest struct {
	Rule  string    `json:"rule"`
	RunAt time.Time `json:"run_at"`
	// From and To are the replayed period, [From, To).
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Samples int64     `json:"samples"`
	// Fires counts the times the rule fired, Devices the devices it fired
	// on; TicketsPerDay is the tickets a day it would have opened.
	Fires         int     `json:"fires"`
	Devices       int     `json:"devices"`
	TicketsPerDay float64 `json:"tickets_per_day"`
	// Scored is whether known failures were given. Only then do Failures
	// (those of the rule's component), Detected, Recall (Detected over
	// Failures; 0 without failures), MedianLead and FalseAlarms mean
	// anything.
	Scored      bool          `json:"scored"`
	Failures    int           `json:"failures,omitempty"`
	Detected    int           `json:"detected,omitempty"`
	Recall      float64       `json:"recall,omitempty"`
	MedianLead  time.Duration `json:"median_lead_ns,omitempty"`
	FalseAlarms int           `json:"false_alarms,omitempty"`
	// Report is the rule's whole report as JSON (an object), as the
	// backtest's --json prints it; empty for none.
	Report json.RawMessage `json:"report,omitempty"`
}

// maxBacktestReport bounds a stored report.
const maxBacktestReport = 256 << 10

func (b *Backtest) validate() error {
	v := newValidator("backtest")
	v.text("rule", b.Rule, 200, true)
	v.check(!b.RunAt.IsZero(), "run_at", "required")
	v.check(!b.From.IsZero() && !b.To.IsZero() && b.From.Before(b.To), "to", "the period must end after it starts")
	v.check(b.Samples >= 0 && b.Fires >= 0 && b.Devices >= 0, "fires", "counts must not be negative")
	v.check(!math.IsNaN(b.TicketsPerDay) && !math.IsInf(b.TicketsPerDay, 0) && b.TicketsPerDay >= 0,
		"tickets_per_day", "must be a number of at least 0")
	if b.Scored {
		v.check(b.Failures >= 0 && b.Detected >= 0 && b.Detected <= b.Failures && b.FalseAlarms >= 0, "detected",
			"must be between 0 and the failures")
		v.check(b.Recall >= 0 && b.Recall <= 1, "recall", "must be between 0 and 1")
		v.check(b.MedianLead >= 0, "median_lead_ns", "must not be negative")
	}
	if len(b.Report) == 0 {
		b.Report = json.RawMessage("{}")
	}
	raw, err := canonicalJSON(b.Report)
	switch {
	case err != nil || len(raw) == 0 || raw[0] != '{':
		v.addf("report", "must be a JSON object")
	case len(raw) > maxBacktestReport:
		v.addf("report", "larger than %d bytes", maxBacktestReport)
	default:
		b.Report = raw
	}
	return v.err()
}

// SaveBacktest stores the summaries of one backtest run, each replacing
// its rule's previous one, in one transaction. EInvalid, naming the
// fields, for a summary that does not hold together.
func (s *Store) SaveBacktest(ctx context.Context, bs ...Backtest) error {
	for i := range bs {
		if err := bs[i].validate(); err != nil {
			return err
		}
	}
	err := s.WithTx(ctx, func(tx *Tx) error {
		for _, b := range bs {
			var failures, detected, falseAlarms sql.NullInt64
			var recall sql.NullFloat64
			var lead sql.NullInt64
			if b.Scored {
				failures = sql.NullInt64{Int64: int64(b.Failures), Valid: true}
				detected = sql.NullInt64{Int64: int64(b.Detected), Valid: true}
				falseAlarms = sql.NullInt64{Int64: int64(b.FalseAlarms), Valid: true}
				recall = sql.NullFloat64{Float64: b.Recall, Valid: true}
				lead = sql.NullInt64{Int64: int64(b.MedianLead), Valid: true}
			}
			if _, err := tx.tx.ExecContext(ctx, `INSERT INTO rule_backtests (rule, run_at, period_from, period_to, samples, fires,
				devices, tickets_per_day, failures, detected, recall, median_lead_ns, false_alarms, report)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
				ON CONFLICT (rule) DO UPDATE SET run_at = excluded.run_at, period_from = excluded.period_from,
				period_to = excluded.period_to, samples = excluded.samples, fires = excluded.fires, devices = excluded.devices,
				tickets_per_day = excluded.tickets_per_day, failures = excluded.failures, detected = excluded.detected,
				recall = excluded.recall, median_lead_ns = excluded.median_lead_ns, false_alarms = excluded.false_alarms,
				report = excluded.report`,
				b.Rule, dbTime(b.RunAt), dbTime(b.From), dbTime(b.To), b.Samples, b.Fires, b.Devices, b.TicketsPerDay,
				failures, detected, recall, lead, falseAlarms, string(b.Report)); err != nil {
				return err
			}
		}
		return nil
	})
	return wrapOp("save backtest", err)
}

// LatestBacktests returns the last saved backtest of each rule, by rule
// name.
func (s *Store) LatestBacktests(ctx context.Context) (map[string]Backtest, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT rule, run_at, period_from, period_to, samples, fires, devices, tickets_per_day,
		failures, detected, recall, median_lead_ns, false_alarms, report FROM rule_backtests ORDER BY rule LIMIT 5000`)
	if err != nil {
		return nil, fmt.Errorf("list backtests: %w", err)
	}
	defer rows.Close()
	out := map[string]Backtest{}
	for rows.Next() {
		var b Backtest
		var failures, detected, falseAlarms, lead sql.NullInt64
		var recall sql.NullFloat64
		var report string
		if err := rows.Scan(&b.Rule, &b.RunAt, &b.From, &b.To, &b.Samples, &b.Fires, &b.Devices, &b.TicketsPerDay,
			&failures, &detected, &recall, &lead, &falseAlarms, &report); err != nil {
			return nil, fmt.Errorf("list backtests: %w", err)
		}
		b.RunAt, b.From, b.To = b.RunAt.UTC(), b.From.UTC(), b.To.UTC()
		b.Scored = failures.Valid
		b.Failures, b.Detected, b.FalseAlarms = int(failures.Int64), int(detected.Int64), int(falseAlarms.Int64)
		b.Recall, b.MedianLead = recall.Float64, time.Duration(lead.Int64)
		b.Report = mustCanonical([]byte(report))
		out[b.Rule] = b
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list backtests: %w", err)
	}
	return out, nil
}
