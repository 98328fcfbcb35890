-- Version 22: every revocation (record, node, URL, epoch, reason) in the order it happened, for
-- labs whose datasets may hold a record revoked after it was exported (`GET /v1/revocations`).
-- The trigger `records_revocations_log` (schema.sql) appends from now on; the records revoked
-- before this version are listed here in arrival order.
CREATE TABLE IF NOT EXISTS revocations (
    seq        INTEGER PRIMARY KEY,
    record_id  BLOB NOT NULL,
    node       TEXT NOT NULL,
    url        TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    reason     TEXT NOT NULL
);
INSERT INTO revocations(record_id, node, url, epoch, reason)
     SELECT record_id, node, url, epoch, reason FROM records r
      WHERE verdict = 'revoked'
        AND NOT EXISTS (SELECT 1 FROM revocations v WHERE v.record_id = r.record_id)
      ORDER BY seq;
