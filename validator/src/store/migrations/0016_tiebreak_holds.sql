-- Version 16: the validator holds a disputed page's domain while it fetches it. The dispute
-- notes until when, so that no other pass takes the same domain meanwhile (a domain's rest alone
-- cannot tell the validator's hold from a booking for it).
ALTER TABLE tiebreak_fetches ADD COLUMN held_until_ms INTEGER;
