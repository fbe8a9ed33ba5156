-- Tandem metadata on PostgreSQL, format version 4: text-dependent speaker verification
-- (migrations/sqlite/0004). PostgreSQL alters the CHECK in place: no table rebuild. The new
-- columns land last, where SQLite's rebuild puts them too.

UPDATE tandem_meta SET format_version = 4 WHERE id = 1;

ALTER TABLE speaker_enrollments ADD COLUMN passphrase TEXT COLLATE "C";

ALTER TABLE speaker_profiles DROP CONSTRAINT speaker_profiles_kind_check;
ALTER TABLE speaker_profiles ADD CONSTRAINT speaker_profiles_kind_check
    CHECK (kind IN ('text-independent-verification', 'text-independent-identification',
                    'text-dependent-verification'));
ALTER TABLE speaker_profiles ADD COLUMN passphrase TEXT COLLATE "C";
