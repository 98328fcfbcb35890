-- Version 2 -> 3: the task queue and lease indexes hold live rows only (partial indexes), so
-- finishing a task or closing a lease removes index entries instead of moving them, and the
-- indexes stop growing with history. Every query that used the old indexes names the state
-- literally ('queued', 'open'), which is what lets SQLite use a partial index.
DROP INDEX IF EXISTS tasks_queue;
DROP INDEX IF EXISTS leases_open;
DROP INDEX IF EXISTS leases_node;
CREATE INDEX IF NOT EXISTS tasks_queued ON tasks(domain, id) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS leases_open_expiry ON leases(expires_at_ms) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS leases_open_node ON leases(node) WHERE state = 'open';
