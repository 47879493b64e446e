-- The registry: customers and their SMS consent trail, devices and their
-- MQTT credentials, technicians and their calendars. SQLite dialect; the
-- PostgreSQL file of the same version has the same tables and columns.

CREATE TABLE customers (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	phone       TEXT NOT NULL,
	language    TEXT NOT NULL DEFAULT 'en',
	quiet_start INTEGER NOT NULL DEFAULT 1260, -- minutes after midnight: 21:00
	quiet_end   INTEGER NOT NULL DEFAULT 480,  -- 08:00
	sms_consent BOOLEAN NOT NULL DEFAULT FALSE,
	consent_at  TIMESTAMP,
	created_at  TIMESTAMP NOT NULL,
	updated_at  TIMESTAMP NOT NULL,
	CONSTRAINT customers_phone_key UNIQUE (phone)
);

CREATE TABLE consent_events (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	customer_id TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
	at          TIMESTAMP NOT NULL,
	granted     BOOLEAN NOT NULL,
	method      TEXT NOT NULL,
	actor       TEXT NOT NULL,
	note        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX consent_events_customer ON consent_events (customer_id, at);

CREATE TABLE devices (
	id               TEXT PRIMARY KEY,
	model            TEXT NOT NULL,
	serial           TEXT NOT NULL DEFAULT '',
	customer_id      TEXT REFERENCES customers (id),
	site_line1       TEXT NOT NULL DEFAULT '',
	site_line2       TEXT NOT NULL DEFAULT '',
	site_city        TEXT NOT NULL DEFAULT '',
	site_postal_code TEXT NOT NULL DEFAULT '',
	site_country     TEXT NOT NULL DEFAULT '',
	time_zone        TEXT NOT NULL,
	installed_on     DATE,
	firmware         TEXT NOT NULL DEFAULT '',
	metadata         TEXT NOT NULL DEFAULT '{}',
	created_at       TIMESTAMP NOT NULL,
	updated_at       TIMESTAMP NOT NULL
);
CREATE INDEX devices_customer ON devices (customer_id);
CREATE UNIQUE INDEX devices_model_serial ON devices (model, serial) WHERE serial <> '';

CREATE TABLE device_credentials (
	device_id   TEXT PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
	secret_hash TEXT NOT NULL,
	created_at  TIMESTAMP NOT NULL
);

CREATE TABLE technicians (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	phone      TEXT NOT NULL,
	time_zone  TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);

CREATE TABLE technician_skills (
	technician_id TEXT NOT NULL REFERENCES technicians (id) ON DELETE CASCADE,
	component     TEXT NOT NULL,
	PRIMARY KEY (technician_id, component)
);
CREATE INDEX technician_skills_component ON technician_skills (component);

CREATE TABLE technician_areas (
	technician_id TEXT NOT NULL REFERENCES technicians (id) ON DELETE CASCADE,
	postal_prefix TEXT NOT NULL,
	PRIMARY KEY (technician_id, postal_prefix)
);

CREATE TABLE technician_hours (
	technician_id TEXT NOT NULL REFERENCES technicians (id) ON DELETE CASCADE,
	weekday       INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6), -- 0 = Sunday
	start_min     INTEGER NOT NULL,
	end_min       INTEGER NOT NULL,
	PRIMARY KEY (technician_id, weekday, start_min)
);

CREATE TABLE technician_time_off (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	technician_id TEXT NOT NULL REFERENCES technicians (id) ON DELETE CASCADE,
	starts_at     TIMESTAMP NOT NULL,
	ends_at       TIMESTAMP NOT NULL,
	reason        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX technician_time_off_technician ON technician_time_off (technician_id, starts_at);
