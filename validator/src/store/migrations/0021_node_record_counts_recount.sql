-- Version 21, after the column: every node's four counts recounted from its records, in one
-- pass over them (there is no index by node).
UPDATE nodes SET records_accepted = c.accepted, records_duplicate = c.duplicate,
                 records_rejected = c.rejected, records_revoked = c.revoked
  FROM (SELECT node, SUM(verdict = 'accepted') AS accepted, SUM(verdict = 'duplicate') AS duplicate,
               SUM(verdict = 'rejected') AS rejected, SUM(verdict = 'revoked') AS revoked
          FROM records GROUP BY node) AS c
 WHERE c.node = nodes.node;
