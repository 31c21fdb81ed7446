-- The key catalogue. State lives here, never inside a backend.
CREATE SEQUENCE kms_key_seq INCREMENT BY 50;
CREATE SEQUENCE kms_key_version_seq INCREMENT BY 50;

CREATE TABLE kms_key (
    id                      BIGINT       PRIMARY KEY,
    namespace               VARCHAR(63)  NOT NULL,
    name                    VARCHAR(128) NOT NULL,
    purpose                 VARCHAR(32)  NOT NULL,
    algorithm               VARCHAR(64)  NOT NULL,
    protection_level        VARCHAR(16)  NOT NULL,
    primary_version         INTEGER      NOT NULL,
    last_version            INTEGER      NOT NULL,  -- numbers are never reused
    rotation_period_seconds BIGINT,
    next_rotation_time      TIMESTAMP WITH TIME ZONE,
    create_time             TIMESTAMP WITH TIME ZONE NOT NULL,
    update_time             TIMESTAMP WITH TIME ZONE NOT NULL,
    row_version             BIGINT       NOT NULL,
    CONSTRAINT kms_key_name_uk UNIQUE (namespace, name),
    CONSTRAINT kms_key_rotation_ck CHECK (rotation_period_seconds IS NULL OR rotation_period_seconds > 0)
);
CREATE INDEX kms_key_next_rotation_ix ON kms_key (next_rotation_time) WHERE next_rotation_time IS NOT NULL;

CREATE TABLE kms_key_label (
    key_id      BIGINT      NOT NULL REFERENCES kms_key (id) ON DELETE CASCADE,
    label_key   VARCHAR(63) NOT NULL,
    label_value VARCHAR(63) NOT NULL,
    PRIMARY KEY (key_id, label_key)
);
CREATE INDEX kms_key_label_ix ON kms_key_label (label_key, label_value);

CREATE TABLE kms_key_version (
    id                 BIGINT      PRIMARY KEY,
    key_id             BIGINT      NOT NULL REFERENCES kms_key (id),
    number             INTEGER     NOT NULL,
    state              VARCHAR(32) NOT NULL,
    algorithm          VARCHAR(64) NOT NULL,
    protection_level   VARCHAR(16) NOT NULL,
    backend_id         VARCHAR(32) NOT NULL,
    key_blob           BYTEA,      -- NULL once destroyed (the tombstone stays)
    public_key         BYTEA,      -- DER SubjectPublicKeyInfo, asymmetric keys only
    create_time        TIMESTAMP WITH TIME ZONE NOT NULL,
    destroy_time       TIMESTAMP WITH TIME ZONE,  -- scheduled destruction
    destroy_event_time TIMESTAMP WITH TIME ZONE,  -- material destroyed
    compromise_time    TIMESTAMP WITH TIME ZONE,
    row_version        BIGINT      NOT NULL,
    CONSTRAINT kms_key_version_number_uk UNIQUE (key_id, number),
    CONSTRAINT kms_key_version_material_ck CHECK ((state = 'DESTROYED') = (key_blob IS NULL) OR state = 'PENDING_IMPORT')
);
CREATE INDEX kms_key_version_destroy_ix ON kms_key_version (destroy_time) WHERE state = 'DESTROY_SCHEDULED';
