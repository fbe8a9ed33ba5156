-- Tandem metadata, format version 1.
-- Kept to portable SQL (TEXT/INTEGER, plain UNIQUE constraints) so a PostgreSQL copy is a port,
-- not a redesign.

CREATE TABLE tandem_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    format_version INTEGER NOT NULL
);
INSERT INTO tandem_meta (id, format_version) VALUES (1, 1);

CREATE TABLE resources (
    id TEXT PRIMARY KEY NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    concurrency_limit INTEGER NOT NULL CHECK (concurrency_limit >= 0),
    -- RFC 3339, UTC, always 9 fractional digits, so text order is time order.
    created_at TEXT NOT NULL,
    CONSTRAINT resources_region_name UNIQUE (region, name)
);
CREATE INDEX resources_region_created ON resources (region, created_at, name);

-- One row per key slot; the hash (lowercase hex SHA-256) is unique across all slots and
-- resources, so a presented key identifies at most one resource.
CREATE TABLE resource_keys (
    resource_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    slot TEXT NOT NULL CHECK (slot IN ('key1', 'key2')),
    key_hash TEXT NOT NULL,
    PRIMARY KEY (resource_id, slot)
);
CREATE UNIQUE INDEX resource_keys_hash ON resource_keys (key_hash);
