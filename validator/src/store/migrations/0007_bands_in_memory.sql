-- Version 6 -> 7: the dedup index (LSH bands and exact-text keys) is kept in the writer's memory
-- (store/bands.rs), rebuilt from the accepted primary records' MinHash and `text_key`. The `lsh`
-- table took 14 inserts at random pages per accepted record, the largest write cost of ingest,
-- and `records_text_key` one more; this covering index, which only grows at its end (ordered by
-- arrival), is what the rebuild reads.
DROP TABLE IF EXISTS lsh;
DROP INDEX IF EXISTS records_text_key;
CREATE INDEX IF NOT EXISTS records_bands ON records(received_at_ms, record_id, minhash, text_key)
    WHERE verdict = 'accepted' AND role = 'primary';
