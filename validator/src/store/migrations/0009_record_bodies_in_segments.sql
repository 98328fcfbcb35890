-- Version 8 -> 9: the JSON of records stored from now on goes to append-only segment files
-- beside the database (store/bodies.rs); their rows say where. Records stored earlier keep
-- their JSON in record_json, where the export still reads it. And the in-memory dedup index is
-- rebuilt from the records table in rowid order, without the covering index of versions 7 and 8.
ALTER TABLE records ADD COLUMN body_segment INTEGER;
ALTER TABLE records ADD COLUMN body_offset INTEGER;
ALTER TABLE records ADD COLUMN body_len INTEGER;
-- The dedup index's rebuild reads the table in rowid order: its covering index goes.
DROP INDEX IF EXISTS records_bands;
CREATE TABLE IF NOT EXISTS body_segments (
    segment  INTEGER PRIMARY KEY,
    bytes    INTEGER NOT NULL
);
