-- Lists: Member Center webhook clients, subscribers, list memberships, subscription events
-- and full list syncs. See docs/webhooks.md for the rules these tables implement.

-- A Member Center installation allowed to call the webhooks for one tenant. HMAC needs the
-- secret itself, so it is stored (never logged); during a rotation a client holds two.
CREATE TABLE webhook_clients (
  id          uuid PRIMARY KEY,
  tenant_id   uuid NOT NULL REFERENCES tenants(id),
  secrets     text[] NOT NULL CHECK (cardinality(secrets) BETWEEN 1 AND 2),
  created_at  timestamptz NOT NULL DEFAULT now(),
  rotated_at  timestamptz
);
CREATE INDEX webhook_clients_tenant ON webhook_clients (tenant_id);

-- Nonces seen per client; a row lives as long as its request's timestamp could be accepted.
CREATE TABLE webhook_nonces (
  client_id   uuid NOT NULL REFERENCES webhook_clients(id) ON DELETE CASCADE,
  nonce       text NOT NULL,
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (client_id, nonce)
);
CREATE INDEX webhook_nonces_expiry ON webhook_nonces (expires_at);

-- A tenant's list, keyed by the Member Center's list id (created by its first event or sync).
CREATE TABLE lists (
  tenant_id       uuid NOT NULL REFERENCES tenants(id),
  id              uuid NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  -- The newest completed sync: members older than synced_at and absent from it are removed.
  last_sync_id    uuid,
  synced_at       timestamptz,
  PRIMARY KEY (tenant_id, id)
);

-- People, keyed by the Member Center's subscriber id. email and status are last-writer-wins
-- registers stamped with the occurred_at of the event or sync that wrote them.
-- No foreign key here nor on list_members: a full-sync batch writes 1,000 rows of each, and a
-- per-row RI check would lock the one tenant (list) row 1,000 times per batch from every
-- concurrent batch. Rows are only written after the list (and so the tenant) is known to exist.
CREATE TABLE subscribers (
  tenant_id   uuid NOT NULL,
  id          uuid NOT NULL,
  email       text NOT NULL,
  status      text NOT NULL CHECK (status IN ('active', 'unsubscribed', 'bounced', 'complaint', 'suppressed')),
  updated_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);

-- Membership of a subscriber in a list. Rows are never deleted (history and reports keep
-- them); a member removed by a sync is status 'unsubscribed', reason 'sync_removed'.
-- Two independent registers: (status, reason, source_id) stamped status_at, and preferences
-- stamped prefs_at. seen_sync_* names the newest sync whose batches included the member.
CREATE TABLE list_members (
  tenant_id      uuid NOT NULL,
  list_id        uuid NOT NULL,
  subscriber_id  uuid NOT NULL,
  status         text NOT NULL CHECK (status IN ('active', 'unsubscribed', 'bounced', 'complaint', 'suppressed')),
  reason         text NOT NULL,
  source_id      uuid NOT NULL,
  status_at      timestamptz NOT NULL,
  preferences    jsonb NOT NULL DEFAULT '{}',
  prefs_at       timestamptz NOT NULL DEFAULT '-infinity',
  seen_sync_id   uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
  seen_sync_at   timestamptz NOT NULL DEFAULT '-infinity',
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, list_id, subscriber_id)
);

-- Every subscription event received, applied or not (stale ones are kept as received).
CREATE TABLE subscription_events (
  tenant_id      uuid NOT NULL REFERENCES tenants(id),
  event_id       uuid NOT NULL,
  event_type     text NOT NULL,
  list_id        uuid NOT NULL,
  subscriber_id  uuid NOT NULL,
  subscriber     jsonb NOT NULL,
  occurred_at    timestamptz NOT NULL,
  received_at    timestamptz NOT NULL DEFAULT now(),
  -- false when the membership already reflected something newer (out-of-order delivery).
  applied        boolean NOT NULL,
  client_id      uuid NOT NULL,
  PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX subscription_events_member ON subscription_events (tenant_id, list_id, subscriber_id, occurred_at);

-- A full list sync. sync_id is the Member Center's and global: a batch naming another
-- tenant or list than the sync's first batch is refused.
CREATE TABLE list_syncs (
  id                    uuid PRIMARY KEY,
  tenant_id             uuid NOT NULL REFERENCES tenants(id),
  list_id               uuid NOT NULL,
  batch_total           integer NOT NULL CHECK (batch_total >= 1),
  occurred_at           timestamptz NOT NULL,
  state                 text NOT NULL CHECK (state IN ('receiving', 'completed', 'superseded')),
  batches_received      integer NOT NULL DEFAULT 0,
  subscribers_received  integer NOT NULL DEFAULT 0,
  removed_count         integer,
  started_at            timestamptz NOT NULL DEFAULT now(),
  completed_at          timestamptz,
  FOREIGN KEY (tenant_id, list_id) REFERENCES lists (tenant_id, id)
);
CREATE INDEX list_syncs_list ON list_syncs (tenant_id, list_id, occurred_at DESC);

CREATE TABLE list_sync_batches (
  sync_id      uuid NOT NULL REFERENCES list_syncs(id),
  batch_no     integer NOT NULL,
  subscribers  integer NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sync_id, batch_no)
);

-- Tie-break for membership writes stamped with the same occurred_at: any non-active status
-- beats active, so an unsubscribe is never undone by an activation of the same instant.
CREATE FUNCTION list_status_rank(status text) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT CASE status WHEN 'active' THEN 0 WHEN 'unsubscribed' THEN 1 ELSE 2 END $$;
