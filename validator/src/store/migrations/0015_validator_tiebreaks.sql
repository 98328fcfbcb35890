-- Version 15: the validator settles disputed cross-checks with its own fetch. A disputed check
-- waits here until the validator has fetched its URL; if that fetch fails, the tie-break goes to
-- a third node as before.
CREATE TABLE IF NOT EXISTS tiebreak_fetches (
    check_id      INTEGER PRIMARY KEY,
    url           TEXT NOT NULL,
    -- Where the check's task came from, for a third node's task if the validator's fetch fails.
    domain        TEXT NOT NULL,
    request_id    INTEGER NOT NULL,
    depth         INTEGER NOT NULL,
    queued_at_ms  INTEGER NOT NULL
);
