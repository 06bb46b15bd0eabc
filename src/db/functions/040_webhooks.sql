-- Outbound webhooks from triggers (src/webhooks/): every writer of message_events, messages,
-- send_jobs and suppressions queues its events in its own transaction without knowing about them.

-- Fan-out: every outbound_events row, whoever inserts it, becomes one delivery per enabled
-- endpoint of its tenant subscribed to its type, in the inserting transaction.
CREATE OR REPLACE FUNCTION webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  queued integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE status = 'enabled') THEN RETURN NULL; END IF;
  INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, status, event_created_at)
  SELECT uuid_v7(), n.tenant_id, e.id, n.id, n.type, 'pending', n.created_at
    FROM new_events n
    JOIN webhook_endpoints e ON e.tenant_id = n.tenant_id AND e.status = 'enabled'
                            AND (e.event_types IS NULL OR n.type = ANY (e.event_types));
  GET DIAGNOSTICS queued = ROW_COUNT;
  IF queued > 0 THEN PERFORM pg_notify('send_engine_webhooks', ''); END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER outbound_events_fan_out
  AFTER INSERT ON outbound_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_fan_out();

-- Is any enabled endpoint of this tenant subscribed to this type? (The enqueue filter below.)
CREATE OR REPLACE FUNCTION webhook_wanted(tenant uuid, event_type text) RETURNS boolean
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT EXISTS (SELECT 1 FROM webhook_endpoints e
                  WHERE e.tenant_id = tenant AND e.status = 'enabled'
                    AND (e.event_types IS NULL OR event_type = ANY (e.event_types)))
$$;

CREATE OR REPLACE FUNCTION webhook_time(t timestamptz) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;

-- message.* events from the timeline, set-based, only for tenants someone listens to.
CREATE OR REPLACE FUNCTION webhook_message_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE status = 'enabled') THEN RETURN NULL; END IF;
  INSERT INTO outbound_events (id, tenant_id, type, payload)
  SELECT uuid_v7(), n.tenant_id, k.type,
         jsonb_strip_nulls(jsonb_build_object(
           'message_id', n.message_id, 'send_job_id', coalesce(m.send_job_id, m.proxy_job_id),
           'recipient', m.recipient, 'tags', m.tags,
           'list_id', coalesce(sj.list_id::text, m.tags->>'list_id'),
           'occurred_at', webhook_time(n.occurred_at),
           'bounce_type', CASE WHEN n.type = 'bounce' THEN CASE WHEN n.data->>'bounce_class' = 'hard' THEN 'hard' ELSE 'soft' END END,
           'bounce_subtype', CASE WHEN n.type = 'bounce' THEN coalesce(n.data->>'bounce_subtype', n.data->>'bounce_class') END,
           'diagnostic', coalesce(n.data->>'diagnostic', n.data->>'error', n.data->>'reason'),
           'url', CASE WHEN n.type = 'click' THEN n.data->>'url' END,
           'attempt', (n.data->>'attempt')::int))
    FROM new_events n
    CROSS JOIN LATERAL (SELECT CASE n.type
        WHEN 'send' THEN 'message.sent'
        WHEN 'delivery' THEN 'message.delivered'
        WHEN 'deferral' THEN 'message.delivery_delayed'
        WHEN 'delivery_delay' THEN 'message.delivery_delayed'
        WHEN 'bounce' THEN 'message.bounced'
        WHEN 'complaint' THEN 'message.complained'
        WHEN 'open' THEN 'message.opened'
        WHEN 'click' THEN 'message.clicked'
        WHEN 'failure' THEN 'message.failed'
        WHEN 'reject' THEN 'message.failed'
        WHEN 'rendering_failure' THEN 'message.failed'
        WHEN 'suppression' THEN 'message.suppressed'
        WHEN 'suppressed' THEN 'message.suppressed'
      END AS type) k
    JOIN messages m ON m.id = n.message_id
    LEFT JOIN send_jobs sj ON sj.id = m.send_job_id
   WHERE k.type IS NOT NULL AND webhook_wanted(n.tenant_id, k.type)
   ORDER BY n.recorded_at, n.id;
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER message_events_webhooks
  AFTER INSERT ON message_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_message_events();

