-- Maintenance history: what was replaced, repaired or inspected on a
-- device, and when. SQLite dialect; the PostgreSQL file of the same version
-- has the same tables and columns.
--
-- id increases in the order records are written (AUTOINCREMENT never
-- reuses one), so a reader that has seen id n asks for the records after n.

CREATE TABLE maintenance (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	device_id  TEXT NOT NULL REFERENCES devices (id),
	time       TIMESTAMP NOT NULL,
	component  TEXT NOT NULL,
	kind       TEXT NOT NULL CHECK (kind IN ('replaced', 'repaired', 'inspected')),
	notes      TEXT NOT NULL DEFAULT '',
	-- Where the record came from: a CSV import, the API, or a ticket closed
	-- with part_replaced (then ticket_id names it).
	source     TEXT NOT NULL CHECK (source IN ('import', 'api', 'ticket')),
	ticket_id  INTEGER REFERENCES tickets (id),
	created_at TIMESTAMP NOT NULL
);
-- The natural key: importing a file again adds nothing. It also serves a
-- device's history in time order; reads by id use the primary key.
CREATE UNIQUE INDEX maintenance_key ON maintenance (device_id, time, component, kind);
