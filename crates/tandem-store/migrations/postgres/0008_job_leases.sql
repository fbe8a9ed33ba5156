-- Tandem metadata on PostgreSQL, format version 8: leases on background jobs
-- (migrations/sqlite/0008). Operational state: left out of metadata exports.

UPDATE tandem_meta SET format_version = 8 WHERE id = 1;

CREATE TABLE job_leases (
    job TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    holder TEXT COLLATE "C" NOT NULL,
    expires_at TEXT COLLATE "C" NOT NULL,
    generation BIGINT NOT NULL CHECK (generation > 0)
);
