-- Version 8 -> 9: the JSON of records stored from now on goes to append-only segment files
-- beside the database (store/bodies.rs); their rows say where. Records stored earlier keep
-- their JSON in record_json, where the export still reads it.
ALTER TABLE records ADD COLUMN body_segment INTEGER;
ALTER TABLE records ADD COLUMN body_offset INTEGER;
ALTER TABLE records ADD COLUMN body_len INTEGER;
CREATE TABLE IF NOT EXISTS body_segments (
    segment  INTEGER PRIMARY KEY,
    bytes    INTEGER NOT NULL
);
