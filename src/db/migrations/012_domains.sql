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

CREATE FUNCTION count_identity_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH ev AS MATERIALIZED (
    SELECT n.tenant_id, (n.recorded_at AT TIME ZONE 'UTC')::date AS day,
           lower(split_part(coalesce(pj.from_address, sj.from_address), '@', 2)) AS identity,
           nullif(sj.name, '') AS template, n.type, n.data, m.recipient
      FROM new_events n
      JOIN messages m ON m.id = n.message_id
      LEFT JOIN proxy_jobs pj ON pj.id = m.proxy_job_id
      LEFT JOIN send_jobs sj ON sj.id = m.send_job_id
     WHERE n.type IN ('send', 'delivery', 'bounce', 'complaint', 'suppression', 'open', 'click')
  ), keyed AS (
    SELECT tenant_id, day, identity, '' AS template, type, data, recipient FROM ev WHERE identity <> ''
    UNION ALL
    SELECT tenant_id, day, identity, template, type, data, recipient FROM ev WHERE identity <> '' AND template IS NOT NULL
  ), firsts AS (
    INSERT INTO identity_engagement_uniques (tenant_id, day, kind, identity, template, recipient)
    SELECT DISTINCT tenant_id, day, type, identity, template, lower(recipient)
      FROM keyed WHERE type IN ('open', 'click')
     ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT DO NOTHING
    RETURNING tenant_id, day, kind, identity, template
  ), fresh AS (
    SELECT tenant_id, day, identity, template,
           count(*) FILTER (WHERE kind = 'open') AS opens, count(*) FILTER (WHERE kind = 'click') AS clicks
      FROM firsts GROUP BY 1, 2, 3, 4
  ), counted AS (
    SELECT tenant_id, day, identity, template,
           count(*) FILTER (WHERE type = 'send') AS sent,
           count(*) FILTER (WHERE type = 'delivery') AS delivered,
           count(*) FILTER (WHERE type = 'bounce' AND data->>'bounce_class' = 'hard') AS hard_bounced,
           count(*) FILTER (WHERE type = 'bounce' AND data->>'bounce_class' IS DISTINCT FROM 'hard') AS soft_bounced,
           count(*) FILTER (WHERE type = 'complaint') AS complained,
           count(*) FILTER (WHERE type = 'suppression') AS provider_suppressed,
           count(*) FILTER (WHERE type = 'open') AS opened,
           count(*) FILTER (WHERE type = 'click') AS clicked
      FROM keyed GROUP BY 1, 2, 3, 4
  )
  INSERT INTO identity_event_counters AS c
    (tenant_id, day, identity, template, sent, delivered, hard_bounced, soft_bounced, complained, provider_suppressed,
     opened, unique_opened, clicked, unique_clicked)
  SELECT k.tenant_id, k.day, k.identity, k.template, k.sent, k.delivered, k.hard_bounced, k.soft_bounced, k.complained,
         k.provider_suppressed, k.opened, coalesce(f.opens, 0), k.clicked, coalesce(f.clicks, 0)
    FROM counted k
    LEFT JOIN fresh f ON f.tenant_id = k.tenant_id AND f.day = k.day AND f.identity = k.identity AND f.template = k.template
   ORDER BY k.tenant_id, k.identity, k.day, k.template  -- a fixed lock order across concurrent writers
  ON CONFLICT (tenant_id, identity, day, template) DO UPDATE SET
    sent = c.sent + EXCLUDED.sent, delivered = c.delivered + EXCLUDED.delivered,
    hard_bounced = c.hard_bounced + EXCLUDED.hard_bounced, soft_bounced = c.soft_bounced + EXCLUDED.soft_bounced,
    complained = c.complained + EXCLUDED.complained, provider_suppressed = c.provider_suppressed + EXCLUDED.provider_suppressed,
    opened = c.opened + EXCLUDED.opened, unique_opened = c.unique_opened + EXCLUDED.unique_opened,
    clicked = c.clicked + EXCLUDED.clicked, unique_clicked = c.unique_clicked + EXCLUDED.unique_clicked;
  RETURN NULL;
END
$$;

CREATE TRIGGER message_events_identity_counters
  AFTER INSERT ON message_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION count_identity_events();
