-- Version 18: a check no node gets done (every lease expired, or every attempt failed) is made by
-- the validator's own fetch, and a share of agreed checks is audited by it. Where its text
-- disagrees, a third node decides, and the validator's side of that dispute is this signature
-- (it stores no record).
ALTER TABLE cross_checks ADD COLUMN validator_minhash BLOB;
