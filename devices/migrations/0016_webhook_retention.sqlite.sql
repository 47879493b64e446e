-- Retention of the webhook outbox: the dispatcher deletes delivered and dead
-- deliveries that finished before notify.webhook_retention, then the events
-- no delivery refers to any more, a bounded batch per statement. These
-- indexes let each batch find its rows without reading the whole table
-- (pending deliveries have no finished_at).
-- SQLite dialect; the PostgreSQL file gives the same indexes.

CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at);
CREATE INDEX webhook_events_at ON webhook_events (at);
