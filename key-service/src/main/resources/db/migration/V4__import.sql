-- Import of wrapped keys (issue 12, docs/import-export.md).

-- An import-only key never generates versions: they come from ImportKeyVersion only.
ALTER TABLE kms_key ADD COLUMN import_only BOOLEAN NOT NULL DEFAULT FALSE;

-- Where a version's material came from. material_fingerprint (SHA-256 of the canonical material) stays with
-- the tombstone when the version is destroyed: a DESTROYED imported version can be re-imported with the same
-- material only.
ALTER TABLE kms_key_version ADD COLUMN imported             BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE kms_key_version ADD COLUMN import_job           VARCHAR(200);
ALTER TABLE kms_key_version ADD COLUMN import_time          TIMESTAMP WITH TIME ZONE;
ALTER TABLE kms_key_version ADD COLUMN material_fingerprint BYTEA;
ALTER TABLE kms_key_version ADD CONSTRAINT kms_key_version_import_ck
    CHECK (imported = (material_fingerprint IS NOT NULL));

-- Import jobs: an RSA wrapping key generated inside a protection level, used to unwrap key material.
-- PENDING_GENERATION (no blob yet) -> ACTIVE (blob, public key) -> EXPIRED (blob deleted, wrapping key destroyed).
CREATE SEQUENCE import_job_seq INCREMENT BY 50;
CREATE TABLE import_job (
    id                BIGINT       PRIMARY KEY,
    namespace         VARCHAR(63)  NOT NULL,
    job_id            VARCHAR(128) NOT NULL,
    method            VARCHAR(64)  NOT NULL,
    protection_level  VARCHAR(16)  NOT NULL,
    state             VARCHAR(32)  NOT NULL,
    backend_id        VARCHAR(32)  NOT NULL,
    wrapping_key_blob BYTEA,                    -- the backend's handle of the RSA wrapping key (ACTIVE only)
    public_key        BYTEA,                    -- DER SubjectPublicKeyInfo of the wrapping key (kept after expiry)
    attestation       BYTEA,                    -- TPM jobs: tpmkms.key.v1.KeyAttestation made at generation
    lifetime_seconds  BIGINT       NOT NULL,
    create_time       TIMESTAMP WITH TIME ZONE NOT NULL,
    generate_time     TIMESTAMP WITH TIME ZONE,
    expire_time       TIMESTAMP WITH TIME ZONE,
    expire_event_time TIMESTAMP WITH TIME ZONE,
    row_version       BIGINT       NOT NULL,
    CONSTRAINT import_job_name_uk UNIQUE (namespace, job_id),
    CONSTRAINT import_job_state_ck CHECK (state IN ('PENDING_GENERATION', 'ACTIVE', 'EXPIRED')),
    CONSTRAINT import_job_blob_ck CHECK ((state = 'ACTIVE') = (wrapping_key_blob IS NOT NULL)),
    CONSTRAINT import_job_lifetime_ck CHECK (lifetime_seconds > 0)
);
CREATE INDEX import_job_pending_ix ON import_job (create_time) WHERE state = 'PENDING_GENERATION';
CREATE INDEX import_job_expire_ix ON import_job (expire_time) WHERE state = 'ACTIVE';
