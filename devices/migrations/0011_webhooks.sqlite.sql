-- Outbound webhooks: webhooks are the admins' subscriptions, webhook_events
-- the events written in the transaction of the change they report, and
-- webhook_deliveries their outbox, one row per webhook and event, delivered
-- in order per order_key (a ticket, an incident, a customer).
-- SQLite dialect; the PostgreSQL file of the same version gives the same
-- tables.

CREATE TABLE webhooks (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	url        TEXT NOT NULL,
	events     TEXT NOT NULL,
	secret     TEXT NOT NULL,
	format     TEXT NOT NULL CHECK (format IN ('json', 'slack')),
	enabled    BOOLEAN NOT NULL DEFAULT TRUE,
	created_at TIMESTAMP NOT NULL,
	created_by TEXT NOT NULL DEFAULT ''
);

CREATE TABLE webhook_events (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	type      TEXT NOT NULL,
	at        TIMESTAMP NOT NULL,
	order_key TEXT NOT NULL,
	data      TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	webhook_id      INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	event_id        INTEGER NOT NULL REFERENCES webhook_events (id),
	order_key       TEXT NOT NULL,
	state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at TIMESTAMP NOT NULL,
	last_attempt_at TIMESTAMP,
	last_status     INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      TIMESTAMP NOT NULL,
	finished_at     TIMESTAMP
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (webhook_id, order_key, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
