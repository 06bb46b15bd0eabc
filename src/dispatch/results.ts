import type { Queryable } from '../db/pool.ts';
import { newId } from '../ids.ts';

export type Outcome =
  | { id: string; kind: 'sent'; providerMessageId: string }
  | { id: string; kind: 'retry'; error: string; delayMs: number }
  | { id: string; kind: 'failed'; error: string }
  /** Not sent after all: the message ends with this status (suppressed, cancelled, expired). */
  | { id: string; kind: 'skipped'; status: 'suppressed' | 'cancelled' | 'expired'; error: string };

/**
 * Writes a set of send outcomes in one statement: the message status and the matching timeline
 * event (send, deferral or failure). A `sent` outcome is recorded even if this worker's lease
 * lapsed meanwhile, because the message did go out; retries and failures only while it is ours.
 */
export async function recordOutcomes(db: Queryable, workerId: string, outcomes: Outcome[]): Promise<void> {
  if (!outcomes.length) return;
  await db.query(
    `WITH r AS (
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[], $8::text[])
         AS r(id, event_id, kind, provider_id, error, delay_ms, skip_status)
     ), updated AS (
       UPDATE messages m
          SET status = CASE r.kind WHEN 'sent' THEN 'sent' WHEN 'retry' THEN 'queued' WHEN 'failed' THEN 'failed' ELSE r.skip_status END,
              provider_message_id = COALESCE(r.provider_id, m.provider_message_id),
              last_error = r.error,
              sent_at = CASE WHEN r.kind = 'sent' THEN now() ELSE m.sent_at END,
              next_attempt_at = CASE WHEN r.kind = 'retry' THEN now() + make_interval(secs => r.delay_ms / 1000.0) ELSE m.next_attempt_at END,
              lease_until = NULL, leased_by = NULL, updated_at = now()
         FROM r
        WHERE m.id = r.id
          AND ((m.status = 'sending' AND m.leased_by = $7) OR (r.kind = 'sent' AND m.status IN ('sending', 'queued')))
       RETURNING m.id, m.tenant_id, m.attempts, m.status, r.event_id, r.kind, r.provider_id, r.error
     )
     INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, data, dedupe_key)
     SELECT event_id, tenant_id, id,
            CASE kind WHEN 'sent' THEN 'send' WHEN 'retry' THEN 'deferral' WHEN 'failed' THEN 'failure' ELSE status END,
            now(),
            jsonb_strip_nulls(jsonb_build_object('provider_message_id', provider_id, 'error', error, 'attempt', attempts)),
            id || ':' || kind || ':' || attempts
       FROM updated
     ON CONFLICT (dedupe_key) DO NOTHING`,
    [
      outcomes.map((o) => o.id),
      outcomes.map(() => newId()),
      outcomes.map((o) => o.kind),
      outcomes.map((o) => (o.kind === 'sent' ? o.providerMessageId : null)),
      outcomes.map((o) => (o.kind === 'sent' ? null : o.error)),
      outcomes.map((o) => (o.kind === 'retry' ? Math.round(o.delayMs) : 0)),
      workerId,
      outcomes.map((o) => (o.kind === 'skipped' ? o.status : null)),
    ],
  );
}

/** Exponential backoff with jitter: base * 2^(attempt-1), capped, then scaled by a random 50-100%. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return ceiling * (0.5 + random() / 2);
}
