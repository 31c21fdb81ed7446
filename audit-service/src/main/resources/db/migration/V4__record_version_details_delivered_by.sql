-- Canonical record version 2 (ADR 0023): what a call asked (details) and which authenticated client
-- delivered the event (delivered_by, written by the audit service, never by the sender), both hashed.
-- Existing rows keep version 1 and are verified with the version-1 encoding; they stay unchanged
-- (adding a column with a constant default rewrites no row, so the append-only triggers never fire).
ALTER TABLE audit_record ADD COLUMN record_version SMALLINT NOT NULL DEFAULT 1;
ALTER TABLE audit_record ADD COLUMN details TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_record ADD COLUMN delivered_by TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_record ADD CONSTRAINT audit_record_version_known CHECK (record_version IN (1, 2));
