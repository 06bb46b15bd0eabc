-- Outbound webhooks (src/webhooks/, docs/webhooks.md "Outbound webhooks"): per-tenant endpoints,
-- the delivery queue, and the triggers that turn changes into outbound_events in the changing
-- transaction. Owned by src/webhooks/, which also owns outbound_events (004) from here on.

-- The event vocabulary, mirrored by WEBHOOK_EVENT_TYPES in src/webhooks/event-types.ts.
CREATE FUNCTION webhook_event_types() RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY[
    'message.sent', 'message.delivered', 'message.delivery_delayed', 'message.bounced', 'message.complained',
    'message.opened', 'message.clicked', 'message.failed', 'message.suppressed',
    'subscription.unsubscribed', 'suppression.created', 'suppression.deleted',
    'send_job.started', 'send_job.completed', 'send_job.failed', 'send_job.cancelled']
$$;

CREATE TABLE webhook_endpoints (
  id                     uuid PRIMARY KEY,
  tenant_id              uuid NOT NULL REFERENCES tenants(id),
  url                    text NOT NULL,
  description            text,
  -- NULL: every event type.
  event_types            text[] CHECK (event_types <@ webhook_event_types() AND cardinality(event_types) >= 1),
  status                 text NOT NULL CHECK (status IN ('enabled', 'disabled')),
  disabled_reason        text,
  -- AES-256-GCM (src/webhooks/secret-box.ts); the previous secret keeps signing until its expiry.
  secret_enc             bytea NOT NULL,
  old_secret_enc         bytea,
  old_secret_expires_at  timestamptz,
  -- Start of the current run of failed attempts; cleared by any success. Five days: disabled.
  failing_since          timestamptz,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at DESC, id DESC);
-- The triggers' "does anyone listen?" probe.
CREATE INDEX webhook_endpoints_enabled ON webhook_endpoints (tenant_id) WHERE status = 'enabled';

-- One row per (event, endpoint): what is owed, and the last attempt's outcome. No foreign keys:
-- fan-out writes thousands of rows per statement, and a per-row RI check would cost more than
-- the insert (endpoints are deleted with their deliveries by src/webhooks/endpoints.ts).
CREATE TABLE webhook_deliveries (
  id                uuid PRIMARY KEY,
  tenant_id         uuid NOT NULL,
  endpoint_id       uuid NOT NULL,
  event_id          uuid NOT NULL,
  event_type        text NOT NULL,
  status            text NOT NULL CHECK (status IN ('pending', 'delivering', 'succeeded', 'failed')),
  attempts          integer NOT NULL DEFAULT 0,
  next_attempt_at   timestamptz NOT NULL DEFAULT now(),
  lease_until       timestamptz,
  leased_by         text,
  last_attempt_at   timestamptz,
  response_status   integer,
  latency_ms        integer,
  response_excerpt  text,
  last_error        text,
  -- The event's creation: "change to delivery" latency is delivered_at - event_created_at.
  event_created_at  timestamptz NOT NULL,
  delivered_at      timestamptz,
  UNIQUE (event_id, endpoint_id)
);
-- The claim: per endpoint, due first (round-robin over endpoints keeps tenants apart).
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (lease_until) WHERE status = 'delivering';
-- GET /v1/webhook-endpoints/{id}/deliveries, newest first.
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);

-- delivered_at now means "every delivery owed for it has succeeded" (NULL while one is owed, and
-- for events no endpoint was subscribed to); the worker reads webhook_deliveries, not this index.
DROP INDEX outbound_events_pending;


-- Functions and triggers on these tables: src/db/functions/*.sql (re-applied by migrate, never copied here).