-- Messages refused at submit or fan-out because the address is suppressed get no timeline row:
-- their message.suppressed comes from here.
CREATE OR REPLACE FUNCTION webhook_suppressed_messages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE status = 'enabled') THEN RETURN NULL; END IF;
  INSERT INTO outbound_events (id, tenant_id, type, payload)
  SELECT uuid_v7(), m.tenant_id, 'message.suppressed',
         jsonb_strip_nulls(jsonb_build_object(
           'message_id', m.id, 'send_job_id', coalesce(m.send_job_id, m.proxy_job_id), 'recipient', m.recipient, 'tags', m.tags,
           'list_id', coalesce(sj.list_id::text, m.tags->>'list_id'), 'occurred_at', webhook_time(m.created_at),
           'diagnostic', 'address is on the suppression list'))
    FROM new_messages m
    LEFT JOIN send_jobs sj ON sj.id = m.send_job_id
   WHERE m.status = 'suppressed' AND webhook_wanted(m.tenant_id, 'message.suppressed');
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER messages_webhooks
  AFTER INSERT ON messages
  REFERENCING NEW TABLE AS new_messages
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_suppressed_messages();

-- send_job.* on status changes.
CREATE OR REPLACE FUNCTION webhook_send_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE status = 'enabled') THEN RETURN NULL; END IF;
  INSERT INTO outbound_events (id, tenant_id, type, payload)
  SELECT uuid_v7(), n.tenant_id, k.type,
         jsonb_strip_nulls(jsonb_build_object(
           'send_job_id', n.id, 'list_id', n.list_id, 'campaign_id', n.campaign_id, 'name', n.name,
           'status', n.status, 'status_reason', n.status_reason, 'recipients_total', n.recipients_total,
           'scheduled_at', webhook_time(n.scheduled_at), 'started_at', webhook_time(n.started_at),
           'finished_at', webhook_time(n.finished_at), 'occurred_at', webhook_time(now())))
    FROM new_jobs n
    JOIN old_jobs o ON o.id = n.id
    CROSS JOIN LATERAL (SELECT CASE n.status
        WHEN 'running' THEN 'send_job.started' WHEN 'completed' THEN 'send_job.completed'
        WHEN 'failed' THEN 'send_job.failed' WHEN 'cancelled' THEN 'send_job.cancelled' END AS type) k
   WHERE n.status IS DISTINCT FROM o.status AND k.type IS NOT NULL AND webhook_wanted(n.tenant_id, k.type);
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER send_jobs_webhooks
  AFTER UPDATE ON send_jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_send_jobs();

-- suppression.created / suppression.deleted, whoever writes the suppression list.
CREATE OR REPLACE FUNCTION webhook_suppressions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  event_type text := CASE TG_OP WHEN 'INSERT' THEN 'suppression.created' ELSE 'suppression.deleted' END;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE status = 'enabled') THEN RETURN NULL; END IF;
  INSERT INTO outbound_events (id, tenant_id, type, payload)
  SELECT uuid_v7(), s.tenant_id, event_type,
         jsonb_strip_nulls(jsonb_build_object('email', s.email, 'reason', s.reason, 'source', s.source,
           'diagnostic', s.diagnostic, 'suppressed_at', webhook_time(s.created_at), 'occurred_at', webhook_time(now())))
    FROM (SELECT * FROM changed_rows) s
   WHERE webhook_wanted(s.tenant_id, event_type);
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER suppressions_webhooks_insert
  AFTER INSERT ON suppressions
  REFERENCING NEW TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_suppressions();

CREATE OR REPLACE TRIGGER suppressions_webhooks_delete
  AFTER DELETE ON suppressions
  REFERENCING OLD TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_suppressions();
