-- Tandem metadata, format version 2: speaker recognition (text-independent profiles).
--
-- Built so that an ordered change log for paired-region replication can be read straight off:
-- every mutation gets a row in speaker_changes (monotonic seq, timestamp) in the same
-- transaction; enrollments are append-only (a reset tombstones them); a deleted profile is a
-- tombstone, never a missing row.

UPDATE tandem_meta SET format_version = 2 WHERE id = 1;

CREATE TABLE speaker_profiles (
    id TEXT PRIMARY KEY NOT NULL,
    resource_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    kind TEXT NOT NULL
        CHECK (kind IN ('text-independent-verification', 'text-independent-identification')),
    locale TEXT NOT NULL,
    -- RFC 3339, UTC, 9 fractional digits (text order is time order).
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- Totals over the live (not reset) enrollments.
    enrollments_count INTEGER NOT NULL DEFAULT 0,
    enrollments_secs REAL NOT NULL DEFAULT 0,
    speech_secs REAL NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'Enrolling' CHECK (status IN ('Enrolling', 'Enrolled')),
    -- The voice signature: renormalised mean of the live enrollment embeddings (little-endian
    -- f32), NULL while there are none.
    signature BLOB,
    -- Tombstone: set when the profile is deleted.
    deleted_at TEXT
);
CREATE INDEX speaker_profiles_list ON speaker_profiles (resource_id, kind, created_at, id);

CREATE TABLE speaker_enrollments (
    id TEXT PRIMARY KEY NOT NULL,
    profile_id TEXT NOT NULL REFERENCES speaker_profiles (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    audio_secs REAL NOT NULL,
    speech_secs REAL NOT NULL,
    -- Key of the enrollment audio in the blob store (speaker/<resource>/<profile>/<id>.wav).
    audio_key TEXT NOT NULL,
    -- 256 little-endian f32.
    embedding BLOB NOT NULL,
    -- Tombstone: set by a reset or a profile delete.
    deleted_at TEXT
);
CREATE INDEX speaker_enrollments_profile ON speaker_enrollments (profile_id, created_at, id);

-- The ordered change log: one row per mutation, in commit order.
CREATE TABLE speaker_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('create', 'enroll', 'reset', 'delete')),
    enrollment_id TEXT
);
