-- Tandem metadata, format version 6: model copy operations.
--
-- A copy between regions (Models_CopyTo, Models_Copy) is a long-running operation of the
-- *source* resource. It is kept as one more kind of Custom Speech asset, 'copy-operation', in
-- speech_assets: status, timestamps and a versioned `doc` (what is copied, where to, and the
-- grant that lets it in), so a restarted region resumes or fails it, and resource deletion,
-- backup and paging treat it like any other asset.
--
-- SQLite cannot alter a CHECK constraint, so speech_assets is rebuilt (create, copy, drop,
-- rename). No table references speech_assets, so nothing cascades. One transaction: a failure
-- changes nothing. (PostgreSQL: ALTER TABLE ... DROP CONSTRAINT / ADD CONSTRAINT.)

UPDATE tandem_meta SET format_version = 6 WHERE id = 1;

CREATE TABLE speech_assets_v6 (
    id TEXT PRIMARY KEY NOT NULL,
    resource_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    kind TEXT NOT NULL
        CHECK (kind IN ('dataset', 'model', 'evaluation', 'endpoint', 'copy-operation')),
    status TEXT NOT NULL CHECK (status IN ('NotStarted', 'Running', 'Succeeded', 'Failed')),
    display_name TEXT NOT NULL,
    description TEXT,
    locale TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_action_at TEXT NOT NULL,
    properties TEXT NOT NULL DEFAULT '{}',
    doc TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO speech_assets_v6
    SELECT id, resource_id, kind, status, display_name, description, locale, created_at,
           last_action_at, properties, doc
    FROM speech_assets;
DROP TABLE speech_assets;
ALTER TABLE speech_assets_v6 RENAME TO speech_assets;
CREATE INDEX speech_assets_list ON speech_assets (resource_id, kind, created_at, id);
