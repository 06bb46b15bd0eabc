-- The claim (outbox_due in src/db/functions/010_outbox.sql) reads what waits as two short lists on
-- every batch: paused campaigns and tenants whose newsletters the guardrail paused. Both are rare,
-- so tiny partial indexes.
CREATE INDEX IF NOT EXISTS send_jobs_paused ON send_jobs (id) WHERE status = 'paused';
CREATE INDEX IF NOT EXISTS tenants_newsletter_paused ON tenants (id) WHERE newsletter_paused_at IS NOT NULL;
