-- Keys bound to platform state (issue 20, ADR 0036).

-- A key's binding, fixed at creation: the SHA-256 PCRs ("7,16", ascending) and their values (32 bytes each,
-- concatenated in PCR order) that every version it generates is bound to. NULL: none.
ALTER TABLE kms_key ADD COLUMN platform_pcrs   VARCHAR(32);
ALTER TABLE kms_key ADD COLUMN platform_values BYTEA;
ALTER TABLE kms_key ADD CONSTRAINT kms_key_platform_binding_ck
    CHECK ((platform_pcrs IS NULL) = (platform_values IS NULL));

-- What a version's TPM object asserts, read from its blob when the version was made.
ALTER TABLE kms_key_version ADD COLUMN platform_pcrs   VARCHAR(32);
ALTER TABLE kms_key_version ADD COLUMN platform_values BYTEA;
ALTER TABLE kms_key_version ADD CONSTRAINT kms_key_version_platform_binding_ck
    CHECK ((platform_pcrs IS NULL) = (platform_values IS NULL));
