-- Engagement roll-ups: unique opens/clicks per UTC day of arrival, and per-template daily
-- counters, kept by the message_events trigger so the engagement and template-performance
-- reports read a few hundred rows instead of the timeline. Owned by src/observability/reports.ts.

ALTER TABLE tenant_event_counters
  ADD COLUMN unique_opened   bigint NOT NULL DEFAULT 0,
  ADD COLUMN unique_clicked  bigint NOT NULL DEFAULT 0;

-- Who has already opened/clicked on a day: tenant-wide (template = '') and per template. A row
-- is inserted once; only statements that actually insert it count a unique. Rows of past days
-- are never read again by the trigger (events arrive "now") and may be deleted by a retention job.
CREATE TABLE engagement_uniques (
  tenant_id  uuid NOT NULL,
  day        date NOT NULL,
  kind       text NOT NULL CHECK (kind IN ('open', 'click')),
  template   text NOT NULL,
  recipient  text NOT NULL,  -- lower-cased messages.recipient
  PRIMARY KEY (tenant_id, day, kind, template, recipient)
);

-- Per tenant, template (the list send job's name) and UTC day of arrival. Messages without a
-- named template (proxy sends, unnamed jobs) have no row, as the reference excludes them.
CREATE TABLE template_event_counters (
  tenant_id       uuid NOT NULL REFERENCES tenants(id),
  day             date NOT NULL,
  template        text NOT NULL,
  sent            bigint NOT NULL DEFAULT 0,
  delivered       bigint NOT NULL DEFAULT 0,
  bounced         bigint NOT NULL DEFAULT 0,  -- hard + soft
  complained      bigint NOT NULL DEFAULT 0,
  opened          bigint NOT NULL DEFAULT 0,
  unique_opened   bigint NOT NULL DEFAULT 0,
  clicked         bigint NOT NULL DEFAULT 0,
  unique_clicked  bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, day, template)
);

-- Migration 003's counting, plus the uniques and the template roll-up. Still once per statement
-- over its transition table. Lock order, fixed for every writer and each step in key order:
-- engagement_uniques (tenant-wide), tenant_event_counters, proxy_job_counters,
-- engagement_uniques (per template), template_event_counters.
CREATE OR REPLACE FUNCTION count_message_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  -- Only opens and clicks need the recipient (messages); the dispatcher's send batches have none.
  engaged boolean := EXISTS (SELECT 1 FROM new_events WHERE type IN ('open', 'click'));
