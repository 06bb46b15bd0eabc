-- Stored, versioned templates (src/templates/) and complete transactional sends (src/sending/):
-- cc, reply-to, attachments, a stored template and a send time on proxy jobs.

CREATE TABLE templates (
  id               uuid PRIMARY KEY,
  tenant_id        uuid NOT NULL REFERENCES tenants(id),
  slug             text NOT NULL,
  current_version  integer NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, slug)
);
CREATE INDEX templates_tenant_created ON templates (tenant_id, created_at DESC, id DESC);

-- Every version is kept (PUT adds one): sends and reports name the version they used.
CREATE TABLE template_versions (
  template_id     uuid NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
  version         integer NOT NULL CHECK (version >= 1),
  tenant_id       uuid NOT NULL REFERENCES tenants(id),
  name            text NOT NULL,
  subject         text NOT NULL,
  html            text,
  -- NULL with html: the text part is made from the rendered html (html-to-text) at each render.
  text_body       text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (template_id, version)
);

-- A list send job (or campaign) made from a stored template: DELETE of the template is refused
-- while one is pending or running. Also added by the campaigns migration; whichever runs first wins.
ALTER TABLE send_jobs ADD COLUMN IF NOT EXISTS template_id uuid;
CREATE INDEX IF NOT EXISTS send_jobs_template ON send_jobs (template_id) WHERE template_id IS NOT NULL;

-- Headers every copy of a send carries (one message row per To, Cc and Bcc recipient, each sent
-- alone): to_header/cc_header NULL means the contract's private sends, To = the recipient only.
ALTER TABLE proxy_jobs
  ADD COLUMN to_header         text[],
  ADD COLUMN cc_header         text[],
  ADD COLUMN reply_to          text[],
  ADD COLUMN template_id       uuid,
  ADD COLUMN template_version  integer,
  ADD COLUMN scheduled_at      timestamptz,
  ADD COLUMN attachment_count  integer NOT NULL DEFAULT 0;
CREATE INDEX proxy_jobs_template ON proxy_jobs (tenant_id, template_id, template_version) WHERE template_id IS NOT NULL;

-- Stored once per send, read by the dispatcher for each copy (cached by proxy job).
CREATE TABLE proxy_job_attachments (
  proxy_job_id  uuid NOT NULL REFERENCES proxy_jobs(id) ON DELETE CASCADE,
  position      integer NOT NULL,
  tenant_id     uuid NOT NULL REFERENCES tenants(id),
  filename      text NOT NULL,
  content_type  text NOT NULL,
  content       bytea NOT NULL,
  PRIMARY KEY (proxy_job_id, position)
);
