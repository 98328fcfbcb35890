-- Version 9 -> 10: the export's index of accepted primary records is keyed by epoch alone, so
-- each new entry, (epoch, rowid), goes at the end of the index instead of on a random page of it
-- (version 9 keyed it by (epoch, record_id)). The export reads an epoch's record ids through it
-- and sorts them itself, in the same order as before.
DROP INDEX IF EXISTS records_epoch;
CREATE INDEX IF NOT EXISTS records_export ON records(epoch)
    WHERE verdict = 'accepted' AND role = 'primary';
