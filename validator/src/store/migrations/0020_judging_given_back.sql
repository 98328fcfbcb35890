-- Version 20: when each node last gave back a check or tie-break without its record (released,
-- reported failed or let expire); for an hour after, it is given no check or tie-break jobs, so a
-- node cannot draw jobs and hand back the checks it does not want until it draws the one it does.
ALTER TABLE nodes ADD COLUMN judging_given_back_ms INTEGER;
