-- GET /v1/account's "sent in the last 24 hours": sends per tenant per UTC hour, kept by a
-- statement trigger as the dispatcher records them, so the figure is 25 rows summed, not a scan
-- of the timeline. Hours older than a day are never read again.
CREATE TABLE tenant_hourly_sends (
  tenant_id  uuid NOT NULL REFERENCES tenants(id),
  hour       timestamptz NOT NULL,
  sent       bigint NOT NULL,
  PRIMARY KEY (tenant_id, hour)
);

CREATE FUNCTION count_hourly_sends() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER message_events_hourly_sends
  AFTER INSERT ON message_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION count_hourly_sends();
