-- Incidents: many devices firing one rule at once are one problem, not many
-- customers' problems. firings records every firing alert the notifier
-- sees (the base of the grouping: distinct devices of a rule within the
-- window), incidents the groups, tickets.incident_id a ticket's group.
-- SQLite dialect; the PostgreSQL file of the same version gives the same
-- tables.

CREATE TABLE incidents (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	rule           TEXT NOT NULL,
	status         TEXT NOT NULL CHECK (status IN ('open', 'dismissed')),
	opened_at      TIMESTAMP NOT NULL,
	first_alert_at TIMESTAMP NOT NULL,
	last_alert_at  TIMESTAMP NOT NULL,
	updated_at     TIMESTAMP NOT NULL,
	closed_at      TIMESTAMP,
	applicable     INTEGER NOT NULL
);
CREATE INDEX incidents_rule ON incidents (rule, status, last_alert_at);

CREATE TABLE firings (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	rule        TEXT NOT NULL,
	device_id   TEXT NOT NULL REFERENCES devices (id),
	ticket_id   INTEGER NOT NULL REFERENCES tickets (id),
	fired_at    TIMESTAMP NOT NULL,
	incident_id INTEGER REFERENCES incidents (id)
);
CREATE INDEX firings_rule ON firings (rule, fired_at);
CREATE INDEX firings_incident ON firings (incident_id);

ALTER TABLE tickets ADD COLUMN incident_id INTEGER REFERENCES incidents (id);
CREATE INDEX tickets_incident ON tickets (incident_id);
