-- The last backtest of each rule, which `proactive rules backtest` saves
-- and the rules page shows; and an index for the rules page, which counts
-- tickets per rule and status. PostgreSQL dialect; the SQLite file of the
-- same version has the same tables and columns.

CREATE TABLE rule_backtests (
	rule            TEXT PRIMARY KEY,
	run_at          TIMESTAMPTZ NOT NULL,
	period_from     TIMESTAMPTZ NOT NULL,
	period_to       TIMESTAMPTZ NOT NULL,
	samples         BIGINT NOT NULL,
	fires           INTEGER NOT NULL,
	devices         INTEGER NOT NULL,
	tickets_per_day DOUBLE PRECISION NOT NULL,
	-- Scored against known failures: the failures of the rule's component,
	-- how many it caught, its recall and median lead time and false
	-- alarms. NULL when no failures were given.
	failures        INTEGER,
	detected        INTEGER,
	recall          DOUBLE PRECISION,
	median_lead_ns  BIGINT,
	false_alarms    INTEGER,
	-- The rule's report as the backtest's --json prints it (first fires cut).
	report          JSONB NOT NULL DEFAULT '{}'
);

CREATE INDEX tickets_rule ON tickets (rule, status);
