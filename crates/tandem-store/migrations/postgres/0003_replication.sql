-- Tandem metadata on PostgreSQL, format version 3: paired-region replication
-- (migrations/sqlite/0003; randomblob becomes gen_random_uuid, julianday becomes extract(epoch)).

UPDATE tandem_meta SET format_version = 3 WHERE id = 1;

-- Random at creation (32 lowercase hex digits, a UUID's simple form), stable for the database's life.
ALTER TABLE tandem_meta ADD COLUMN store_id TEXT COLLATE "C";
UPDATE tandem_meta SET store_id = replace(gen_random_uuid()::text, '-', '')
    WHERE id = 1 AND store_id IS NULL;

ALTER TABLE speaker_changes ADD COLUMN hlc BIGINT NOT NULL DEFAULT 0;
ALTER TABLE speaker_profiles ADD COLUMN hlc BIGINT NOT NULL DEFAULT 0;
ALTER TABLE speaker_profiles ADD COLUMN reset_hlc BIGINT NOT NULL DEFAULT 0;
ALTER TABLE speaker_profiles ADD COLUMN reset_at TEXT COLLATE "C";
ALTER TABLE speaker_profiles ADD COLUMN deleted_hlc BIGINT;
ALTER TABLE speaker_profiles ADD COLUMN required_speech_secs DOUBLE PRECISION;
ALTER TABLE speaker_enrollments ADD COLUMN hlc BIGINT NOT NULL DEFAULT 0;

-- Backfill, as in SQLite (a fresh PostgreSQL database has no rows; kept for equivalence).
UPDATE speaker_changes SET hlc =
    CAST(round(extract(epoch FROM at::timestamptz) * 1000) AS BIGINT) * 65536 + (seq % 65536);
UPDATE speaker_profiles SET hlc = COALESCE(
    (SELECT min(c.hlc) FROM speaker_changes c WHERE c.profile_id = speaker_profiles.id AND c.op = 'create'),
    CAST(round(extract(epoch FROM created_at::timestamptz) * 1000) AS BIGINT) * 65536);
UPDATE speaker_profiles SET
    reset_hlc = COALESCE(
        (SELECT max(c.hlc) FROM speaker_changes c WHERE c.profile_id = speaker_profiles.id AND c.op = 'reset'),
        0),
    reset_at = (SELECT max(c.at) FROM speaker_changes c WHERE c.profile_id = speaker_profiles.id AND c.op = 'reset');
UPDATE speaker_profiles SET deleted_hlc = COALESCE(
    (SELECT min(c.hlc) FROM speaker_changes c WHERE c.profile_id = speaker_profiles.id AND c.op = 'delete'),
    CAST(round(extract(epoch FROM deleted_at::timestamptz) * 1000) AS BIGINT) * 65536)
    WHERE deleted_at IS NOT NULL;
UPDATE speaker_enrollments SET hlc = COALESCE(
    (SELECT min(c.hlc) FROM speaker_changes c WHERE c.enrollment_id = speaker_enrollments.id),
    CAST(round(extract(epoch FROM created_at::timestamptz) * 1000) AS BIGINT) * 65536);

CREATE TABLE replication_cursors (
    peer TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    store_id TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);
