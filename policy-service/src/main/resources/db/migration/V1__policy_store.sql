-- The policy store (docs/authorization.md): operator policies with every
-- version kept, role bindings never hard-deleted, and one store revision that
-- every change bumps in its own transaction (replicas poll it to reload).
CREATE TABLE policy (
    id             TEXT    PRIMARY KEY,
    latest_version BIGINT  NOT NULL,
    deleted        BOOLEAN NOT NULL,
    row_version    BIGINT  NOT NULL       -- optimistic lock
);

CREATE TABLE policy_version (
    policy_id   TEXT    NOT NULL REFERENCES policy (id),
    version     BIGINT  NOT NULL,
    description TEXT    NOT NULL,
    text        TEXT    NOT NULL,         -- Cedar source; empty on a deletion
    deleted     BOOLEAN NOT NULL,         -- this version is the deletion
    created_by  TEXT    NOT NULL,
    create_time TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (policy_id, version)
);

CREATE SEQUENCE role_binding_seq;
CREATE TABLE role_binding (
    seq           BIGINT  PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,   -- "rb-<seq>"
    subject_kind  TEXT    NOT NULL,          -- USER, GROUP, REALM_ROLE, CLIENT_ROLE, CLIENT
    subject_value TEXT    NOT NULL,
    role          TEXT    NOT NULL,          -- ADMIN, USER, DUPLICATOR, AUDITOR, VIEWER
    namespace     TEXT    NOT NULL,          -- '' with key_name '': the deployment
    key_name      TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    created_by    TEXT    NOT NULL,
    create_time   TIMESTAMP WITH TIME ZONE NOT NULL,
    deleted       BOOLEAN NOT NULL,
    deleted_by    TEXT,
    delete_time   TIMESTAMP WITH TIME ZONE,
    row_version   BIGINT  NOT NULL
);
-- one live binding per (subject, role, resource); deleted ones stay as history
CREATE UNIQUE INDEX role_binding_live ON role_binding (subject_kind, subject_value, role, namespace, key_name)
    WHERE NOT deleted;

CREATE TABLE store_revision (
    id           INT     PRIMARY KEY CHECK (id = 1),
    revision     BIGINT  NOT NULL,
    bootstrapped BOOLEAN NOT NULL
);
INSERT INTO store_revision (id, revision, bootstrapped) VALUES (1, 0, false);
