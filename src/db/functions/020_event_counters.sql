-- Roll-ups kept by statement-level triggers on message_events, whoever inserts (reports, the
-- account's 24 h figure, per-identity reports). Triggers of one event fire in name order.

-- The key a message is counted under in the template roll-ups: its stored template and version
-- ('<template id>#<version>', read back by src/observability/reports.ts), else its list send job's
-- name (an inline template); NULL (not counted) with neither. A message's key is
-- coalesce(key(its send job), key(NULL, its transactional send)).
CREATE OR REPLACE FUNCTION template_report_key(name text, template_id uuid, template_version integer) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN template_id IS NOT NULL THEN template_id::text || '#' || coalesce(template_version, 0) ELSE nullif(name, '') END
$$;

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
  -- never reach the messages/jobs join. Tenants with neither list send jobs nor transactional
  -- sends from a stored template skip it too.
  IF EXISTS (SELECT 1 FROM new_events n
              WHERE n.type IN ('send', 'delivery', 'bounce', 'complaint', 'open', 'click')
                AND (EXISTS (SELECT 1 FROM send_jobs sj WHERE sj.tenant_id = n.tenant_id)
                     OR EXISTS (SELECT 1 FROM proxy_jobs pj WHERE pj.tenant_id = n.tenant_id AND pj.template_id IS NOT NULL))) THEN
    WITH ev AS MATERIALIZED (
      SELECT n.tenant_id, (n.recorded_at AT TIME ZONE 'UTC')::date AS day, k.template, n.type, m.recipient
        FROM new_events n
        JOIN messages m ON m.id = n.message_id
        LEFT JOIN send_jobs sj ON sj.id = m.send_job_id
        LEFT JOIN proxy_jobs pj ON pj.id = m.proxy_job_id
        CROSS JOIN LATERAL (SELECT coalesce(template_report_key(sj.name, sj.template_id, sj.template_version), template_report_key(NULL, pj.template_id, pj.template_version)) AS template) k
       WHERE n.type IN ('send', 'delivery', 'bounce', 'complaint', 'open', 'click')
         AND k.template IS NOT NULL  -- '' is the tenant-wide key of engagement_uniques; an empty name is no template
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

CREATE OR REPLACE TRIGGER message_events_count
  AFTER INSERT ON message_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION count_message_events();

CREATE OR REPLACE FUNCTION count_hourly_sends() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tenant_hourly_sends AS h (tenant_id, hour, sent)
  SELECT n.tenant_id, date_trunc('hour', n.recorded_at), count(*)
    FROM new_events n
   WHERE n.type = 'send'
   GROUP BY 1, 2
   ORDER BY 1, 2  -- a fixed lock order across concurrent writers
  ON CONFLICT (tenant_id, hour) DO UPDATE SET sent = h.sent + EXCLUDED.sent;
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER message_events_hourly_sends
  AFTER INSERT ON message_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION count_hourly_sends();

CREATE OR REPLACE FUNCTION count_identity_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH ev AS MATERIALIZED (
    SELECT n.tenant_id, (n.recorded_at AT TIME ZONE 'UTC')::date AS day,
           lower(split_part(coalesce(pj.from_address, sj.from_address), '@', 2)) AS identity,
           coalesce(template_report_key(sj.name, sj.template_id, sj.template_version), template_report_key(NULL, pj.template_id, pj.template_version)) AS template, n.type, n.data, m.recipient
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

CREATE OR REPLACE TRIGGER message_events_identity_counters
  AFTER INSERT ON message_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION count_identity_events();
