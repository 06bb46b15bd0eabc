-- Lists the API owns and their contacts, contact imports, double opt-in, and campaigns (send jobs
-- that can be drafted, paused and resumed). Owned by src/lists/ (lists, contacts, imports) and
-- src/jobs/ (send_jobs, campaigns). See docs/campaigns.md.

-- One source of truth per list: the Member Center's webhooks write its lists, the API its own.
-- owner mirrors LIST_OWNERS in src/lists/contacts.ts.
ALTER TABLE lists
  ADD COLUMN owner          text NOT NULL DEFAULT 'member_center' CHECK (owner IN ('member_center', 'api')),
  ADD COLUMN name           text,
  -- {enabled, from, subject, html}: new contacts are pending until they confirm (src/lists/double-opt-in.ts).
  ADD COLUMN double_opt_in  jsonb,
  ADD COLUMN updated_at     timestamptz NOT NULL DEFAULT now(),
  -- Deleted lists stay for history (messages, reports); nothing reads or writes them any more.
  ADD COLUMN deleted_at     timestamptz,
  ADD CONSTRAINT lists_api_named CHECK (owner = 'member_center' OR name IS NOT NULL);
CREATE INDEX lists_api ON lists (tenant_id, id) WHERE owner = 'api' AND deleted_at IS NULL;

-- A contact of an API list is a subscriber of that list (list_id set), unique by address in it;
-- Member Center subscribers keep list_id NULL. Names and properties are usable in templates.
ALTER TABLE subscribers
  ADD COLUMN list_id     uuid,
  ADD COLUMN first_name  text,
  ADD COLUMN last_name   text,
  ADD COLUMN properties  jsonb NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX subscribers_list_email ON subscribers (tenant_id, list_id, lower(email)) WHERE list_id IS NOT NULL;

-- 'pending': a double opt-in contact that has not confirmed yet (never sent to).
ALTER TABLE list_members DROP CONSTRAINT list_members_status_check;
ALTER TABLE list_members ADD CONSTRAINT list_members_status_check
  CHECK (status IN ('active', 'pending', 'unsubscribed', 'bounced', 'complaint', 'suppressed'));

-- A bulk import's progress; status mirrors IMPORT_STATUSES in src/lists/import.ts.
CREATE TABLE contact_imports (
  id                 uuid PRIMARY KEY,
  tenant_id          uuid NOT NULL REFERENCES tenants(id),
  list_id            uuid NOT NULL,
  format             text NOT NULL CHECK (format IN ('csv', 'jsonl')),
  status             text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
  rows_received      integer NOT NULL DEFAULT 0,
  rows_invalid       integer NOT NULL DEFAULT 0,
  created            integer NOT NULL DEFAULT 0,
  updated            integer NOT NULL DEFAULT 0,
  kept_unsubscribed  integer NOT NULL DEFAULT 0,
  error              text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  finished_at        timestamptz,
  FOREIGN KEY (tenant_id, list_id) REFERENCES lists (tenant_id, id)
);
CREATE INDEX contact_imports_tenant ON contact_imports (tenant_id, created_at DESC);

-- Campaigns are send jobs with a life before and during sending: 'draft' (editable, not
-- scheduled) and 'paused' (nothing more is claimed). status mirrors SEND_JOB_STATUSES in
-- src/jobs/status.ts; a campaign's API status names 'pending' as 'scheduled'.
ALTER TABLE send_jobs DROP CONSTRAINT send_jobs_status_check;
ALTER TABLE send_jobs ADD CONSTRAINT send_jobs_status_check
  CHECK (status IN ('draft', 'pending', 'running', 'paused', 'completed', 'failed', 'cancelled'));
ALTER TABLE send_jobs
  ALTER COLUMN scheduled_at DROP NOT NULL,
  ADD CONSTRAINT send_jobs_scheduled CHECK (status = 'draft' OR scheduled_at IS NOT NULL),
  ADD COLUMN reply_to    text,
  -- A stored template (src/templates/, issue 13 part A), resolved into `template` at schedule time.
  ADD COLUMN IF NOT EXISTS template_id uuid,
  ADD COLUMN paused_at   timestamptz,
  ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now();
-- One send job per campaign: the campaign's id is the resource id of /v1/campaigns.
CREATE UNIQUE INDEX send_jobs_campaign ON send_jobs (campaign_id);
CREATE INDEX send_jobs_tenant_status ON send_jobs (tenant_id, status, created_at DESC);
