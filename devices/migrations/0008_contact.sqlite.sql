-- The contact policy (product.md, "Who is contacted"): nothing about a
-- ticket is silent. SQLite dialect; the PostgreSQL file has the same columns.
--
-- fired_at is the opening alert's own time (the devices' clock): the rule's
-- ticket cooldown runs on it, so a backfill is not collapsed into one ticket.
-- held_reason says why the customer was not texted (review, untrusted_rule,
-- alert_age, contact_cooldown, no_consent, contact_none, ...), '' when
-- nothing was held. alerts_absorbed counts the alerts that fired again while
-- the ticket was open; last_alert_at is when the last one was seen (our
-- clock) and last_alert_fired_at its own time.
ALTER TABLE tickets ADD COLUMN fired_at TIMESTAMP;
ALTER TABLE tickets ADD COLUMN held_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN alerts_absorbed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN last_alert_at TIMESTAMP;
ALTER TABLE tickets ADD COLUMN last_alert_fired_at TIMESTAMP;
