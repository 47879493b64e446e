-- The last backtest of each rule, which `proactive rules backtest` saves
-- and the rules page shows; and an index for the rules page, which counts
-- tickets per rule and status. SQLite dialect; the PostgreSQL file of the
-- same version has the same tables and columns.

CREATE TABLE rule_backtests (
	rule            TEXT PRIMARY KEY,
	run_at          TIMESTAMP NOT NULL,
	period_from     TIMESTAMP NOT NULL,
	period_to       TIMESTAMP NOT NULL,
	samples         INTEGER NOT NULL,
	fires           INTEGER NOT NULL,
	devices         INTEGER NOT NULL,
	tickets_per_day REAL NOT NULL,
	-- Scored against known failures: the failures of the rule's component,
	-- how many it caught, its recall and median lead time and false
	-- alarms. NULL when no failures were given.
	failures        INTEGER,
	detected        INTEGER,
	recall          REAL,
	median_lead_ns  INTEGER,
	false_alarms    INTEGER,
	-- The rule's report as the backtest's --json prints it (first fires cut).
	report          TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX tickets_rule ON tickets (rule, status);
