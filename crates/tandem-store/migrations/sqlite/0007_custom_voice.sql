-- Tandem metadata, format version 7: custom voice.
--
-- Custom voice entities (projects, consents, training sets, voice models and their endpoints)
-- are five more kinds of asset in speech_assets, so that tenancy, paging, resource deletion,
-- backup and copy between regions treat them like Custom Speech entities. Azure lets the client
-- choose their ids (`PUT /customvoice/projects/{id}`); the row's id is a UUID derived from the
-- resource, the kind and that id, and the client's id is kept in `doc`.
--
-- Only the CHECK on `kind` changes: tables and columns stay as in format 6, so a metadata export
-- of format 6 (an older backup) imports into this format unchanged.
--
-- SQLite cannot alter a CHECK constraint, so speech_assets is rebuilt (create, copy, drop,
-- rename), in one transaction. (PostgreSQL: ALTER TABLE ... DROP CONSTRAINT / ADD CONSTRAINT.)

UPDATE tandem_meta SET format_version = 7 WHERE id = 1;

CREATE TABLE speech_assets_v7 (
    id TEXT PRIMARY KEY NOT NULL,
    resource_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    kind TEXT NOT NULL
        CHECK (kind IN ('dataset', 'model', 'evaluation', 'endpoint', 'copy-operation',
                        'voice-project', 'voice-consent', 'voice-trainingset', 'voice-model',
                        'voice-endpoint')),
    status TEXT NOT NULL CHECK (status IN ('NotStarted', 'Running', 'Succeeded', 'Failed')),
    display_name TEXT NOT NULL,
    description TEXT,
    locale TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_action_at TEXT NOT NULL,
    properties TEXT NOT NULL DEFAULT '{}',
    doc TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO speech_assets_v7
    SELECT id, resource_id, kind, status, display_name, description, locale, created_at,
           last_action_at, properties, doc
    FROM speech_assets;
DROP TABLE speech_assets;
ALTER TABLE speech_assets_v7 RENAME TO speech_assets;
CREATE INDEX speech_assets_list ON speech_assets (resource_id, kind, created_at, id);
