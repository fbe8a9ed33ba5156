-- Tandem metadata on PostgreSQL, format version 5: Custom Speech assets
-- (migrations/sqlite/0005). `properties` and `doc` stay TEXT (not jsonb), so that they export
-- byte for byte as SQLite holds them.

UPDATE tandem_meta SET format_version = 5 WHERE id = 1;

CREATE TABLE speech_assets (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    resource_id TEXT COLLATE "C" NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    kind TEXT COLLATE "C" NOT NULL
        CONSTRAINT speech_assets_kind_check
        CHECK (kind IN ('dataset', 'model', 'evaluation', 'endpoint')),
    status TEXT COLLATE "C" NOT NULL
        CHECK (status IN ('NotStarted', 'Running', 'Succeeded', 'Failed')),
    display_name TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C",
    locale TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    last_action_at TEXT COLLATE "C" NOT NULL,
    properties TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    doc TEXT COLLATE "C" NOT NULL DEFAULT '{}'
);
CREATE INDEX speech_assets_list ON speech_assets (resource_id, kind, created_at, id);
