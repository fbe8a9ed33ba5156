-- Tandem metadata on PostgreSQL, format version 6: model copy operations
-- (migrations/sqlite/0006): one more asset kind, 'copy-operation'.

UPDATE tandem_meta SET format_version = 6 WHERE id = 1;

ALTER TABLE speech_assets DROP CONSTRAINT speech_assets_kind_check;
ALTER TABLE speech_assets ADD CONSTRAINT speech_assets_kind_check
    CHECK (kind IN ('dataset', 'model', 'evaluation', 'endpoint', 'copy-operation'));
