-- List send jobs: a newsletter to every active member of a list, scheduled, windowed, paced.

-- UUID v7 minted in SQL, for set-based fan-out (INSERT ... SELECT of thousands of messages):
-- a random v4 with its first 48 bits replaced by the Unix time in ms and the version set to 7.
CREATE FUNCTION uuid_v7() RETURNS uuid
  LANGUAGE sql VOLATILE PARALLEL SAFE
  AS $$
    SELECT encode(
      set_bit(set_bit(
        overlay(uuid_send(gen_random_uuid())
                placing substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                FROM 1 FOR 6),
        52, 1), 53, 1),
      'hex')::uuid
  $$;

CREATE TABLE campaigns (
  id          uuid PRIMARY KEY,
  tenant_id   uuid NOT NULL REFERENCES tenants(id),
  name        text,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE send_jobs (
  id               uuid PRIMARY KEY,
  tenant_id        uuid NOT NULL REFERENCES tenants(id),
  list_id          uuid NOT NULL,
  campaign_id      uuid NOT NULL REFERENCES campaigns(id),
  name             text,
  from_address     text NOT NULL,
  -- Liquid sources (subject, html, text); plain bodies are templates without tags.
  template         jsonb NOT NULL,
  track_opens      boolean NOT NULL DEFAULT false,
  track_clicks     boolean NOT NULL DEFAULT false,
  scheduled_at     timestamptz NOT NULL,
  window_start     timestamptz,
  window_end       timestamptz,
  pacing           text NOT NULL DEFAULT 'fast' CHECK (pacing IN ('fast', 'spread')),
  rate_per_second  numeric CHECK (rate_per_second > 0),
  status           text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
  status_reason    text,
  -- Fan-out progress: members up to this subscriber id have their messages.
  fanout_cursor    uuid,
  fanout_done      boolean NOT NULL DEFAULT false,
  fanout_count     integer NOT NULL DEFAULT 0,
  recipients_total integer,
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  FOREIGN KEY (tenant_id, list_id) REFERENCES lists (tenant_id, id)
);
CREATE INDEX send_jobs_tenant ON send_jobs (tenant_id, created_at DESC);

ALTER TABLE messages
  ADD COLUMN send_job_id   uuid REFERENCES send_jobs(id),
  ADD COLUMN subscriber_id uuid,
  -- Not sent after this instant (the job's window_end); still queued then means expired.
  ADD COLUMN expires_at    timestamptz;
CREATE INDEX messages_send_job ON messages (send_job_id, status) WHERE send_job_id IS NOT NULL;
-- One message per member per job, whatever retries the fan-out goes through.
CREATE UNIQUE INDEX messages_send_job_member ON messages (send_job_id, subscriber_id) WHERE send_job_id IS NOT NULL;

-- Per-tenant pacing: the next free send slot. Fan-out reserves a run of slots per chunk in one
-- UPDATE, so a tenant's rate holds across jobs and across worker processes.
CREATE TABLE tenant_send_clock (
  tenant_id  uuid PRIMARY KEY REFERENCES tenants(id),
  next_slot  timestamptz NOT NULL
);
ALTER TABLE tenants ADD COLUMN max_send_rate numeric CHECK (max_send_rate > 0);
