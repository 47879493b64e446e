-- What lets each process keep the device directory (every device's model
-- and installation day, in memory) fresh by polling: changed_us stamps every
-- insert of a device and every update that sets its model or installation
-- day, and device_deletions keeps a tombstone of every delete for a day, so
-- that a process sees the writes of the others (a second instance, the
-- import CLI) by reading only what changed.
-- Stamps are microseconds since 1970 by the database's clock, not any
-- process's, and are set by triggers so that no writer can forget them.
-- A migration that rebuilds the devices table must recreate the triggers.
-- SQLite dialect; the PostgreSQL file gives the same columns.

ALTER TABLE devices ADD COLUMN changed_us INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET changed_us = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER);
CREATE INDEX devices_changed ON devices (changed_us);

CREATE TABLE device_deletions (
	device_id  TEXT NOT NULL,
	deleted_us INTEGER NOT NULL
);
CREATE INDEX device_deletions_deleted ON device_deletions (deleted_us);

-- SQLite has no BEFORE trigger that sets NEW: the stamp is a second update
-- of the row, which the trigger's UPDATE OF does not match.
CREATE TRIGGER devices_changed_insert AFTER INSERT ON devices
BEGIN
	UPDATE devices SET changed_us = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) WHERE id = NEW.id;
END;

CREATE TRIGGER devices_changed_update AFTER UPDATE OF model, installed_on ON devices
BEGIN
	UPDATE devices SET changed_us = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) WHERE id = NEW.id;
END;

CREATE TRIGGER devices_deleted AFTER DELETE ON devices
BEGIN
	INSERT INTO device_deletions (device_id, deleted_us)
		VALUES (OLD.id, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
	DELETE FROM device_deletions
		WHERE deleted_us < CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) - 86400000000;
END;
