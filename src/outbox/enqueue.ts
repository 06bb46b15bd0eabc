/** Channel the dispatcher LISTENs on; a NOTIFY in the enqueuing transaction wakes it at commit. */
export const DISPATCH_CHANNEL = 'send_engine_dispatch';

/**
 * The columns a producer's rows must carry, by name, for enqueueCtes(). Anything a producer does
 * not know is NULL (`NULL::uuid AS send_job_id`) or its default (`now() AS next_attempt_at`).
 */
export const ENQUEUE_COLUMNS = [
  'id', 'tenant_id', 'proxy_job_id', 'send_job_id', 'subscriber_id', 'recipient', 'tags', 'headers', 'next_attempt_at', 'expires_at',
] as const;

/**
 * What a text channel's rows (SMS, WhatsApp: src/channels/enqueue.ts) carry as well, with
 * `enqueueCtes(rows, { channel: true })`; email's rows leave them to their defaults ('email', 0).
 */
export const CHANNEL_ENQUEUE_COLUMNS = ['channel', 'priority'] as const;

/**
 * The one way messages enter the outbox, as CTEs for the producer's own statement (so accepting
 * a send stays one atomic statement, one round trip): every row of `rows` (a SELECT with
 * ENQUEUE_COLUMNS) becomes a message, `queued`, or `suppressed` when the address is on its
 * tenant's suppression list (never claimed); a list member already enqueued for the job is
 * skipped (a retried fan-out chunk); if anything was queued, the dispatcher is woken at commit.
 * The tags' string values become searchable (GET /v1/messages?tag=, migration 030) once per source:
 * every message of a job carries its job's tags, so a row names the send or proxy job (a message
 * with neither names itself), and a list send writes a few rows per chunk, not a few per member.
 *
 * Defines `enqueued (id, status)`; the producer's final SELECT must name ENQUEUE_WAKE, or
 * PostgreSQL never evaluates the wake-up.
 */
export function enqueueCtes(rows: string, options: { channel?: boolean } = {}): string {
  const columns: readonly string[] = options.channel ? [...ENQUEUE_COLUMNS, ...CHANNEL_ENQUEUE_COLUMNS] : ENQUEUE_COLUMNS;
  return `enqueued AS (
       INSERT INTO messages (${columns.join(', ')}, status)
       SELECT ${columns.map((c) => `r.${c}`).join(', ')},
              CASE WHEN sup.email IS NULL THEN 'queued' ELSE 'suppressed' END
         FROM (${rows}) AS r
         LEFT JOIN suppressions sup ON sup.tenant_id = r.tenant_id AND sup.email = lower(r.recipient)
       ON CONFLICT (send_job_id, subscriber_id) WHERE send_job_id IS NOT NULL DO NOTHING
       RETURNING id, status, tenant_id, tags, coalesce(send_job_id, proxy_job_id, id) AS source_id,
                 CASE WHEN send_job_id IS NOT NULL THEN 'send_job' WHEN proxy_job_id IS NOT NULL THEN 'proxy_job' ELSE 'message' END AS source
     ), enqueue_tags AS (
       INSERT INTO message_tags (tenant_id, name, value, source_id, source)
       SELECT DISTINCT s.tenant_id, t.key, t.value #>> '{}', s.source_id, s.source
         FROM (SELECT DISTINCT tenant_id, source_id, source, tags FROM enqueued WHERE tags <> '{}') s, jsonb_each(s.tags) t
        WHERE jsonb_typeof(t.value) = 'string'
       ON CONFLICT DO NOTHING
     ), enqueue_wake AS (
       SELECT pg_notify('${DISPATCH_CHANNEL}', '') FROM (SELECT 1 FROM enqueued WHERE status = 'queued' LIMIT 1) q
     )`;
}

/** A select-list item that makes the wake-up happen (its value is 0 or 1). */
export const ENQUEUE_WAKE = '(SELECT count(*) FROM enqueue_wake) AS woken';
