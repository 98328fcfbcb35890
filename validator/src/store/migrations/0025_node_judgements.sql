-- Version 25: a node's check history. Each row is one cross-check's verdict on one node and what
-- it did to the node's credibility, written with the credibility change
-- (`gleaner-validator nodes checks`, `GET /v1/admin/nodes/{node}/checks`). Checks judged before
-- this version are only in the node's `checks_passed` and `checks_failed` counts.
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
