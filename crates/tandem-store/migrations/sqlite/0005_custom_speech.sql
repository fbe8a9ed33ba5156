-- Tandem metadata, format version 5: Custom Speech assets.
--
-- One generic, versioned table for every Custom Speech entity of a resource: datasets,
-- models, evaluations and endpoints. The columns are what every entity has and what lists
-- filter or sort on; the rest is two JSON documents: `properties` (the entity's Azure
-- `properties` object, e.g. acceptedLineCount) and `doc` (everything else the service keeps:
-- the kind, customProperties, the files and their blob keys). Blobs live under
-- `assets/<resource>/<asset>/` and are written before the row, so a listed asset is always
-- complete.

UPDATE tandem_meta SET format_version = 5 WHERE id = 1;

CREATE TABLE speech_assets (
    id TEXT PRIMARY KEY NOT NULL,
    resource_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('dataset', 'model', 'evaluation', 'endpoint')),
    status TEXT NOT NULL CHECK (status IN ('NotStarted', 'Running', 'Succeeded', 'Failed')),
    display_name TEXT NOT NULL,
    description TEXT,
    locale TEXT NOT NULL,
    -- RFC 3339, UTC, always 9 fractional digits, so text order is time order.
    created_at TEXT NOT NULL,
    last_action_at TEXT NOT NULL,
    properties TEXT NOT NULL DEFAULT '{}',
    doc TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX speech_assets_list ON speech_assets (resource_id, kind, created_at, id);
