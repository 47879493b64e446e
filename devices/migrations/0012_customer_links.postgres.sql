-- The customer's links: the code of a {public_url}/c/{code} link opens its
-- ticket's customer page. Only the SHA-256 of a code is kept (hex), so that
-- this table read alone (a backup, a replica) opens no page, and a lookup
-- compares hashes, which leak nothing about the codes through timing.
-- Every message that carries a link gets its own code; each opens the same
-- ticket. PostgreSQL dialect; the SQLite file gives the same columns.

CREATE TABLE customer_links (
	code_hash  TEXT PRIMARY KEY,
	ticket_id  BIGINT NOT NULL REFERENCES tickets (id),
	created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX customer_links_ticket ON customer_links (ticket_id);
