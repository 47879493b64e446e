-- Outbound webhooks: webhooks are the admins' subscriptions, webhook_events
-- the events written in the transaction of the change they report, and
-- webhook_deliveries their outbox, one row per webhook and event, delivered
-- in order per order_key (a ticket, an incident, a customer).
-- PostgreSQL dialect; the SQLite file of the same version gives the same
-- tables.

CREATE TABLE webhooks (
	id         BIGSERIAL PRIMARY KEY,
	url        TEXT NOT NULL,
	events     TEXT NOT NULL,
	secret     TEXT NOT NULL,
	format     TEXT NOT NULL CHECK (format IN ('json', 'slack')),
	enabled    BOOLEAN NOT NULL DEFAULT TRUE,
	created_at TIMESTAMPTZ NOT NULL,
	created_by TEXT NOT NULL DEFAULT ''
);

CREATE TABLE webhook_events (
	id        BIGSERIAL PRIMARY KEY,
	type      TEXT NOT NULL,
	at        TIMESTAMPTZ NOT NULL,
	order_key TEXT NOT NULL,
	data      TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
	id              BIGSERIAL PRIMARY KEY,
	webhook_id      BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	event_id        BIGINT NOT NULL REFERENCES webhook_events (id),
	order_key       TEXT NOT NULL,
	state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at TIMESTAMPTZ NOT NULL,
	last_attempt_at TIMESTAMPTZ,
	last_status     INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      TIMESTAMPTZ NOT NULL,
	finished_at     TIMESTAMPTZ
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (webhook_id, order_key, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
