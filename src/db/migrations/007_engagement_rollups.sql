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

-- GET /v1/messages?status=...: keyset pages within one status. Without it a rare status (say
-- complained, 0.2 % of messages) walks messages_tenant_created past thousands of other rows per
-- page (~50 ms at 1M events, measured by `npm run bench -- reports`). Status changes already
-- update every index (status is in messages_due's predicate, so they are never HOT).
CREATE INDEX messages_tenant_status_created ON messages (tenant_id, status, created_at DESC, id DESC);

-- Functions and triggers on these tables: src/db/functions/*.sql (re-applied by migrate, never copied here).
