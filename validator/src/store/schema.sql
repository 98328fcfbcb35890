-- Gleaner validator schema at the last version `migrate.rs` lists: what a new database gets.
-- Older databases are brought here by `migrate.rs` first. Times are Unix milliseconds UTC; keys
-- are base58 text; digests are 32-byte blobs.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS nodes (
    node              TEXT PRIMARY KEY,
    payout            TEXT NOT NULL,
    client            TEXT NOT NULL,
    registered_at_ms  INTEGER NOT NULL,
    last_seen_ms      INTEGER NOT NULL,
    credibility       REAL NOT NULL,
    checks_passed     INTEGER NOT NULL DEFAULT 0,
    checks_failed     INTEGER NOT NULL DEFAULT 0,
    records_accepted  INTEGER NOT NULL DEFAULT 0,
    records_duplicate INTEGER NOT NULL DEFAULT 0,
    records_rejected  INTEGER NOT NULL DEFAULT 0,
    jobs_failed       INTEGER NOT NULL DEFAULT 0,
    -- The network the node last leased from (`nodes::Network`); NULL for loopback or unseen.
    network           TEXT,
    -- When the node last gave back a check or tie-break job without its record, or said "no
    -- page" where the validator's fetch found the primary's; NULL if never. For
    -- `judging_pause_secs` after it the node gets no check or tie-break jobs.
    judging_given_back_ms INTEGER,
    -- The node's records revoked after they were accepted (a failed cross-check, a page gone on
    -- a later fetch). Each revoked record leaves the count of the verdict it had
    -- (`records_revoked_count` below), so the four counts are the node's records by their
    -- verdict now (version 21; until then the first three were counts at ingest).
    records_revoked   INTEGER NOT NULL DEFAULT 0,
    -- Set while the operator has the node suspended (`gleaner-validator nodes suspend`, version
    -- 23): no lease for it and no batch of its taken. NULL for a node free to work.
    suspended_at_ms   INTEGER,
    suspended_reason  TEXT
);

CREATE TABLE IF NOT EXISTS crawl_requests (
    id             INTEGER PRIMARY KEY,
    created_at_ms  INTEGER NOT NULL,
    requester      TEXT NOT NULL,
    scope_json     TEXT NOT NULL,
    sitemaps_json  TEXT NOT NULL,
    max_pages      INTEGER NOT NULL,
    max_depth      INTEGER NOT NULL,
    pages_queued   INTEGER NOT NULL DEFAULT 0,
    -- The records its pages brought (primary fetches), by their verdict now (version 24): ingest
    -- adds each batch's once per request; a revocation moves one to `records_revoked`
    -- (`records_revoked_request_count` below).
    records_accepted  INTEGER NOT NULL DEFAULT 0,
    records_duplicate INTEGER NOT NULL DEFAULT 0,
    records_rejected  INTEGER NOT NULL DEFAULT 0,
    records_revoked   INTEGER NOT NULL DEFAULT 0
);

