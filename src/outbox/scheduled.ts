import type { Queryable } from '../db/pool.ts';
import { DISPATCH_CHANNEL } from './enqueue.ts';

/**
 * Which messages a cancel or a move of a scheduled send names ($1 tenant, $2 the id given):
 * `message` that message only (PATCH /v1/messages/{id}); `send_of_message` every copy of the send
 * that message belongs to (its To, Cc and Bcc recipients); `send` every copy of the send (a
 * proxy job) named by its own id, as other providers' APIs name "an email" (src/compat).
 */
export type ScheduledTarget = 'message' | 'send_of_message' | 'send';
const TARGET: Record<ScheduledTarget, string> = {
  message: 'm.tenant_id = $1 AND m.id = $2::uuid',
  send_of_message: 'm.tenant_id = $1 AND m.proxy_job_id = (SELECT proxy_job_id FROM messages WHERE tenant_id = $1 AND id = $2::uuid)',
  send: 'm.tenant_id = $1 AND m.proxy_job_id = $2::uuid',
};

// A message is still scheduled while it is queued, never tried, and its send had a scheduled_at.
// The UPDATE and the dispatcher's claim lock the same row: exactly one of them wins.
const stillScheduled = (target: ScheduledTarget) => `${TARGET[target]} AND m.status = 'queued' AND m.attempts = 0
  AND EXISTS (SELECT 1 FROM proxy_jobs j WHERE j.id = m.proxy_job_id AND j.scheduled_at IS NOT NULL)`;

/** A message a cancel or a move changed. */
export interface ScheduledRow {
  id: string;
  status: string;
  next_attempt_at: Date;
}

const CANCEL_SQL = Object.fromEntries(
  (Object.keys(TARGET) as ScheduledTarget[]).map((t) => [t,
    `UPDATE messages m SET status = 'cancelled', last_error = 'cancelled by request', updated_at = now()
      WHERE ${stillScheduled(t)} RETURNING m.id, m.status, m.next_attempt_at`]),
) as Record<ScheduledTarget, string>;

// The NOTIFY wakes the dispatcher: the new time may be sooner than the one it sleeps towards.
const MOVE_SQL = Object.fromEntries(
  (Object.keys(TARGET) as ScheduledTarget[]).map((t) => [t,
    `WITH moved AS (
       UPDATE messages m SET next_attempt_at = $3, updated_at = now()
        WHERE ${stillScheduled(t)} RETURNING m.id, m.status, m.next_attempt_at
     ), wake AS (
       SELECT pg_notify('${DISPATCH_CHANNEL}', '') FROM (SELECT 1 FROM moved LIMIT 1) q
     )
     SELECT moved.*, (SELECT count(*) FROM wake) AS woken FROM moved`]),
) as Record<ScheduledTarget, string>;

/** Cancels the still-scheduled messages of `target`, in one statement; none when it is too late (or not theirs). */
export async function cancelScheduled(db: Queryable, target: ScheduledTarget, tenantId: string, id: string): Promise<ScheduledRow[]> {
  return (await db.query<ScheduledRow>(CANCEL_SQL[target], [tenantId, id])).rows;
}

/** Moves the still-scheduled messages of `target` to `at`, in one statement, and wakes the dispatcher. */
export async function moveScheduled(db: Queryable, target: ScheduledTarget, tenantId: string, id: string, at: Date): Promise<ScheduledRow[]> {
  return (await db.query<ScheduledRow>(MOVE_SQL[target], [tenantId, id, at])).rows;
}
