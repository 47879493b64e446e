-- The customer's preferred channel (sms, whatsapp, email), their email
-- address, and consent per channel: sms_consent and consent_at stay the
-- SMS's, each other channel gets its own pair. Consent events and outbox
-- messages name their channel; the rows before this migration were SMS.
-- SQLite dialect; the PostgreSQL file of the same version gives the same
-- columns.

ALTER TABLE customers ADD COLUMN preferred_channel TEXT NOT NULL DEFAULT 'sms';
ALTER TABLE customers ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN whatsapp_consent BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE customers ADD COLUMN whatsapp_consent_at TIMESTAMP;
ALTER TABLE customers ADD COLUMN email_consent BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE customers ADD COLUMN email_consent_at TIMESTAMP;
-- The secret of the customer's unsubscribe link in emails: random, made
-- when their first email is sent.
ALTER TABLE customers ADD COLUMN unsubscribe_token TEXT;
CREATE UNIQUE INDEX customers_unsubscribe_token ON customers (unsubscribe_token);

ALTER TABLE consent_events ADD COLUMN channel TEXT NOT NULL DEFAULT 'sms';

-- to_phone holds the address of the message's channel: a phone number for
-- sms and whatsapp, an email address for email.
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'sms';
