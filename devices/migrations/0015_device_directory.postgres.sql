-- What lets each process keep the device directory (every device's model
-- and installation day, in memory) fresh by polling: changed_us stamps every
-- insert of a device and every update that sets its model or installation
-- day, and device_deletions keeps a tombstone of every delete for a day, so
-- that a process sees the writes of the others (a second instance, the
-- import CLI) by reading only what changed.
-- Stamps are microseconds since 1970 by the database's clock, not any
-- process's, and are set by triggers so that no writer can forget them.
-- clock_timestamp(), not now(): now() is the transaction's start, which
-- would widen the gap between a stamp and its commit.
-- A migration that rebuilds the devices table must recreate the triggers.
-- PostgreSQL dialect; the SQLite file of the same version gives the same
-- columns.

ALTER TABLE devices ADD COLUMN changed_us BIGINT NOT NULL DEFAULT 0;
UPDATE devices SET changed_us = (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
CREATE INDEX devices_changed ON devices (changed_us);

CREATE TABLE device_deletions (
	device_id  TEXT NOT NULL,
	deleted_us BIGINT NOT NULL
);
CREATE INDEX device_deletions_deleted ON device_deletions (deleted_us);

CREATE FUNCTION devices_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.changed_us := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
	RETURN NEW;
END
$$;
CREATE TRIGGER devices_changed BEFORE INSERT OR UPDATE OF model, installed_on ON devices
	FOR EACH ROW EXECUTE FUNCTION devices_stamp();

CREATE FUNCTION devices_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	now_us BIGINT := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
BEGIN
	INSERT INTO device_deletions (device_id, deleted_us) VALUES (OLD.id, now_us);
	DELETE FROM device_deletions WHERE deleted_us < now_us - 86400000000;
	RETURN OLD;
END
$$;
CREATE TRIGGER devices_deleted AFTER DELETE ON devices
	FOR EACH ROW EXECUTE FUNCTION devices_tombstone();

-- Statistics now, so that the first polls of a large registry plan an index
-- scan of devices_changed rather than a full scan; autovacuum keeps them.
ANALYZE devices;
