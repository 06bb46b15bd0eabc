-- The outbox's status order (owner: src/outbox/). Mirrors MESSAGE_STATUS_RANK in src/outbox/status.ts;
-- test/outbox/status.test.ts holds the two equal.

-- The one definition of how far a message has come. Events may only raise it; terminal kinds
-- share the top rank, so none of them is ever replaced (a complaint still lands on a delivered,
-- opened or clicked message, which rank lower). Unknown text ranks NULL and never compares true.
CREATE OR REPLACE FUNCTION message_status_rank(status text) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN status = 'queued' THEN 0
    WHEN status = 'sending' THEN 1
    WHEN status = 'sent' THEN 2
    WHEN status = 'delivered' THEN 3
    WHEN status = 'opened' THEN 4
    WHEN status = 'clicked' THEN 5
    WHEN status IN ('bounced', 'complained', 'failed', 'suppressed', 'expired', 'cancelled') THEN 100
  END
$$;

-- The due messages the claim takes (src/outbox/claim.ts), oldest first, locked for the caller's
-- statement. The plan is pinned to reading the due index in order and stopping at the limit: a
-- fan-out that just queued a million rows leaves statistics that say "few queued", and the
-- planner then read, sorted and lock-tested the whole queue on every claim (O(queue) per batch).
-- What waits is read once as two short lists and tested per row, never anti-joined.
CREATE OR REPLACE FUNCTION outbox_due(max_rows integer) RETURNS SETOF uuid
  LANGUAGE sql VOLATILE
  SET enable_sort = off SET enable_bitmapscan = off SET enable_seqscan = off AS $$
  WITH held AS MATERIALIZED (
    SELECT ARRAY(SELECT id FROM tenants WHERE newsletter_paused_at IS NOT NULL) AS tenants,
           ARRAY(SELECT id FROM send_jobs WHERE status = 'paused') AS jobs
  )
  SELECT m.id FROM messages m, held h
   WHERE m.status = 'queued' AND m.priority = 0 AND m.next_attempt_at <= now()
     -- Guardrail (src/events/guardrail.ts): a paused tenant's newsletters wait; transactional goes on.
     AND (m.tenant_id <> ALL (h.tenants)
          OR (m.send_job_id IS NULL
              AND NOT EXISTS (SELECT 1 FROM proxy_jobs j WHERE j.id = m.proxy_job_id AND j.message_type = 'newsletter')))
     -- A paused campaign's messages wait where they are (src/jobs/campaigns.ts).
     AND (m.send_job_id IS NULL OR m.send_job_id <> ALL (h.jobs))
   -- A message past its expires_at (an OTP, a closed window) is claimed too, to be settled as expired.
   ORDER BY m.next_attempt_at LIMIT greatest(0, max_rows) FOR UPDATE OF m SKIP LOCKED
$$;
