-- Provider events: the status order, incremental counters, soft-bounce history and the
-- newsletter guardrail. Owned by src/events/.

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


-- Functions and triggers on these tables: src/db/functions/*.sql (re-applied by migrate, never copied here).
