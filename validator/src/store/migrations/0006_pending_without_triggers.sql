-- Version 5 -> 6: the `pending` counter is kept by the statements that change `domains.queued`
-- and `domains.active_leases` (store/jobs.rs) instead of by triggers. A trigger made each such
-- UPDATE a multi-row write, for which SQLite opens a statement journal; releasing it walked the
-- transaction's whole in-memory sub-journal, once per record ingested and per job leased.
DROP TRIGGER IF EXISTS domains_pending_insert;
DROP TRIGGER IF EXISTS domains_pending_update;
DROP TRIGGER IF EXISTS domains_pending_delete;
-- Recounted from the table, so the counter is exact whatever happened before (and made if this
-- database predates it).
CREATE TABLE IF NOT EXISTS counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO counters(name, value) VALUES ('pending', 0);
UPDATE counters
   SET value = (SELECT COALESCE(SUM(queued), 0) + COALESCE(SUM(active_leases), 0) FROM domains)
 WHERE name = 'pending';
