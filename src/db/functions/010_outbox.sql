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
