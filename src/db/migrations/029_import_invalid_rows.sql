-- The first invalid rows of a contact import, with their line numbers and why (src/lists/import.ts):
-- [{"line": 7, "reason": "..."}], at most MAX_INVALID_REPORTED of them; rows_invalid counts them all.
ALTER TABLE contact_imports ADD COLUMN invalid_rows jsonb NOT NULL DEFAULT '[]';
