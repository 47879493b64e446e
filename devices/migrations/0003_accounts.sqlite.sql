-- API tokens: a random secret shown once, stored as a SHA-256 hash (the
-- secret has 256 bits of entropy, so a slow hash buys nothing and would
-- cost every request). The id is the token's public prefix, used for lookup
-- and in logs. A technician token is tied to one technician.

CREATE TABLE api_tokens (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	role          TEXT NOT NULL CHECK (role IN ('admin', 'dispatcher', 'technician')),
	technician_id TEXT REFERENCES technicians (id) ON DELETE CASCADE,
	secret_hash   TEXT NOT NULL,
	created_at    TIMESTAMP NOT NULL,
	last_used_at  TIMESTAMP,
	revoked_at    TIMESTAMP,
	CHECK ((role = 'technician') = (technician_id IS NOT NULL))
);
CREATE INDEX api_tokens_technician ON api_tokens (technician_id);
