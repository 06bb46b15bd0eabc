import type { Queryable } from '../db/pool.ts';
import { newId } from '../ids.ts';

/** What became of one claimed message; `attempt` is the attempt its claim counted. */
export type Outcome = { id: string; attempt: number } & (
  | { kind: 'sent'; providerMessageId: string }
  | { kind: 'retry'; error: string; delayMs: number }
  | { kind: 'failed'; error: string }
  /** Not sent after all: the message ends with this status (suppressed, cancelled, expired). */
  | { kind: 'skipped'; status: 'suppressed' | 'cancelled' | 'expired'; error: string }
);

/** An outcome that arrived for a message this worker no longer held: kept in the timeline only. */
export interface LateOutcome {
  id: string;
  kind: Outcome['kind'];
  /** The message's status and holder when the outcome arrived. */
  status: string;
  leasedBy: string | null;
}

interface LateRow {
  id: string;
  kind: Outcome['kind'];
  status: string;
  leased_by: string | null;
}

/**
 * One statement: applies outcomes to the messages this worker still holds, and writes every
 * outcome's timeline event (send, deferral, failure or the skip status). A `sent` outcome is applied
 * even if this worker's lease lapsed meanwhile, because the message did go out. Any other outcome for
 * a message now held by another worker or settled meanwhile (and a `sent` for one already sent: a
 * second copy went out) changes nothing but is recorded as an event with `late: true` and returned,
 * so the caller logs it.
 */
const RECORD_SQL = `
WITH r AS (
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[], $8::text[], $9::int[])
    AS r(id, event_id, kind, provider_id, error, delay_ms, skip_status, attempt)
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
  RETURNING m.id
), late AS (
  SELECT r.id, r.kind, m.status, m.leased_by, m.tenant_id
    FROM r JOIN messages m ON m.id = r.id
   WHERE r.id NOT IN (SELECT id FROM updated)
), events AS (
  INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, data, dedupe_key)
  SELECT r.event_id, m.tenant_id, r.id,
         CASE r.kind WHEN 'sent' THEN 'send' WHEN 'retry' THEN 'deferral' WHEN 'failed' THEN 'failure' ELSE r.skip_status END,
         now(),
         jsonb_strip_nulls(jsonb_build_object('provider_message_id', r.provider_id, 'error', r.error, 'attempt', r.attempt,
                                              'late', CASE WHEN l.id IS NOT NULL THEN true END)),
         r.id || ':' || r.kind || ':' || r.attempt || CASE WHEN l.id IS NOT NULL THEN ':late' ELSE '' END
    FROM r JOIN messages m ON m.id = r.id
    LEFT JOIN late l ON l.id = r.id
   WHERE l.id IS NOT NULL OR r.id IN (SELECT id FROM updated)
  ON CONFLICT (dedupe_key) DO NOTHING
)
SELECT id, kind, status, leased_by FROM late`;

export async function recordOutcomes(db: Queryable, workerId: string, outcomes: Outcome[]): Promise<LateOutcome[]> {
  if (!outcomes.length) return [];
  const { rows } = await db.query<LateRow>(RECORD_SQL, [
    outcomes.map((o) => o.id),
    outcomes.map(() => newId()),
    outcomes.map((o) => o.kind),
    outcomes.map((o) => (o.kind === 'sent' ? o.providerMessageId : null)),
    outcomes.map((o) => (o.kind === 'sent' ? null : o.error)),
    outcomes.map((o) => (o.kind === 'retry' ? Math.round(o.delayMs) : 0)),
    workerId,
    outcomes.map((o) => (o.kind === 'skipped' ? o.status : null)),
    outcomes.map((o) => o.attempt),
  ]);
  return rows.map((r) => ({ id: r.id, kind: r.kind, status: r.status, leasedBy: r.leased_by }));
}
