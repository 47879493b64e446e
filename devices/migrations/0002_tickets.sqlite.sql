-- Tickets and their append-only timeline. SQLite dialect; the PostgreSQL
-- file of the same version has the same tables and columns.

CREATE TABLE tickets (
	id                   INTEGER PRIMARY KEY AUTOINCREMENT,
	device_id            TEXT NOT NULL REFERENCES devices (id),
	component            TEXT NOT NULL,
	rule                 TEXT NOT NULL,
	status               TEXT NOT NULL CHECK (status IN
		('open', 'offered', 'scheduled', 'visited', 'closed', 'declined', 'expired', 'cancelled')),
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
-- At most one ticket per device and component outside the terminal states:
-- OpenTicket's idempotency rests on it.
CREATE UNIQUE INDEX tickets_one_open ON tickets (device_id, component)
	WHERE status NOT IN ('closed', 'declined', 'expired', 'cancelled');
CREATE INDEX tickets_status ON tickets (status, id);
CREATE INDEX tickets_device ON tickets (device_id, id);
CREATE INDEX tickets_technician ON tickets (technician_id, id);

CREATE TABLE ticket_events (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	ticket_id INTEGER NOT NULL REFERENCES tickets (id),
	at        TIMESTAMP NOT NULL,
	kind      TEXT NOT NULL,
	actor     TEXT NOT NULL,
	body      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

CREATE TRIGGER ticket_events_no_update BEFORE UPDATE ON ticket_events
BEGIN
	SELECT RAISE(ABORT, 'ticket_events is append-only');
END;
CREATE TRIGGER ticket_events_no_delete BEFORE DELETE ON ticket_events
BEGIN
	SELECT RAISE(ABORT, 'ticket_events is append-only');
END;
