-- Foundation: tenants, transactional (proxy) send jobs, idempotency, the messages outbox,
-- the message event timeline and the suppression list.

CREATE TABLE tenants (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per POST /v1/send-jobs: the content shared by all of its messages.
CREATE TABLE proxy_jobs (
  id                uuid PRIMARY KEY,
  tenant_id         uuid NOT NULL REFERENCES tenants(id),
  message_type      text NOT NULL CHECK (message_type IN ('newsletter', 'transactional')),
  from_address      text NOT NULL,
  subject           text NOT NULL,
  html              text NOT NULL,
  text_body         text NOT NULL,
  list_unsubscribe  jsonb,
  idempotency_key   text NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX proxy_jobs_tenant_created ON proxy_jobs (tenant_id, created_at DESC);

-- Idempotency records, written in the same transaction as the job and its messages.
CREATE TABLE idempotency_keys (
  tenant_id     uuid NOT NULL REFERENCES tenants(id),
  key           text NOT NULL,
  request_hash  text NOT NULL,
  proxy_job_id  uuid NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- The outbox and the record of every recipient of every send.
CREATE TABLE messages (
  id                   uuid PRIMARY KEY,
  tenant_id            uuid NOT NULL REFERENCES tenants(id),
  proxy_job_id         uuid REFERENCES proxy_jobs(id),
  recipient            text NOT NULL,
  status               text NOT NULL CHECK (status IN (
                         'queued', 'sending', 'sent', 'delivered', 'opened', 'clicked',
                         'bounced', 'complained', 'suppressed', 'failed', 'expired', 'cancelled')),
  tags                 jsonb NOT NULL DEFAULT '{}',
  headers              jsonb NOT NULL DEFAULT '{}',
  attempts             integer NOT NULL DEFAULT 0,
  next_attempt_at      timestamptz NOT NULL DEFAULT now(),
  lease_until          timestamptz,
  leased_by            text,
  provider_message_id  text,
  last_error           text,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  sent_at              timestamptz
);
-- The dispatcher's two claim paths: due queued messages, and leases that expired.
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE status = 'queued';
CREATE INDEX messages_leased ON messages (lease_until) WHERE status = 'sending';
CREATE INDEX messages_proxy_job ON messages (proxy_job_id) WHERE proxy_job_id IS NOT NULL;
CREATE INDEX messages_provider_id ON messages (provider_message_id) WHERE provider_message_id IS NOT NULL;

-- Every message's timeline. dedupe_key is the event's natural key, so a repeat is a no-op.
CREATE TABLE message_events (
  id           uuid PRIMARY KEY,
  tenant_id    uuid NOT NULL REFERENCES tenants(id),
  message_id   uuid NOT NULL REFERENCES messages(id),
  type         text NOT NULL,
  occurred_at  timestamptz NOT NULL,
  recorded_at  timestamptz NOT NULL DEFAULT now(),
  data         jsonb NOT NULL DEFAULT '{}',
  dedupe_key   text UNIQUE
);
CREATE INDEX message_events_message ON message_events (message_id, occurred_at);

-- Addresses a tenant must never send to. Emails are stored lower-cased.
CREATE TABLE suppressions (
  tenant_id        uuid NOT NULL REFERENCES tenants(id),
  email            text NOT NULL,
  reason           text NOT NULL,
  source           text NOT NULL,
  source_event_id  uuid,
  diagnostic       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, email)
);
