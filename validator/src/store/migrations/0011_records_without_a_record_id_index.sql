-- Version 10 -> 11: the records table loses its primary key on record_id, an index whose entry
-- for each new record went on a random page. Rows are found by seq instead, the rowid under a
-- name (so VACUUM cannot renumber it): the in-memory dedup index keeps each accepted record's
-- seq, and cross_checks keeps the seqs of the fetches it compares, filled in here for the checks
-- already open.
ALTER TABLE cross_checks ADD COLUMN primary_seq INTEGER;
ALTER TABLE cross_checks ADD COLUMN check_seq INTEGER;
UPDATE cross_checks
   SET primary_seq = (SELECT r.rowid FROM records r WHERE r.record_id = cross_checks.primary_record),
       check_seq = (SELECT r.rowid FROM records r WHERE r.record_id = cross_checks.check_record);

CREATE TABLE records_v11 (
    seq             INTEGER PRIMARY KEY,
    record_id       BLOB NOT NULL,
    batch_id        BLOB NOT NULL,
    node            TEXT NOT NULL,
    lease_id        TEXT NOT NULL,
    url             TEXT NOT NULL,
    role            TEXT NOT NULL,
    epoch           INTEGER NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    verdict         TEXT NOT NULL,
    reason          TEXT NOT NULL,
    points          INTEGER NOT NULL,
    text_key        BLOB NOT NULL,
    minhash         BLOB NOT NULL,
    quality_json    TEXT NOT NULL,
    cluster_size    INTEGER NOT NULL DEFAULT 1,
    dup_of          BLOB,
    record_json     BLOB,
    token_count     INTEGER,
    body_segment    INTEGER,
    body_offset     INTEGER,
    body_len        INTEGER
);
INSERT INTO records_v11(seq, record_id, batch_id, node, lease_id, url, role, epoch,
                        received_at_ms, verdict, reason, points, text_key, minhash, quality_json,
                        cluster_size, dup_of, record_json, token_count, body_segment, body_offset,
                        body_len)
    SELECT rowid, record_id, batch_id, node, lease_id, url, role, epoch, received_at_ms, verdict,
           reason, points, text_key, minhash, quality_json, cluster_size, dup_of, record_json,
           token_count, body_segment, body_offset, body_len
      FROM records ORDER BY rowid;
DROP TABLE records;
ALTER TABLE records_v11 RENAME TO records;
CREATE INDEX records_export ON records(epoch) WHERE verdict = 'accepted' AND role = 'primary';
CREATE INDEX records_time ON records(received_at_ms);
