-- TPM duplication (issue 14, ADR 0025).

-- A key's export policy, fixed at creation: the policy of every version it generates.
ALTER TABLE kms_key ADD COLUMN export_policy VARCHAR(32) NOT NULL DEFAULT 'NON_EXPORTABLE';
ALTER TABLE kms_key ADD CONSTRAINT kms_key_export_policy_ck CHECK (export_policy IN ('NON_EXPORTABLE', 'DUPLICABLE'));

-- What a version's TPM object allows, read from its public area when the version was made; policy_digest is
-- the object's authPolicy (NULL: none). duplicated: the version came in by TPM2_Import of a duplication blob.
ALTER TABLE kms_key_version ADD COLUMN export_policy VARCHAR(32) NOT NULL DEFAULT 'NON_EXPORTABLE';
ALTER TABLE kms_key_version ADD COLUMN policy_digest BYTEA;
ALTER TABLE kms_key_version ADD COLUMN duplicated    BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE kms_key_version ADD CONSTRAINT kms_key_version_export_policy_ck
    CHECK (export_policy IN ('NON_EXPORTABLE', 'DUPLICABLE'));

-- Versions made before this migration: the digest every such TPM object carries (Templates): AES-256-GCM keys
-- the AEAD marker (ADR 0009), imported EC/RSA keys the no-duplication digest (ADR 0022); the others had none.
UPDATE kms_key_version SET policy_digest = sha256(convert_to('tpmkms/tpm/aead-key/v1', 'UTF8'))
    WHERE protection_level = 'TPM' AND algorithm = 'AES_256_GCM';
UPDATE kms_key_version SET policy_digest = sha256(convert_to('tpmkms/tpm/no-duplication/v1', 'UTF8'))
    WHERE protection_level = 'TPM' AND imported AND algorithm NOT IN ('AES_256_GCM', 'HMAC_SHA256');
