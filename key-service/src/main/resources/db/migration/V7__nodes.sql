-- Nodes: enrollment, attestation and attestation-gated key release (issue 20, ADR 0038).
CREATE SEQUENCE kms_node_seq INCREMENT BY 50;
CREATE TABLE kms_node (
    id                   BIGINT       PRIMARY KEY,
    name                 VARCHAR(63)  NOT NULL,
    state                VARCHAR(32)  NOT NULL,
    ek_public            BYTEA        NOT NULL,
    ek_certificate       BYTEA        NOT NULL,
    ek_subject           VARCHAR(1024) NOT NULL,
    ek_issuer            VARCHAR(1024) NOT NULL,
    tpm_manufacturer     VARCHAR(64),
    tpm_model            VARCHAR(64),
    tpm_version          VARCHAR(64),
    ak_public            BYTEA        NOT NULL,
    ak_name              BYTEA        NOT NULL,
    pcrs                 VARCHAR(80)  NOT NULL,   -- "0,1,7", ascending
    golden_values        BYTEA,                   -- 32 bytes per PCR, in PCR order; NULL: none
    activation_hash      BYTEA,                   -- SHA-256 of the credential's secret, until activated
    activation_deadline  TIMESTAMP WITH TIME ZONE,
    challenge_nonce      BYTEA,                   -- the outstanding challenge, single use
    challenge_deadline   TIMESTAMP WITH TIME ZONE,
    create_time          TIMESTAMP WITH TIME ZONE NOT NULL,
    activate_time        TIMESTAMP WITH TIME ZONE,
    last_attest_time     TIMESTAMP WITH TIME ZONE,
    trusted_time         TIMESTAMP WITH TIME ZONE, -- the last attestation that passed
    untrusted_reason     VARCHAR(1024),
    revoke_time          TIMESTAMP WITH TIME ZONE,
    row_version          BIGINT       NOT NULL,
    CONSTRAINT kms_node_name_uk UNIQUE (name),
    CONSTRAINT kms_node_state_ck CHECK (state IN ('PENDING_ACTIVATION', 'ENROLLED', 'TRUSTED', 'UNTRUSTED', 'REVOKED')),
    CONSTRAINT kms_node_activation_ck CHECK ((state = 'PENDING_ACTIVATION') = (activation_hash IS NOT NULL))
);