BEGIN
  WITH firsts AS (
    -- A one-time filter: without opens/clicks the join below is not executed at all.
    INSERT INTO engagement_uniques (tenant_id, day, kind, template, recipient)
    SELECT DISTINCT n.tenant_id, (n.recorded_at AT TIME ZONE 'UTC')::date, n.type, '', lower(m.recipient)
      FROM new_events n JOIN messages m ON m.id = n.message_id
     WHERE engaged AND n.type IN ('open', 'click')
     ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT DO NOTHING
    RETURNING tenant_id, day, kind
  ), fresh AS (
    SELECT tenant_id, day, count(*) FILTER (WHERE kind = 'open') AS opens, count(*) FILTER (WHERE kind = 'click') AS clicks
      FROM firsts GROUP BY 1, 2
  ), counted AS (
    SELECT n.tenant_id, (n.recorded_at AT TIME ZONE 'UTC')::date AS day,
           count(*) FILTER (WHERE n.type = 'send') AS sent,
           count(*) FILTER (WHERE n.type = 'delivery') AS delivered,
           count(*) FILTER (WHERE n.type = 'bounce' AND n.data->>'bounce_class' = 'hard') AS hard_bounced,
           count(*) FILTER (WHERE n.type = 'bounce' AND n.data->>'bounce_class' IS DISTINCT FROM 'hard') AS soft_bounced,
           count(*) FILTER (WHERE n.type = 'complaint') AS complained,
           count(*) FILTER (WHERE n.type = 'suppression') AS provider_suppressed,
           count(*) FILTER (WHERE n.type = 'open') AS opened,
           count(*) FILTER (WHERE n.type = 'click') AS clicked,
           count(*) FILTER (WHERE n.type IN ('failure', 'reject', 'rendering_failure')) AS failed,
           count(*) FILTER (WHERE n.type IN ('deferral', 'delivery_delay')) AS delayed
      FROM new_events n
     GROUP BY 1, 2
  )
  INSERT INTO tenant_event_counters AS c
    (tenant_id, day, sent, delivered, hard_bounced, soft_bounced, complained, provider_suppressed, opened, clicked, failed, delayed,
     unique_opened, unique_clicked)
  SELECT k.tenant_id, k.day, k.sent, k.delivered, k.hard_bounced, k.soft_bounced, k.complained, k.provider_suppressed,
         k.opened, k.clicked, k.failed, k.delayed, coalesce(f.opens, 0), coalesce(f.clicks, 0)
    FROM counted k LEFT JOIN fresh f ON f.tenant_id = k.tenant_id AND f.day = k.day
   ORDER BY 1, 2  -- a fixed lock order across concurrent writers
  ON CONFLICT (tenant_id, day) DO UPDATE SET
    sent = c.sent + EXCLUDED.sent, delivered = c.delivered + EXCLUDED.delivered,
    hard_bounced = c.hard_bounced + EXCLUDED.hard_bounced, soft_bounced = c.soft_bounced + EXCLUDED.soft_bounced,
    complained = c.complained + EXCLUDED.complained, provider_suppressed = c.provider_suppressed + EXCLUDED.provider_suppressed,
    opened = c.opened + EXCLUDED.opened, clicked = c.clicked + EXCLUDED.clicked,
    failed = c.failed + EXCLUDED.failed, delayed = c.delayed + EXCLUDED.delayed,
    unique_opened = c.unique_opened + EXCLUDED.unique_opened, unique_clicked = c.unique_clicked + EXCLUDED.unique_clicked;

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

  -- Only the kinds the template report shows are attributed: deferrals, failures and the like
  -- never reach the messages/send_jobs join. Tenants without list send jobs skip it too.
  IF EXISTS (SELECT 1 FROM new_events n
              WHERE n.type IN ('send', 'delivery', 'bounce', 'complaint', 'open', 'click')
                AND EXISTS (SELECT 1 FROM send_jobs sj WHERE sj.tenant_id = n.tenant_id)) THEN
    WITH ev AS MATERIALIZED (
      SELECT n.tenant_id, (n.recorded_at AT TIME ZONE 'UTC')::date AS day, sj.name AS template, n.type, m.recipient
        FROM new_events n
        JOIN messages m ON m.id = n.message_id
        JOIN send_jobs sj ON sj.id = m.send_job_id
       WHERE n.type IN ('send', 'delivery', 'bounce', 'complaint', 'open', 'click')
         AND sj.name <> ''  -- '' is the tenant-wide key of engagement_uniques; an empty name is no template
    ), firsts AS (
      INSERT INTO engagement_uniques (tenant_id, day, kind, template, recipient)
      SELECT DISTINCT tenant_id, day, type, template, lower(recipient)
        FROM ev WHERE type IN ('open', 'click')
       ORDER BY 1, 2, 3, 4, 5
      ON CONFLICT DO NOTHING
      RETURNING tenant_id, day, kind, template
    ), fresh AS (
      SELECT tenant_id, day, template, count(*) FILTER (WHERE kind = 'open') AS opens, count(*) FILTER (WHERE kind = 'click') AS clicks
        FROM firsts GROUP BY 1, 2, 3
    ), counted AS (
      SELECT tenant_id, day, template,
             count(*) FILTER (WHERE type = 'send') AS sent,
             count(*) FILTER (WHERE type = 'delivery') AS delivered,
             count(*) FILTER (WHERE type = 'bounce') AS bounced,
             count(*) FILTER (WHERE type = 'complaint') AS complained,
             count(*) FILTER (WHERE type = 'open') AS opened,
             count(*) FILTER (WHERE type = 'click') AS clicked
        FROM ev GROUP BY 1, 2, 3
    )
    INSERT INTO template_event_counters AS c
      (tenant_id, day, template, sent, delivered, bounced, complained, opened, unique_opened, clicked, unique_clicked)
    SELECT k.tenant_id, k.day, k.template, k.sent, k.delivered, k.bounced, k.complained,
           k.opened, coalesce(f.opens, 0), k.clicked, coalesce(f.clicks, 0)
      FROM counted k LEFT JOIN fresh f ON f.tenant_id = k.tenant_id AND f.day = k.day AND f.template = k.template
     ORDER BY 1, 2, 3
    ON CONFLICT (tenant_id, day, template) DO UPDATE SET
      sent = c.sent + EXCLUDED.sent, delivered = c.delivered + EXCLUDED.delivered,
      bounced = c.bounced + EXCLUDED.bounced, complained = c.complained + EXCLUDED.complained,
      opened = c.opened + EXCLUDED.opened, unique_opened = c.unique_opened + EXCLUDED.unique_opened,
      clicked = c.clicked + EXCLUDED.clicked, unique_clicked = c.unique_clicked + EXCLUDED.unique_clicked;
  END IF;
  RETURN NULL;
END
$$;

-- GET /v1/messages?status=...: keyset pages within one status. Without it a rare status (say
-- complained, 0.2 % of messages) walks messages_tenant_created past thousands of other rows per
-- page (~50 ms at 1M events, measured by `npm run bench -- reports`). Status changes already
-- update every index (status is in messages_due's predicate, so they are never HOT).
CREATE INDEX messages_tenant_status_created ON messages (tenant_id, status, created_at DESC, id DESC);
