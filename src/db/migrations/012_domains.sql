-- Sending domains (src/domains, the one owner of these tables): a tenant's domains, the DKIM
-- keys we generated for them and the tenant's default sender. Status vocabularies mirror
-- DOMAIN_STATUSES and DKIM_KEY_STATES in src/domains/status.ts.

CREATE TABLE sending_domains (
  id              uuid PRIMARY KEY,
  tenant_id       uuid NOT NULL REFERENCES tenants(id),
  name            text NOT NULL CHECK (name = lower(name) AND length(name) BETWEEN 1 AND 253),
  -- Host of the envelope sender (MAIL FROM): "<RETURN_PATH_SUBDOMAIN>.<name>", fixed at creation.
  return_path     text NOT NULL,
  -- "<TRACKING_SUBDOMAIN>.<name>" when the operator configured TRACKING_CNAME_TARGET at creation.
  tracking_host   text,
  status          text NOT NULL DEFAULT 'not_started'
                  CHECK (status IN ('not_started', 'pending', 'verified', 'failed', 'temporary_failure')),
  -- Why the domain is not verified, naming the record (e.g. "DKIM TXT at se…._domainkey.x: not found").
  status_reason   text,
  -- Per-record outcome of the last check: {"<type> <name>": {"status": ..., "detail": ...}}.
  record_status   jsonb NOT NULL DEFAULT '{}',
  created_at      timestamptz NOT NULL DEFAULT now(),
  verified_at     timestamptz,
  last_checked_at timestamptz,
  -- Start of the current attempt to (re)verify: absent records count as pending for 72 h from it.
  checking_since  timestamptz NOT NULL DEFAULT now(),
  -- When the scheduled re-check looks again (backoff while pending, daily once verified).
  next_check_at   timestamptz,
  UNIQUE (tenant_id, name)
);
-- One tenant at a time holds a domain verified; others may add it (a squatter cannot block the owner).
CREATE UNIQUE INDEX sending_domains_verified_once ON sending_domains (name) WHERE status = 'verified';
CREATE INDEX sending_domains_tenant_created ON sending_domains (tenant_id, created_at DESC, id DESC);
CREATE INDEX sending_domains_due ON sending_domains (next_check_at) WHERE next_check_at IS NOT NULL;

-- RSA-2048 keys; the private key is AES-256-GCM encrypted (src/secrets.ts encryptSecret).
-- 'active' signs mail; 'next' is a rotation's new key, published but not yet seen in DNS: it
-- becomes active (and the old key is dropped) at the first check that finds it.
CREATE TABLE domain_dkim_keys (
  id              uuid PRIMARY KEY,
  domain_id       uuid NOT NULL REFERENCES sending_domains(id) ON DELETE CASCADE,
  selector        text NOT NULL,
  state           text NOT NULL CHECK (state IN ('active', 'next')),
  public_key      text NOT NULL,      -- base64 DER SubjectPublicKeyInfo, the DNS record's p=
  private_key_enc text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (domain_id, selector)
);
CREATE UNIQUE INDEX domain_dkim_keys_one_per_state ON domain_dkim_keys (domain_id, state);

-- The address list send jobs use when they name no `from` (PATCH /v1/account {default_from}).
-- It must belong to one of the tenant's domains; it goes with the domain.
CREATE TABLE default_senders (
  tenant_id  uuid PRIMARY KEY REFERENCES tenants(id),
  address    text NOT NULL,
  domain_id  uuid NOT NULL REFERENCES sending_domains(id) ON DELETE CASCADE,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Reports' `identity` filter (src/observability/reports.ts): the per-tenant daily roll-up again,
-- per sending identity (the From address's domain, lower-cased, as GET /v1/messages?identity=
-- compares it) and per template. template = '' holds the identity's totals over all mail;
-- a named row, the list send job's share. Kept by its own statement trigger as events arrive.
CREATE TABLE identity_event_counters (
  tenant_id           uuid NOT NULL REFERENCES tenants(id),
  day                 date NOT NULL,
  identity            text NOT NULL,
  template            text NOT NULL,
  sent                bigint NOT NULL DEFAULT 0,
  delivered           bigint NOT NULL DEFAULT 0,
  hard_bounced        bigint NOT NULL DEFAULT 0,
  soft_bounced        bigint NOT NULL DEFAULT 0,
  complained          bigint NOT NULL DEFAULT 0,
  provider_suppressed bigint NOT NULL DEFAULT 0,
  opened              bigint NOT NULL DEFAULT 0,
  unique_opened       bigint NOT NULL DEFAULT 0,
  clicked             bigint NOT NULL DEFAULT 0,
  unique_clicked      bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, identity, day, template)
);

-- Who already opened/clicked that day, per identity (and template); as engagement_uniques.
CREATE TABLE identity_engagement_uniques (
  tenant_id  uuid NOT NULL,
  day        date NOT NULL,
  kind       text NOT NULL CHECK (kind IN ('open', 'click')),
  identity   text NOT NULL,
  template   text NOT NULL,
  recipient  text NOT NULL,
  PRIMARY KEY (tenant_id, day, kind, identity, template, recipient)
);


-- Functions and triggers on these tables: src/db/functions/*.sql (re-applied by migrate, never copied here).
