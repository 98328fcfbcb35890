-- Version 1 -> 2: the LSH bands in a WITHOUT ROWID table keyed by (band, key), one b-tree instead
-- of a rowid table plus an index. The first row inserted for a (band, key) is the one kept: the
-- version 1 look-up returned it (index order is (band, key, rowid)), so dedup answers the same.
CREATE TABLE lsh_v2 (
    band       INTEGER NOT NULL,
    key        INTEGER NOT NULL,
    record_id  BLOB NOT NULL,
    PRIMARY KEY (band, key)
) WITHOUT ROWID;
INSERT OR IGNORE INTO lsh_v2(band, key, record_id)
    SELECT band, key, record_id FROM lsh ORDER BY rowid;
DROP TABLE lsh;
ALTER TABLE lsh_v2 RENAME TO lsh;
