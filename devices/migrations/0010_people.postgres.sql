-- Follow-ups: a customer's request that needs a person (a call back, a
-- reply after a decline or an expiry, an undelivered offer, a declined
-- critical ticket) flags its ticket until someone handles it. The ticket
-- keeps its status; the timeline keeps who raised and handled each one.
-- PostgreSQL dialect; the SQLite file of the same version gives the same
-- columns.

ALTER TABLE tickets ADD COLUMN follow_up_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN follow_up_since TIMESTAMPTZ;
CREATE INDEX tickets_follow_up ON tickets (follow_up_since) WHERE follow_up_reason <> '';

-- A device's name as its customer knows it ("the kitchen fridge"), which
-- the SMS use instead of the model when it is set.
ALTER TABLE devices ADD COLUMN name TEXT NOT NULL DEFAULT '';

-- An offer gets two clarifying answers, not one, before unclear replies
-- are only recorded.
ALTER TABLE outreach ADD COLUMN clarifications INTEGER NOT NULL DEFAULT 0;
UPDATE outreach SET clarifications = 2 WHERE clarified;
