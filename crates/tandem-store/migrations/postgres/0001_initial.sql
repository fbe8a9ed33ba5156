-- Tandem metadata on PostgreSQL, format version 1 (the port of migrations/sqlite/0001).
--
-- The same logical schema as SQLite, table for table and column for column, in the same column
-- order, so that a metadata export of one backend imports into the other: TEXT stays TEXT,
-- INTEGER is BIGINT, REAL is DOUBLE PRECISION, BLOB is BYTEA. Every text column is
-- COLLATE "C" (bytewise, like SQLite's BINARY): keys, times and ids sort and compare the same
-- on both backends whatever the database's locale.

CREATE TABLE tandem_meta (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    format_version BIGINT NOT NULL
);
INSERT INTO tandem_meta (id, format_version) VALUES (1, 1);

CREATE TABLE resources (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    region TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    concurrency_limit BIGINT NOT NULL CHECK (concurrency_limit >= 0),
    -- RFC 3339, UTC, always 9 fractional digits, so text order is time order.
    created_at TEXT COLLATE "C" NOT NULL,
    CONSTRAINT resources_region_name UNIQUE (region, name)
);
CREATE INDEX resources_region_created ON resources (region, created_at, name);

CREATE TABLE resource_keys (
    resource_id TEXT COLLATE "C" NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    slot TEXT COLLATE "C" NOT NULL CHECK (slot IN ('key1', 'key2')),
    key_hash TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (resource_id, slot)
);
CREATE UNIQUE INDEX resource_keys_hash ON resource_keys (key_hash);
