-- Version 24, after its columns: every crawl request's records counted by verdict, from the
-- records a node fetched for it (primary fetches only: checks and tie-breaks are the network's
-- own), in one grouped pass over the records.
CREATE TEMP TABLE request_tally AS
    SELECT t.request_id AS id,
           SUM(r.verdict = 'accepted') AS accepted,
           SUM(r.verdict = 'duplicate') AS duplicate,
           SUM(r.verdict = 'rejected') AS rejected,
           SUM(r.verdict = 'revoked') AS revoked
      FROM records r
      JOIN leases l ON l.lease_id = r.lease_id
      JOIN tasks t ON t.id = l.task_id
     WHERE r.role = 'primary'
     GROUP BY t.request_id;
UPDATE crawl_requests
   SET records_accepted = tally.accepted, records_duplicate = tally.duplicate,
       records_rejected = tally.rejected, records_revoked = tally.revoked
  FROM request_tally AS tally
 WHERE tally.id = crawl_requests.id;
DROP TABLE request_tally;