-- Sitemaps named by crawl requests (and sitemaps those index), fetched by the validator itself.
-- state: queued | done | failed (error says why).
CREATE TABLE IF NOT EXISTS sitemaps (
    request_id     INTEGER NOT NULL,
    url            TEXT NOT NULL,
    depth          INTEGER NOT NULL,
    state          TEXT NOT NULL DEFAULT 'queued',
    added_at_ms    INTEGER NOT NULL,
    fetched_at_ms  INTEGER,
    urls_found     INTEGER NOT NULL DEFAULT 0,
    urls_queued    INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    PRIMARY KEY (request_id, url)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sitemaps_queued ON sitemaps(state, added_at_ms) WHERE state = 'queued';

-- The seen-set: every normalised URL ever queued.
CREATE TABLE IF NOT EXISTS urls (
    url          TEXT PRIMARY KEY,
    domain       TEXT NOT NULL,
    request_id   INTEGER NOT NULL,
    depth        INTEGER NOT NULL,
    added_at_ms  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS domains (
    domain           TEXT PRIMARY KEY,
    crawl_delay_ms   INTEGER NOT NULL DEFAULT 0,
    next_allowed_ms  INTEGER NOT NULL DEFAULT 0,
    active_leases    INTEGER NOT NULL DEFAULT 0,
    queued           INTEGER NOT NULL DEFAULT 0,
    failures         INTEGER NOT NULL DEFAULT 0
);
-- Ready domains in the lease order (next_allowed_ms, domain): a lease reads the first few entries
-- instead of sorting every ready domain (all new domains share next_allowed_ms = 0).
-- (Replaces domains_ready, an index on next_allowed_ms alone.)
DROP INDEX IF EXISTS domains_ready;
CREATE INDEX IF NOT EXISTS domains_ready_order ON domains(next_allowed_ms, domain) WHERE queued > 0;
-- The same order over domains with no lease out, for the default of one lease per domain: a lease
-- reads the first ready entries directly instead of walking past every domain whose one lease is
-- out (domains_ready_order filters active_leases row by row, so its cost grew with busy domains).
CREATE INDEX IF NOT EXISTS domains_idle_order ON domains(next_allowed_ms, domain)
    WHERE queued > 0 AND active_leases = 0;

-- Running totals, so hot paths read one row instead of summing a table.
-- `pending`: SUM(domains.queued) + SUM(domains.active_leases) (every lease call reports it), kept
-- by the statements that change those columns (`add_pending` in store/jobs.rs), not by triggers:
-- a trigger makes each such UPDATE open a statement journal (see migrations/0006).
CREATE TABLE IF NOT EXISTS counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
) WITHOUT ROWID;
-- Seeded from the table the first time (a database from before the counter existed).
INSERT OR IGNORE INTO counters(name, value)
    SELECT 'pending', COALESCE(SUM(queued), 0) + COALESCE(SUM(active_leases), 0) FROM domains;

-- Work to hand out: a first fetch ('primary'), a cross-check ('check') or a tie-break ('tiebreak').
CREATE TABLE IF NOT EXISTS tasks (
    id             INTEGER PRIMARY KEY,
    url            TEXT NOT NULL,
    domain         TEXT NOT NULL,
    request_id     INTEGER NOT NULL,
    depth          INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    check_id       INTEGER,
    excluded       TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    created_at_ms  INTEGER NOT NULL
);
-- Queued tasks only: a task leaves the index when it is leased and a finished one costs the index
-- nothing. (Version 2 indexed (domain, state, id) over every task ever made.)
CREATE INDEX IF NOT EXISTS tasks_queued ON tasks(domain, id) WHERE state = 'queued';
-- Queued check and tie-break jobs, by domain: for the lease, which gives them before the
-- domain's pages (`jobs::DOMAIN_JUDGING_TASKS_SQL`), and for giving up those no node took in time
-- (`jobs::UNCLAIMED_JOBS_SQL`, reading all of them). No version step: this file, run at every
-- open, makes it. (A second index of the same tasks by age, briefly made, is dropped.)
CREATE INDEX IF NOT EXISTS tasks_queued_judging ON tasks(domain, id)
    WHERE state = 'queued' AND kind <> 'primary';
DROP INDEX IF EXISTS tasks_judging_queued;
-- The same jobs by exclusion list: the lease reads past a long run of jobs the node may not take
-- one list at a time (`jobs::DOMAIN_JUDGING_LIST_SQL`) instead of one job at a time. Made at
-- open like the one above.
CREATE INDEX IF NOT EXISTS tasks_queued_judging_excluded ON tasks(domain, excluded, id)
    WHERE state = 'queued' AND kind <> 'primary';

CREATE TABLE IF NOT EXISTS leases (
    lease_id        TEXT PRIMARY KEY,
    task_id         INTEGER NOT NULL,
    node            TEXT NOT NULL,
    url             TEXT NOT NULL,
    domain          TEXT NOT NULL,
    issued_at_ms    INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL,
    state           TEXT NOT NULL,
    closed_at_ms    INTEGER,
    failure_reason  TEXT
);
-- Open leases only (expiry sweep, a node's open leases, the console's count): closing a lease
-- removes its entries and adds none. (Version 2 indexed every lease by state.)
CREATE INDEX IF NOT EXISTS leases_open_expiry ON leases(expires_at_ms) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS leases_open_node ON leases(node) WHERE state = 'open';

CREATE TABLE IF NOT EXISTS batches (
    batch_id        BLOB PRIMARY KEY,
    node            TEXT NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    epoch           INTEGER NOT NULL,
    record_count    INTEGER NOT NULL,
    points          INTEGER NOT NULL,
    receipt_json    BLOB NOT NULL
);

-- One row per record ever received in an ingested batch, whatever its verdict.
-- No index on record_id (since version 11): a record is found by its seq (the dedup index and
-- cross_checks keep it), and the lease check refuses a record already stored (its lease is done).
CREATE TABLE IF NOT EXISTS records (
    -- The row's number in arrival order: SQLite's rowid, named so that it never changes.
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
    -- The quality scores as JSON, for records stored before version 12 (and for any score
    -- without a code); '' when `quality` holds them.
    quality_json    TEXT NOT NULL,
    cluster_size    INTEGER NOT NULL DEFAULT 1,
    dup_of          BLOB,
    -- The record's JSON for records stored before version 9 (later ones: body_*).
    record_json     BLOB,
    -- GPT-2 token count of the text for the dataset's token_count column: stored by the first
    -- dataset export that counted it (ingest used to count at acceptance); NULL until then.
    token_count     INTEGER,
    -- Where the record's JSON is (store/bodies.rs): length bytes at body_offset of segment
    -- body_segment. Since version 9, instead of record_json; NULL for rejected records.
    body_segment    INTEGER,
    body_offset     INTEGER,
    body_len        INTEGER,
    -- The quality scores in their compact form (quality::encode_scores): since version 12,
    -- instead of quality_json.
    quality         BLOB
);
-- The export's index: (epoch, rowid) entries, each new one at the end (store/read.rs sorts an
-- epoch's record ids itself). Until version 9 it was (epoch, record_id), a random page per record.
CREATE INDEX IF NOT EXISTS records_export ON records(epoch) WHERE verdict = 'accepted' AND role = 'primary';
CREATE INDEX IF NOT EXISTS records_time ON records(received_at_ms);
-- A record revoked moves from its verdict's count in `nodes` to `records_revoked`. Only a
-- revocation changes a stored verdict, and it is rare: ingest's inserts do not fire this.
CREATE TRIGGER IF NOT EXISTS records_revoked_count AFTER UPDATE OF verdict ON records
WHEN NEW.verdict = 'revoked' AND OLD.verdict != 'revoked'
BEGIN
    UPDATE nodes SET records_accepted = records_accepted - (OLD.verdict = 'accepted'),
                     records_duplicate = records_duplicate - (OLD.verdict = 'duplicate'),
                     records_rejected = records_rejected - (OLD.verdict = 'rejected'),
                     records_revoked = records_revoked + 1
     WHERE node = OLD.node;
END;
-- The same move in the counts of the crawl request whose page the record is (a node's first
-- fetch of it; its lease names the task, the task the request).
CREATE TRIGGER IF NOT EXISTS records_revoked_request_count AFTER UPDATE OF verdict ON records
WHEN NEW.verdict = 'revoked' AND OLD.verdict != 'revoked' AND OLD.role = 'primary'
BEGIN
    UPDATE crawl_requests SET records_accepted = records_accepted - (OLD.verdict = 'accepted'),
                              records_duplicate = records_duplicate - (OLD.verdict = 'duplicate'),
                              records_rejected = records_rejected - (OLD.verdict = 'rejected'),
                              records_revoked = records_revoked + 1
     WHERE id = (SELECT t.request_id FROM leases l JOIN tasks t ON t.id = l.task_id
                  WHERE l.lease_id = OLD.lease_id);
END;

-- Every revocation, in the order it happened (`GET /v1/revocations`): a lab's dataset may hold a
-- record exported before it was revoked. Appended by the trigger below (version 22 listed the
-- records revoked before it); the record's own row keeps its verdict and reason as well.
CREATE TABLE IF NOT EXISTS revocations (
    seq        INTEGER PRIMARY KEY,
    record_id  BLOB NOT NULL,
    node       TEXT NOT NULL,
    url        TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    reason     TEXT NOT NULL
);
-- A node's own revocations (`GET /v1/revocations?node=KEY`), a page at a time.
CREATE INDEX IF NOT EXISTS revocations_node ON revocations(node, seq);
CREATE TRIGGER IF NOT EXISTS records_revocations_log AFTER UPDATE OF verdict ON records
WHEN NEW.verdict = 'revoked' AND OLD.verdict != 'revoked'
BEGIN
    INSERT INTO revocations(record_id, node, url, epoch, reason)
         VALUES (NEW.record_id, NEW.node, NEW.url, NEW.epoch, NEW.reason);
END;

-- The in-memory dedup index (store/bands.rs) is rebuilt from this table itself, read in rowid
-- (arrival) order: every accepted primary record's text key and MinHash. Versions 7 and 8 kept a
-- covering index for that (`records_bands`), one more copy of each MinHash written per record;
-- version 9 drops it.

-- The committed length of each record-body segment file (store/bodies.rs): bytes past it belong
-- to no committed row and are overwritten by the next append.
CREATE TABLE IF NOT EXISTS body_segments (
    segment  INTEGER PRIMARY KEY,
    bytes    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS cross_checks (
    id               INTEGER PRIMARY KEY,
    url              TEXT NOT NULL,
    primary_record   BLOB NOT NULL,
    primary_node     TEXT NOT NULL,
    check_record     BLOB,
    -- The records' seqs (version 11), for reading them back without an index on record_id.
    primary_seq      INTEGER,
    check_seq        INTEGER,
    check_node       TEXT,
    tiebreak_record  BLOB,
    tiebreak_node    TEXT,
    similarity       REAL,
    outcome          TEXT NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    resolved_at_ms   INTEGER,
    -- The validator's own fetch as one side of a dispute (version 18): its text's MinHash
    -- signature, kept when it disagrees and a third node decides: as the checker of a check no
    -- node got done (check_node 'validator'), as the auditor of an agreed check
    -- (outcome 'audit_disputed'), or as the third fetch of a dispute that agrees with neither
    -- node (outcome 'three_way': a fourth fetch, a node's, decides).
    validator_minhash BLOB
);

-- Checks each node said had no page, while the validator's fetch has not settled them: a node
-- holding `max_unsettled_unfound` of them (3 by default) is given no more checks. No version
-- step: this file, run at every open, makes the index in a database that lacks it.
CREATE INDEX IF NOT EXISTS cross_checks_unfound ON cross_checks(check_node)
    WHERE outcome = 'unfound';

-- A node's check history: one row per cross-check verdict on a node, written with the
-- credibility change it made (version 25; `nodes::Judgement`). Checks judged before version 25
-- are only in the node's counts.
CREATE TABLE IF NOT EXISTS node_judgements (
    seq                INTEGER PRIMARY KEY,
    node               TEXT NOT NULL,
    check_id           INTEGER NOT NULL,
    at_ms              INTEGER NOT NULL,
    -- 'passed', 'failed' or 'page_gone' (`nodes::CheckVerdict`).
    verdict            TEXT NOT NULL,
    credibility_before REAL NOT NULL,
    credibility_after  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS node_judgements_node ON node_judgements(node, seq);

-- Disputed cross-checks waiting for the validator's own fetch (version 15): one row each until
-- that fetch settles the dispute or, failing, hands the tie-break to a third node.
CREATE TABLE IF NOT EXISTS tiebreak_fetches (
    check_id      INTEGER PRIMARY KEY,
    url           TEXT NOT NULL,
    -- Where the check's task came from, for a third node's task if the validator's fetch fails.
    domain        TEXT NOT NULL,
    request_id    INTEGER NOT NULL,
    depth         INTEGER NOT NULL,
    queued_at_ms  INTEGER NOT NULL,
    -- Version 16: while the validator fetches the page, until when it holds the domain.
    held_until_ms INTEGER
);

-- Append-only. Balances are sums over it.
CREATE TABLE IF NOT EXISTS ledger (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    node       TEXT NOT NULL,
    payout     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    amount     INTEGER NOT NULL,
    batch_id   BLOB,
    record_id  BLOB,
    note       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS ledger_node ON ledger(node, seq);
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
-- Per epoch and payout key, the sum of that epoch's ledger amounts, kept by the trigger below
-- in the transaction of every ledger insert (since version 14): an epoch close reads one row per
-- payout key active in the epoch instead of summing the whole ledger.
CREATE TABLE IF NOT EXISTS ledger_totals (
    epoch   INTEGER NOT NULL,
    payout  TEXT NOT NULL,
    amount  INTEGER NOT NULL,
    PRIMARY KEY (epoch, payout)
) WITHOUT ROWID;
-- Per node and epoch, the same sums: a node's points (its total, its open epoch's, what a
-- penalty forfeits) are read from here, not summed over every ledger row the node ever earned.
CREATE TABLE IF NOT EXISTS node_ledger_totals (
    node    TEXT NOT NULL,
    epoch   INTEGER NOT NULL,
    amount  INTEGER NOT NULL,
    PRIMARY KEY (node, epoch)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS ledger_totals_add AFTER INSERT ON ledger
BEGIN
    INSERT INTO ledger_totals(epoch, payout, amount) VALUES (NEW.epoch, NEW.payout, NEW.amount)
    ON CONFLICT(epoch, payout) DO UPDATE SET amount = amount + excluded.amount;
    INSERT INTO node_ledger_totals(node, epoch, amount) VALUES (NEW.node, NEW.epoch, NEW.amount)
    ON CONFLICT(node, epoch) DO UPDATE SET amount = amount + excluded.amount;
END;

CREATE TABLE IF NOT EXISTS epochs (
    epoch           INTEGER PRIMARY KEY,
    closed_at_ms    INTEGER NOT NULL,
    root_json       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS epoch_leaves (
    epoch     INTEGER NOT NULL,
    claimant  TEXT NOT NULL,
    amount    INTEGER NOT NULL,
    PRIMARY KEY (epoch, claimant)
);
-- Per payout key, its cumulative ledger balance through the last closed epoch, before the floor
-- at 0 and the never-shrink rule that make a leaf's amount (since version 14): the next close adds
-- its own epoch's `ledger_totals` to these and replaces them. Only the last close's are kept.
CREATE TABLE IF NOT EXISTS epoch_balances (
    epoch    INTEGER NOT NULL,
    payout   TEXT NOT NULL,
    balance  INTEGER NOT NULL,
    PRIMARY KEY (epoch, payout)
) WITHOUT ROWID;
