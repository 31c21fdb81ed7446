-- The secret that authenticates this service's page tokens (service-support PageTokens, ADR 0018).
-- One row per deployment, made by the first replica that needs it; every replica reads the same one.
CREATE TABLE page_token_secret (
  id         SMALLINT PRIMARY KEY CHECK (id = 1),
  secret     BYTEA NOT NULL CHECK (octet_length(secret) >= 32),
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
