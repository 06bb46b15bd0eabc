-- Provider events: the status order, incremental counters, soft-bounce history and the
-- newsletter guardrail. Owned by src/events/.

-- The one definition of how far a message has come. Events may only raise it; terminal kinds
-- share the top rank, so none of them is ever replaced (a complaint still lands on a delivered,
-- opened or clicked message, which rank lower). Unknown text ranks NULL and never compares true.
CREATE FUNCTION message_status_rank(status text) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN status = 'queued' THEN 0
    WHEN status = 'sending' THEN 1
    WHEN status = 'sent' THEN 2
    WHEN status = 'delivered' THEN 3
    WHEN status = 'opened' THEN 4
    WHEN status = 'clicked' THEN 5
    WHEN status IN ('bounced', 'complained', 'failed', 'suppressed', 'expired', 'cancelled') THEN 100
  END
$$;

-- Guardrail state: a paused tenant's newsletter messages are not claimed; transactional ones are.
ALTER TABLE tenants
  ADD COLUMN newsletter_paused_at timestamptz,
  ADD COLUMN newsletter_pause_reason text;

-- Per tenant per UTC day (of arrival), maintained by the trigger below: the guardrail and reports
-- read a handful of rows instead of scanning the timeline.
CREATE TABLE tenant_event_counters (
  tenant_id            uuid NOT NULL REFERENCES tenants(id),
  day                  date NOT NULL,
  sent                 bigint NOT NULL DEFAULT 0,
  delivered            bigint NOT NULL DEFAULT 0,
  hard_bounced         bigint NOT NULL DEFAULT 0,
  soft_bounced         bigint NOT NULL DEFAULT 0,
  complained           bigint NOT NULL DEFAULT 0,
  provider_suppressed  bigint NOT NULL DEFAULT 0,
  opened               bigint NOT NULL DEFAULT 0,
  clicked              bigint NOT NULL DEFAULT 0,
  failed               bigint NOT NULL DEFAULT 0,
  delayed              bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, day)
);

-- The same figures per proxy send job, for job progress and reports.
CREATE TABLE proxy_job_counters (
  proxy_job_id         uuid PRIMARY KEY REFERENCES proxy_jobs(id),
  tenant_id            uuid NOT NULL REFERENCES tenants(id),
  sent                 bigint NOT NULL DEFAULT 0,
  delivered            bigint NOT NULL DEFAULT 0,
  hard_bounced         bigint NOT NULL DEFAULT 0,
  soft_bounced         bigint NOT NULL DEFAULT 0,
  complained           bigint NOT NULL DEFAULT 0,
  provider_suppressed  bigint NOT NULL DEFAULT 0,
  opened               bigint NOT NULL DEFAULT 0,
  clicked              bigint NOT NULL DEFAULT 0,
  failed               bigint NOT NULL DEFAULT 0,
  delayed              bigint NOT NULL DEFAULT 0
);
CREATE INDEX proxy_job_counters_tenant ON proxy_job_counters (tenant_id);

-- Soft/transient/undetermined bounces per address: "N within M days" is an index range count.
-- Rows older than the window are never read again and may be deleted by a retention job.
CREATE TABLE soft_bounces (
  event_id     uuid PRIMARY KEY,
  tenant_id    uuid NOT NULL REFERENCES tenants(id),
  email        text NOT NULL,
  occurred_at  timestamptz NOT NULL
);
CREATE INDEX soft_bounces_address ON soft_bounces (tenant_id, email, occurred_at);

-- Counting happens once per statement over its new rows (a transition table), whoever inserts:
-- the dispatcher's send/deferral/failure events and the provider events alike.
CREATE FUNCTION count_message_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tenant_event_counters AS c
    (tenant_id, day, sent, delivered, hard_bounced, soft_bounced, complained, provider_suppressed, opened, clicked, failed, delayed)
  SELECT n.tenant_id, (n.recorded_at AT TIME ZONE 'UTC')::date,
         count(*) FILTER (WHERE n.type = 'send'),
         count(*) FILTER (WHERE n.type = 'delivery'),
         count(*) FILTER (WHERE n.type = 'bounce' AND n.data->>'bounce_class' = 'hard'),
         count(*) FILTER (WHERE n.type = 'bounce' AND n.data->>'bounce_class' IS DISTINCT FROM 'hard'),
         count(*) FILTER (WHERE n.type = 'complaint'),
         count(*) FILTER (WHERE n.type = 'suppression'),
         count(*) FILTER (WHERE n.type = 'open'),
         count(*) FILTER (WHERE n.type = 'click'),
         count(*) FILTER (WHERE n.type IN ('failure', 'reject', 'rendering_failure')),
         count(*) FILTER (WHERE n.type IN ('deferral', 'delivery_delay'))
    FROM new_events n
   GROUP BY 1, 2
   ORDER BY 1, 2  -- a fixed lock order across concurrent writers
  ON CONFLICT (tenant_id, day) DO UPDATE SET
    sent = c.sent + EXCLUDED.sent, delivered = c.delivered + EXCLUDED.delivered,
    hard_bounced = c.hard_bounced + EXCLUDED.hard_bounced, soft_bounced = c.soft_bounced + EXCLUDED.soft_bounced,
    complained = c.complained + EXCLUDED.complained, provider_suppressed = c.provider_suppressed + EXCLUDED.provider_suppressed,
    opened = c.opened + EXCLUDED.opened, clicked = c.clicked + EXCLUDED.clicked,
    failed = c.failed + EXCLUDED.failed, delayed = c.delayed + EXCLUDED.delayed;

  INSERT INTO proxy_job_counters AS c
    (proxy_job_id, tenant_id, sent, delivered, hard_bounced, soft_bounced, complained, provider_suppressed, opened, clicked, failed, delayed)
  SELECT m.proxy_job_id, m.tenant_id,
         count(*) FILTER (WHERE n.type = 'send'),
         count(*) FILTER (WHERE n.type = 'delivery'),
         count(*) FILTER (WHERE n.type = 'bounce' AND n.data->>'bounce_class' = 'hard'),
         count(*) FILTER (WHERE n.type = 'bounce' AND n.data->>'bounce_class' IS DISTINCT FROM 'hard'),
         count(*) FILTER (WHERE n.type = 'complaint'),
         count(*) FILTER (WHERE n.type = 'suppression'),
         count(*) FILTER (WHERE n.type = 'open'),
         count(*) FILTER (WHERE n.type = 'click'),
         count(*) FILTER (WHERE n.type IN ('failure', 'reject', 'rendering_failure')),
         count(*) FILTER (WHERE n.type IN ('deferral', 'delivery_delay'))
    FROM new_events n JOIN messages m ON m.id = n.message_id
   WHERE m.proxy_job_id IS NOT NULL
   GROUP BY 1, 2
   ORDER BY 1
  ON CONFLICT (proxy_job_id) DO UPDATE SET
    sent = c.sent + EXCLUDED.sent, delivered = c.delivered + EXCLUDED.delivered,
    hard_bounced = c.hard_bounced + EXCLUDED.hard_bounced, soft_bounced = c.soft_bounced + EXCLUDED.soft_bounced,
    complained = c.complained + EXCLUDED.complained, provider_suppressed = c.provider_suppressed + EXCLUDED.provider_suppressed,
    opened = c.opened + EXCLUDED.opened, clicked = c.clicked + EXCLUDED.clicked,
    failed = c.failed + EXCLUDED.failed, delayed = c.delayed + EXCLUDED.delayed;
  RETURN NULL;
END
$$;

CREATE TRIGGER message_events_count
  AFTER INSERT ON message_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION count_message_events();
