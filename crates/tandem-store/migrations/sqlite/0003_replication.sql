-- Tandem metadata, format version 3: paired-region replication of speaker data.
--
-- Adds a store identity, hybrid logical clock (HLC) stamps on every speaker record and change,
-- the reset/delete markers the merge rules need (see the `replication` module of tandem-store),
-- and one cursor per peer whose origin log this store applies.
--
-- HLCs are INTEGER: milliseconds since the Unix epoch times 65536, plus a logical counter.
-- Existing rows are stamped from their change-log rows (or their timestamps when there is none);
-- the SQLite-specific bits (randomblob, julianday) have PostgreSQL equivalents
-- (gen_random_uuid, extract(epoch ...)).

UPDATE tandem_meta SET format_version = 3 WHERE id = 1;

-- Random at creation (32 lowercase hex digits, a UUID's simple form), stable for the file's life.
ALTER TABLE tandem_meta ADD COLUMN store_id TEXT;
UPDATE tandem_meta SET store_id = lower(hex(randomblob(16))) WHERE id = 1 AND store_id IS NULL;

ALTER TABLE speaker_changes ADD COLUMN hlc INTEGER NOT NULL DEFAULT 0;
-- Creation HLC (part of the immutable header).
ALTER TABLE speaker_profiles ADD COLUMN hlc INTEGER NOT NULL DEFAULT 0;
-- The newest reset seen: enrollments with hlc <= reset_hlc are tombstones.
ALTER TABLE speaker_profiles ADD COLUMN reset_hlc INTEGER NOT NULL DEFAULT 0;
ALTER TABLE speaker_profiles ADD COLUMN reset_at TEXT;
-- The earliest delete seen (NULL while live); deleted_at is that delete's time.
ALTER TABLE speaker_profiles ADD COLUMN deleted_hlc INTEGER;
-- The enrollment threshold last used to compute status (not replicated; lets a reset that
-- leaves later enrollments alive recompute the status the same way).
ALTER TABLE speaker_profiles ADD COLUMN required_speech_secs REAL;
ALTER TABLE speaker_enrollments ADD COLUMN hlc INTEGER NOT NULL DEFAULT 0;

-- Backfill. A change's HLC: its time in ms, with the low bits of seq as the logical counter, so
-- that log order is kept within one millisecond.
UPDATE speaker_changes SET hlc =
    CAST(round((julianday(at) - 2440587.5) * 86400000) AS INTEGER) * 65536 + (seq % 65536);
UPDATE speaker_profiles SET hlc = COALESCE(
    (SELECT min(c.hlc) FROM speaker_changes c WHERE c.profile_id = speaker_profiles.id AND c.op = 'create'),
    CAST(round((julianday(created_at) - 2440587.5) * 86400000) AS INTEGER) * 65536);
UPDATE speaker_profiles SET
    reset_hlc = COALESCE(
        (SELECT max(c.hlc) FROM speaker_changes c WHERE c.profile_id = speaker_profiles.id AND c.op = 'reset'),
        0),
    reset_at = (SELECT max(c.at) FROM speaker_changes c WHERE c.profile_id = speaker_profiles.id AND c.op = 'reset');
UPDATE speaker_profiles SET deleted_hlc = COALESCE(
    (SELECT min(c.hlc) FROM speaker_changes c WHERE c.profile_id = speaker_profiles.id AND c.op = 'delete'),
    CAST(round((julianday(deleted_at) - 2440587.5) * 86400000) AS INTEGER) * 65536)
    WHERE deleted_at IS NOT NULL;
UPDATE speaker_enrollments SET hlc = COALESCE(
    (SELECT min(c.hlc) FROM speaker_changes c WHERE c.enrollment_id = speaker_enrollments.id),
    CAST(round((julianday(created_at) - 2440587.5) * 86400000) AS INTEGER) * 65536);

-- Where this store stands with each peer's origin log.
CREATE TABLE replication_cursors (
    peer TEXT PRIMARY KEY NOT NULL,
    store_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
