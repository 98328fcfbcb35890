-- Version 21: each node's records counted by their verdict as it is now. `records_revoked` is
-- new; until now a node's counts were taken at ingest, so a node whose records were all revoked
-- for a failed cross-check still showed them all accepted, and the nodes' counts did not add up
-- to the network's. The trigger `records_revoked_count` (schema.sql) keeps them from now on.
ALTER TABLE nodes ADD COLUMN records_revoked INTEGER NOT NULL DEFAULT 0;
