-- Observability API: API keys, request rate limits, message-list indexes and the suppression
-- audit trail. Owned by src/observability/ and src/auth/api-keys.ts.

-- API keys. Only the SHA-256 of the secret and a short display prefix are stored: the secret is
-- shown once by `key create` / `key rotate` and can never be recovered.
CREATE TABLE api_keys (
  id            uuid PRIMARY KEY,
  tenant_id     uuid NOT NULL REFERENCES tenants(id),
  name          text NOT NULL,
  prefix        text NOT NULL,
  secret_hash   bytea NOT NULL UNIQUE,
  scopes        text[] NOT NULL,
  environment   text NOT NULL CHECK (environment IN ('live', 'test')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  -- Set by rotation on the old key: it keeps working until then (the 24 h grace).
  expires_at    timestamptz,
  revoked_at    timestamptz,
  rotated_from  uuid REFERENCES api_keys(id)
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at DESC);

-- Sliding-window request counters, one row per key per second (key = 'tenant:<id>:<env>' or
-- 'authfail:<ip>'). Unlogged: losing them in a crash only forgives a minute of requests, and it
-- keeps the per-request upsert off the WAL.
CREATE UNLOGGED TABLE api_rate_counters (
  bucket  text NOT NULL,
  second  bigint NOT NULL,
  hits    integer NOT NULL,
  PRIMARY KEY (bucket, second)
);

-- Keyset pagination of GET /v1/messages (newest first) and of one recipient's messages.
CREATE INDEX messages_tenant_created ON messages (tenant_id, created_at DESC, id DESC);
CREATE INDEX messages_tenant_recipient ON messages (tenant_id, recipient, created_at DESC, id DESC);

CREATE INDEX suppressions_tenant_created ON suppressions (tenant_id, created_at DESC, email DESC);

-- Who added or removed a suppression through the API, and why. Rows are never updated.
CREATE TABLE suppression_audit (
  id          uuid PRIMARY KEY,
  tenant_id   uuid NOT NULL REFERENCES tenants(id),
  email       text NOT NULL,
  action      text NOT NULL CHECK (action IN ('added', 'removed')),
  actor       text NOT NULL,
  reason      text,
  comment     text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX suppression_audit_email ON suppression_audit (tenant_id, email, created_at);
