-- The stored template version a list send job (campaign) was made from, fixed when the template is
-- resolved (created, edited, scheduled), as proxy_jobs.template_version is for transactional sends:
-- the template roll-up (db/functions/020_event_counters.sql) and GET /v1/messages/{id} name it.
ALTER TABLE send_jobs ADD COLUMN template_version integer;
