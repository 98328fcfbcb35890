-- Version 3 -> 4: ready domains with no lease out, in lease order, for the default of one lease
-- per domain (see schema.sql).
CREATE INDEX IF NOT EXISTS domains_idle_order ON domains(next_allowed_ms, domain)
    WHERE queued > 0 AND active_leases = 0;
