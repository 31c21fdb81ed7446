-- The audit log: an append-only hash chain (docs/audit.md, ADR 0011).
-- Every column that enters the hash is stored exactly (event time as seconds + nanos,
-- not a microsecond timestamptz), so the chain can be recomputed from the rows alone.
CREATE TABLE audit_record (
    sequence        BIGINT      PRIMARY KEY,
    event_id        UUID        NOT NULL UNIQUE,
    event_seconds   BIGINT      NOT NULL,
    event_nanos     INTEGER     NOT NULL,
    service         TEXT        NOT NULL,
    principal       TEXT        NOT NULL,
    client          TEXT        NOT NULL,
    operation       TEXT        NOT NULL,
    key_name        TEXT        NOT NULL,
    key_version     BIGINT      NOT NULL,
    decision        INTEGER     NOT NULL,
    decision_reason TEXT        NOT NULL,
    outcome         TEXT        NOT NULL,
    outcome_reason  TEXT        NOT NULL,
    request_id      TEXT        NOT NULL,
    request_digest  BYTEA       NOT NULL,
    append_time     TIMESTAMPTZ NOT NULL,
    previous_hash   BYTEA       NOT NULL,
    hash            BYTEA       NOT NULL,
    CONSTRAINT audit_record_sequence_positive CHECK (sequence > 0)
);

-- QueryRecords filters (each ends in sequence for keyset paging)
CREATE INDEX audit_record_principal ON audit_record (principal, sequence);
CREATE INDEX audit_record_key ON audit_record (key_name, sequence) WHERE key_name <> '';
CREATE INDEX audit_record_time ON audit_record (event_seconds);

-- The chain head, signed and (with a TPM) extended into a TPM NV extend index.
CREATE TABLE audit_checkpoint (
    sequence        BIGINT      PRIMARY KEY,
    head_hash       BYTEA       NOT NULL,
    time_seconds    BIGINT      NOT NULL,
    time_nanos      INTEGER     NOT NULL,
    signature       BYTEA       NOT NULL,
    signing_key_pem TEXT        NOT NULL,
    anchor          TEXT        NOT NULL,
    anchor_value    BYTEA       NOT NULL
);

-- Append-only, also against the service's own mistakes: no row is ever updated or deleted.
-- (Whoever owns the database can still bypass this; the hash chain and the TPM anchor detect that.)
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_record_append_only BEFORE UPDATE OR DELETE ON audit_record
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_record_no_truncate BEFORE TRUNCATE ON audit_record
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
