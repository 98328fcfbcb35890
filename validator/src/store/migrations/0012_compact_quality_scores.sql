-- Version 11 -> 12: new records keep their quality scores in a compact binary form (a code and
-- an f64 per score, ~150 bytes) in `quality` instead of JSON in `quality_json` (~770 bytes): the
-- records table's rows shrink by half, and with them what each batch writes to the WAL and then
-- to the database. Rows stored before keep their JSON and are read as before.
ALTER TABLE records ADD COLUMN quality BLOB;
