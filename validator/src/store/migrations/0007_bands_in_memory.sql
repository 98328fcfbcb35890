-- Version 6 -> 7: the LSH band index is kept in the writer's memory (store/bands.rs), rebuilt
-- from the accepted primary records' MinHash. The `lsh` table it replaces took 14 inserts at
-- random pages per accepted record, the largest write cost of ingest; this covering index, which
-- only grows at its end (ordered by arrival), is what the rebuild reads.
DROP TABLE IF EXISTS lsh;
CREATE INDEX IF NOT EXISTS records_bands ON records(received_at_ms, record_id, minhash)
    WHERE verdict = 'accepted' AND role = 'primary';
