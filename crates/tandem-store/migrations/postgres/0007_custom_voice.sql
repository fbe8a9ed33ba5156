-- Tandem metadata on PostgreSQL, format version 7: custom voice (migrations/sqlite/0007): five
-- more asset kinds; tables and columns stay as in format 6.

UPDATE tandem_meta SET format_version = 7 WHERE id = 1;

ALTER TABLE speech_assets DROP CONSTRAINT speech_assets_kind_check;
ALTER TABLE speech_assets ADD CONSTRAINT speech_assets_kind_check
    CHECK (kind IN ('dataset', 'model', 'evaluation', 'endpoint', 'copy-operation',
                    'voice-project', 'voice-consent', 'voice-trainingset', 'voice-model',
                    'voice-endpoint'));
