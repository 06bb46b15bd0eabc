-- Tracking (src/tracking): events this engine owes to others. Opens and clicks go to
-- message_events (001); one-click unsubscribes change list_members (002) and are queued here
-- for the Member Center, whose webhook delivery comes later (it sets delivered_at).

CREATE TABLE outbound_events (
  id            uuid PRIMARY KEY,
  tenant_id     uuid NOT NULL REFERENCES tenants(id),
  type          text NOT NULL,
  payload       jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  delivered_at  timestamptz
);
-- The delivery worker's queue: what is still owed, oldest first.
CREATE INDEX outbound_events_pending ON outbound_events (created_at) WHERE delivered_at IS NULL;
CREATE INDEX outbound_events_tenant ON outbound_events (tenant_id, created_at);
