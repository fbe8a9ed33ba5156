-- Tandem metadata, format version 4: text-dependent speaker verification (passphrases).
--
-- Widens speaker_profiles.kind to 'text-dependent-verification', adds the profile's passphrase
-- (derived, like the totals, from its live enrollments: the earliest one's) and each
-- enrollment's passphrase (what was said; NULL for text-independent enrollments).
--
-- SQLite cannot alter a CHECK constraint, so speaker_profiles is rebuilt (create, copy, drop,
-- rename: https://sqlite.org/lang_altertable.html#otheralter). sqlx 0.8 runs every SQLite
-- migration inside a transaction (it ignores `-- no-transaction` there), where
-- `PRAGMA foreign_keys = OFF` has no effect; dropping the old table would then cascade-delete
-- every enrollment. So the enrollments are copied aside first and put back after the rename
-- (the foreign key names the table, so it then points at the new one). All of it is one
-- transaction: a failure changes nothing. (PostgreSQL: ALTER TABLE ... DROP CONSTRAINT / ADD
-- CONSTRAINT and two ADD COLUMNs.)

UPDATE tandem_meta SET format_version = 4 WHERE id = 1;

ALTER TABLE speaker_enrollments ADD COLUMN passphrase TEXT;
CREATE TABLE speaker_enrollments_v4_copy AS SELECT * FROM speaker_enrollments;

CREATE TABLE speaker_profiles_v4 (
    id TEXT PRIMARY KEY NOT NULL,
    resource_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    kind TEXT NOT NULL
        CHECK (kind IN ('text-independent-verification', 'text-independent-identification',
                        'text-dependent-verification')),
    locale TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    enrollments_count INTEGER NOT NULL DEFAULT 0,
    enrollments_secs REAL NOT NULL DEFAULT 0,
    speech_secs REAL NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'Enrolling' CHECK (status IN ('Enrolling', 'Enrolled')),
    signature BLOB,
    deleted_at TEXT,
    hlc INTEGER NOT NULL DEFAULT 0,
    reset_hlc INTEGER NOT NULL DEFAULT 0,
    reset_at TEXT,
    deleted_hlc INTEGER,
    required_speech_secs REAL,
    -- Text-dependent: the passphrase of the earliest live enrollment (NULL while none).
    passphrase TEXT
);
INSERT INTO speaker_profiles_v4 (id, resource_id, kind, locale, created_at, updated_at,
    enrollments_count, enrollments_secs, speech_secs, status, signature, deleted_at, hlc,
    reset_hlc, reset_at, deleted_hlc, required_speech_secs)
SELECT id, resource_id, kind, locale, created_at, updated_at, enrollments_count,
    enrollments_secs, speech_secs, status, signature, deleted_at, hlc, reset_hlc, reset_at,
    deleted_hlc, required_speech_secs
FROM speaker_profiles;
DROP TABLE speaker_profiles;
ALTER TABLE speaker_profiles_v4 RENAME TO speaker_profiles;
CREATE INDEX speaker_profiles_list ON speaker_profiles (resource_id, kind, created_at, id);

-- The drop cascaded to the enrollments: put them back, unchanged.
INSERT INTO speaker_enrollments SELECT * FROM speaker_enrollments_v4_copy;
DROP TABLE speaker_enrollments_v4_copy;
