-- The loyalty and effort surveys that may follow the satisfaction question
-- (CSAT stays on outreach): one row per question put to a customer about a
-- ticket, its answer once given. asked_at per customer and survey bounds
-- how often the NPS question is asked (once per notify.nps_interval).
-- SQLite dialect; the PostgreSQL file of the same version gives the same
-- columns.

CREATE TABLE survey_answers (
	ticket_id   INTEGER NOT NULL REFERENCES tickets (id),
	survey      TEXT NOT NULL CHECK (survey IN ('nps', 'ces')),
	customer_id TEXT NOT NULL,
	asked_at    TIMESTAMP NOT NULL,
	score       INTEGER CHECK (score BETWEEN 0 AND 10),
	answered_at TIMESTAMP,
	PRIMARY KEY (ticket_id, survey)
);
CREATE INDEX survey_answers_customer ON survey_answers (customer_id, survey, asked_at);
CREATE INDEX survey_answers_answered ON survey_answers (answered_at) WHERE score IS NOT NULL;

-- A fault's repeat (another ticket of the same device and component soon
-- after a fix) is looked up by device, component and opening.
CREATE INDEX tickets_device_component ON tickets (device_id, component, opened_at);
