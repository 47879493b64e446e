package devices

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Job is a scheduled job of the notifier (a reminder, an expiry, a survey
// timeout) on a ticket.
type Job struct {
	ID     int64
	Kind   string
	Ticket int64
}

// JobsDue returns the jobs not done and due at now, earliest first, at most
// limit.
func (c *conn) JobsDue(ctx context.Context, now time.Time, limit int) ([]Job, error) {
	rows, err := c.read.QueryContext(ctx, `SELECT id, kind, ticket_id FROM jobs WHERE done_at IS NULL AND due_at <= $1
		ORDER BY due_at, id LIMIT $2`, dbTime(now), limit)
	if err != nil {
		return nil, fmt.Errorf("read due jobs: %w", err)
	}
	defer rows.Close()
	var due []Job
	for rows.Next() {
		var j Job
		if err := rows.Scan(&j.ID, &j.Kind, &j.Ticket); err != nil {
			return nil, fmt.Errorf("read due jobs: %w", err)
		}
		due = append(due, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read due jobs: %w", err)
	}
	return due, nil
}

// PostponeJob makes a job not done due again at due.
func (c *conn) PostponeJob(ctx context.Context, id int64, due time.Time) error {
	if _, err := c.update(ctx, `UPDATE jobs SET due_at = $2 WHERE id = $1 AND done_at IS NULL`, id, dbTime(due)); err != nil {
		return fmt.Errorf("postpone job: %w", err)
	}
	return nil
}

// EndJob marks a job done at at without running it (one that cannot
// succeed), unless it is done already.
func (c *conn) EndJob(ctx context.Context, id int64, at time.Time) error {
	if _, err := c.update(ctx, `UPDATE jobs SET done_at = $2 WHERE id = $1 AND done_at IS NULL`, id, dbTime(at)); err != nil {
		return fmt.Errorf("end job: %w", err)
	}
	return nil
}

// ClaimJob marks a job done at now, and reports whether this call did it:
// run in the transaction of the job's effects, that is the claim, so that of
// two notifiers one runs the job, and a crash does both or neither. On
// PostgreSQL a job another transaction is running is skipped (false) rather
// than waited for.
func (c *conn) ClaimJob(ctx context.Context, id int64, now time.Time) (bool, error) {
	if c.tx != nil && c.s.dialect == Postgres {
		var one int
		err := c.tx.tx.QueryRowContext(ctx, `SELECT 1 FROM jobs WHERE id = $1 AND done_at IS NULL FOR UPDATE SKIP LOCKED`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("claim job: %w", err)
		}
	}
	ok, err := c.update(ctx, `UPDATE jobs SET done_at = $2 WHERE id = $1 AND done_at IS NULL`, id, dbTime(now))
	if err != nil {
		return false, fmt.Errorf("claim job: %w", err)
	}
	return ok, nil
}
