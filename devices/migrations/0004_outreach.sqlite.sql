-- The notifier's outreach: the SMS conversation per ticket, offered slots
-- and their holds, appointments, the outbox of outgoing messages with their
-- provider status, inbound messages (deduplicated by provider SID) and the
-- scheduled jobs (reminders, expiries, survey timeouts) that must survive a
-- restart. SQLite dialect; the PostgreSQL file of the same version has the
-- same tables and columns.

CREATE TABLE outreach (
	ticket_id    INTEGER PRIMARY KEY REFERENCES tickets (id),
	customer_id  TEXT NOT NULL REFERENCES customers (id),
	device_id    TEXT NOT NULL REFERENCES devices (id),
	stage        TEXT NOT NULL, -- offer, scheduled, survey, done
	offer_no     INTEGER NOT NULL DEFAULT 0,
	alert_at     TIMESTAMP NOT NULL,
	offered_at   TIMESTAMP,
	first_sms_at TIMESTAMP,
	clarified    BOOLEAN NOT NULL DEFAULT FALSE,
	csat         INTEGER CHECK (csat BETWEEN 1 AND 5),
	csat_at      TIMESTAMP,
	updated_at   TIMESTAMP NOT NULL
);
CREATE INDEX outreach_customer ON outreach (customer_id, stage, updated_at);

-- The slots of each offer, numbered as the SMS lists them. held_until keeps
-- a slot out of other customers' offers for a while.
CREATE TABLE offer_slots (
	ticket_id     INTEGER NOT NULL REFERENCES tickets (id),
	offer_no      INTEGER NOT NULL,
	position      INTEGER NOT NULL,
	technician_id TEXT NOT NULL REFERENCES technicians (id) ON DELETE CASCADE,
	starts_at     TIMESTAMP NOT NULL,
	ends_at       TIMESTAMP NOT NULL,
	held_until    TIMESTAMP NOT NULL,
	PRIMARY KEY (ticket_id, offer_no, position)
);
CREATE INDEX offer_slots_hold ON offer_slots (technician_id, starts_at, held_until);

CREATE TABLE appointments (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	ticket_id     INTEGER NOT NULL REFERENCES tickets (id),
	technician_id TEXT NOT NULL REFERENCES technicians (id),
	starts_at     TIMESTAMP NOT NULL,
	ends_at       TIMESTAMP NOT NULL,
	status        TEXT NOT NULL CHECK (status IN ('booked', 'done', 'cancelled')),
	booked_at     TIMESTAMP NOT NULL,
	booked_by     TEXT NOT NULL,
	done_at       TIMESTAMP,
	outcome       TEXT,
	notes         TEXT NOT NULL DEFAULT ''
);
-- Slots start on a grid, so one technician cannot be booked twice at the
-- same start: of two concurrent bookings of a slot exactly one inserts.
CREATE UNIQUE INDEX appointments_one_per_slot ON appointments (technician_id, starts_at) WHERE status <> 'cancelled';
CREATE INDEX appointments_ticket ON appointments (ticket_id);
CREATE INDEX appointments_day ON appointments (starts_at);

CREATE TABLE outbox (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	ticket_id       INTEGER REFERENCES tickets (id),
	customer_id     TEXT NOT NULL REFERENCES customers (id),
	device_id       TEXT REFERENCES devices (id),
	to_phone        TEXT NOT NULL,
	time_zone       TEXT NOT NULL DEFAULT 'UTC',
	kind            TEXT NOT NULL,
	body            TEXT NOT NULL,
	urgent          BOOLEAN NOT NULL DEFAULT FALSE,
	status          TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'unknown', 'sent', 'failed', 'suppressed')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at TIMESTAMP NOT NULL,
	created_at      TIMESTAMP NOT NULL,
	claimed_at      TIMESTAMP,
	sent_at         TIMESTAMP,
	sid             TEXT UNIQUE,
	provider_status TEXT NOT NULL DEFAULT '',
	provider_rank   INTEGER NOT NULL DEFAULT 0,
	error_code      TEXT NOT NULL DEFAULT '',
	last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_customer_sent ON outbox (customer_id, sent_at);
CREATE INDEX outbox_device_kind ON outbox (device_id, kind, created_at);
CREATE INDEX outbox_ticket ON outbox (ticket_id);

CREATE TABLE inbound_messages (
	sid         TEXT PRIMARY KEY,
	from_phone  TEXT NOT NULL,
	body        TEXT NOT NULL,
	received_at TIMESTAMP NOT NULL,
	ticket_id   INTEGER REFERENCES tickets (id)
);

CREATE TABLE jobs (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	kind      TEXT NOT NULL,
	ticket_id INTEGER NOT NULL REFERENCES tickets (id),
	due_at    TIMESTAMP NOT NULL,
	done_at   TIMESTAMP,
	CONSTRAINT jobs_one_per_ticket UNIQUE (kind, ticket_id)
);
CREATE INDEX jobs_due ON jobs (due_at) WHERE done_at IS NULL;
