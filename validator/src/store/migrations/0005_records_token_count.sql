-- Version 4 -> 5: each record's GPT-2 token count, counted once at acceptance so that dataset
-- exports do not count it again. Records stored earlier keep NULL; the export counts those.
ALTER TABLE records ADD COLUMN token_count INTEGER;
