// Package devices is the platform's relational store: the registry of
// devices, the customers who own them and the technicians who repair them,
// the devices' MQTT credentials, and the tickets with their timelines.
//
// # Databases
//
// Open takes a SQLite file path (data/proactive.db, the default on a fresh
// machine; pure Go, modernc.org/sqlite) or a postgres:// URL (pgx through
// database/sql). The SQL is shared, with $1 placeholders, ON CONFLICT and
// RETURNING, which both dialects speak; only the DDL differs (identity
// columns, TIMESTAMPTZ and JSONB on PostgreSQL; an append-only trigger
// written in each dialect). Times are stored in UTC to the microsecond, and
// JSON is returned compact with sorted keys, so both dialects give back
// identical values.
//
// SQLite runs in WAL mode with synchronous=NORMAL, a busy timeout, foreign
// keys on, and writes through one connection whose transactions begin
// IMMEDIATE: a transaction that reads and then writes never fails with
// SQLITE_BUSY halfway, and writers from other processes (a CLI import
// beside the server) queue on the busy timeout. Reads use a separate
// query-only pool.
//
// # Migrations
//
// The schema is versioned by files embedded from migrations/: NNNN_name.sql
// when portable, NNNN_name.sqlite.sql and NNNN_name.postgres.sql when not.
// Open applies the pending ones in one transaction (on PostgreSQL under an
// advisory lock, so that processes starting together do not race) and
// records each in schema_migrations. It refuses, with ErrSchemaTooNew, a
// database that a newer binary has migrated further than this one knows.
//
// # Schema
//
//	customers            id, name, phone (E.164, unique), language, quiet_start/quiet_end (minutes),
//	                     sms_consent, consent_at, preferred_channel (sms, whatsapp, email), email,
//	                     whatsapp_consent(_at), email_consent(_at), unsubscribe_token (emails' link)
//	consent_events       customer_id, channel, at, granted, method, actor, note: the consent audit trail
//	devices              id, model, serial (unique per model), customer_id, site_* (address),
//	                     time_zone, installed_on, firmware, metadata (JSON object),
//	                     changed_us (database clock; triggers)
//	device_deletions     device_id, deleted_us: a day of tombstones (trigger)
//	device_credentials   device_id, secret_hash (bcrypt)
//	technicians          id, name, phone, time_zone
//	technician_skills    technician_id, component
//	technician_areas     technician_id, postal_prefix ("*" = everywhere)
//	technician_hours     technician_id, weekday (0 = Sunday), start_min, end_min
//	technician_time_off  technician_id, starts_at, ends_at, reason
//	tickets              id, device_id, component, rule, status, severity, summary,
//	                     predicted_failure_at, opened_at, updated_at, closed_at,
//	                     technician_id, outcome, outcome_notes;
//	                     unique (device_id, component) where status is not terminal
//	ticket_events        id, ticket_id, at, kind, actor, body (JSON); append-only (triggers)
//	maintenance          id (increasing in write order), device_id, time, component, kind,
//	                     notes, source (import, api, ticket), ticket_id, created_at;
//	                     unique (device_id, time, component, kind)
//	schema_migrations    version, name, applied_at
//
// # Tickets
//
// OpenTicket is idempotent per device and component while a ticket is not
// terminal, enforced by the partial unique index tickets_one_open and an
// INSERT ... ON CONFLICT DO NOTHING, so concurrent openers, in one process or
// several, get one ticket. The states move so:
//
//	from       to
//	open       offered, scheduled, cancelled
//	offered    scheduled, declined, expired, cancelled
//	scheduled  visited, cancelled
//	visited    closed (CloseTicket, with an outcome), cancelled
//	closed, declined, expired, cancelled: terminal
//
// open → scheduled serves visits booked by phone, with no SMS offer. A
// transition is a compare-and-set on the status (UPDATE ... WHERE id = $1 AND
// status = $2): of two concurrent transitions of a ticket exactly one wins and
// the other gets EConflict, as does an illegal move, with the reason.
//
// # The device directory
//
// DeviceInfo, called for every message, answers from memory: every
// device's model and installation day, loaded in one query, updated by the
// commits through the Store, and polled every Options.DirectoryRefresh for
// other processes' writes (changed_us) and deletes (device_deletions). See
// directory.go.
//
// # Errors
//
// Methods return *proactive.Error with code EInvalid (as *FieldErrors, which
// lists every invalid field), ENotFound or EConflict for what a user can
// act on, and wrapped internal errors otherwise.
//
// # Transactions for other packages
//
// Store.WithTx hands out a Tx, so that the notifier can write its outbox in
// the transaction that changes the ticket. Store and Tx share one set of
// typed methods, each defined once (on the unexported conn they embed): on a
// Store they read on the read pool and write on the write pool, an operation
// of several statements opening its own transaction; on a Tx they run in
// it. The notifier's tables (outbox, jobs, appointments, slot holds,
// outreach) have typed methods here too: no SQL, dialect or driver outside
// this package. Tx's plain SQL (ExecContext, QueryContext, QueryRowContext)
// and Store's QueryContext remain, deprecated, until notify's conversation
// moves here. A write a unique index refuses comes back as ErrDuplicate.
package devices
