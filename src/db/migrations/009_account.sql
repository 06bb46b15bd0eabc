-- GET /v1/account's "sent in the last 24 hours": sends per tenant per UTC hour, kept by a
-- statement trigger as the dispatcher records them, so the figure is 25 rows summed, not a scan
-- of the timeline. Hours older than a day are never read again.
CREATE TABLE tenant_hourly_sends (
  tenant_id  uuid NOT NULL REFERENCES tenants(id),
  hour       timestamptz NOT NULL,
  sent       bigint NOT NULL,
  PRIMARY KEY (tenant_id, hour)
);


-- Functions and triggers on these tables: src/db/functions/*.sql (re-applied by migrate, never copied here).
