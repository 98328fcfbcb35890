-- Version 7 -> 8: exact duplicates are found in the writer's in-memory dedup index
-- (store/bands.rs) beside the LSH bands. The index on text_key it replaces took an insert at a
-- random page per accepted record; the rebuild now reads each record's text key from the
-- covering index it already reads, which only grows at its end (ordered by arrival).
DROP INDEX IF EXISTS records_text_key;
DROP INDEX IF EXISTS records_bands;
CREATE INDEX IF NOT EXISTS records_bands ON records(received_at_ms, record_id, text_key, minhash)
    WHERE verdict = 'accepted' AND role = 'primary';
