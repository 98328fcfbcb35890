-- Version 24: each crawl request counts the records its pages brought, by their verdict now
-- (`GET /v1/crawl-requests`): ingest adds a batch's once per request, and a revocation moves one
-- from its verdict to `records_revoked` (trigger `records_revoked_request_count`, schema.sql).
-- The step adds the columns; `migrate.rs` then counts the records stored before it.
ALTER TABLE crawl_requests ADD COLUMN records_accepted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE crawl_requests ADD COLUMN records_duplicate INTEGER NOT NULL DEFAULT 0;
ALTER TABLE crawl_requests ADD COLUMN records_rejected INTEGER NOT NULL DEFAULT 0;
ALTER TABLE crawl_requests ADD COLUMN records_revoked INTEGER NOT NULL DEFAULT 0;
