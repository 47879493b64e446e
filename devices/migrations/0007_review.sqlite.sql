-- The ticket status review (a dispatcher approves or dismisses a ticket
-- before any customer is texted). SQLite cannot change a CHECK constraint in
-- place, so the table is rebuilt with the same columns; migrate runs SQLite
-- migrations with foreign keys off and checks them before it commits.

CREATE TABLE tickets_new (
	id                   INTEGER PRIMARY KEY AUTOINCREMENT,
	device_id            TEXT NOT NULL REFERENCES devices (id),
	component            TEXT NOT NULL,
	rule                 TEXT NOT NULL,
	status               TEXT NOT NULL CHECK (status IN
		('open', 'review', 'offered', 'scheduled', 'visited', 'closed', 'declined', 'expired', 'cancelled')),
	severity             TEXT NOT NULL,
	summary              TEXT NOT NULL DEFAULT '',
	predicted_failure_at TIMESTAMP,
	opened_at            TIMESTAMP NOT NULL,
	updated_at           TIMESTAMP NOT NULL,
	closed_at            TIMESTAMP,
	technician_id        TEXT REFERENCES technicians (id),
	outcome              TEXT,
	outcome_notes        TEXT NOT NULL DEFAULT ''
);
INSERT INTO tickets_new (id, device_id, component, rule, status, severity, summary, predicted_failure_at,
	opened_at, updated_at, closed_at, technician_id, outcome, outcome_notes)
SELECT id, device_id, component, rule, status, severity, summary, predicted_failure_at,
	opened_at, updated_at, closed_at, technician_id, outcome, outcome_notes FROM tickets;
DROP TABLE tickets;
ALTER TABLE tickets_new RENAME TO tickets;

CREATE UNIQUE INDEX tickets_one_open ON tickets (device_id, component)
	WHERE status NOT IN ('closed', 'declined', 'expired', 'cancelled');
CREATE INDEX tickets_status ON tickets (status, id);
CREATE INDEX tickets_device ON tickets (device_id, id);
CREATE INDEX tickets_technician ON tickets (technician_id, id);
CREATE INDEX tickets_rule ON tickets (rule, status);
