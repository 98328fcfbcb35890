-- Version 19: the network each node last leased from (its /24 for IPv4, /48 for IPv6; NULL for
-- loopback or never seen), so that a check or tie-break goes to a node on another network.
ALTER TABLE nodes ADD COLUMN network TEXT;
