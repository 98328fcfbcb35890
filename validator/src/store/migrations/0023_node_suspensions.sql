-- Version 23: the operator may suspend a node (`gleaner-validator nodes suspend`): while
-- `suspended_at_ms` is set it gets no lease and no batch of its is taken; `suspended_reason` says
-- why, to the node and in `nodes list`. Both NULL for a node free to work.
ALTER TABLE nodes ADD COLUMN suspended_at_ms INTEGER;
ALTER TABLE nodes ADD COLUMN suspended_reason TEXT;
