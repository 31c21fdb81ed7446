-- The transactional outbox of audit events (docs/audit.md). A state change and
-- its event commit together; use operations write theirs (group commit) before
-- they answer. The forwarder ships rows to the audit service and deletes them
-- once acknowledged.
CREATE TABLE audit_outbox (
    id         BIGSERIAL PRIMARY KEY,
    event_id   UUID        NOT NULL,
    payload    BYTEA       NOT NULL,  -- tpmkms.audit.v1.AuditEvent, serialized
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
);
