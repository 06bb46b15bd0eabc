import type { Queryable } from '../db/pool.ts';
import type { MessageStatus } from './status.ts';

/** How a job's unsent messages end when the job does: cancelled, failed with it, or its window closed. */
export type SettledStatus = Extract<MessageStatus, 'cancelled' | 'failed' | 'expired'>;

/**
 * The statement that settles a send job's still-queued messages (claimed ones are the
 * dispatcher's: it re-checks the job at send time). `jobId` is SQL: a parameter (`$1`) or a
 * subquery of the caller's own statement (`(SELECT id FROM stop)`), so settling stays part of the
 * caller's single statement. `$status` and `$error` are parameter references too.
 */
export function settleQueuedSql(jobId: string, status: string, error: string): string {
  return `UPDATE messages SET status = ${status}, last_error = ${error}, updated_at = now()
        WHERE send_job_id = ${jobId} AND status = 'queued'`;
}

/**
 * The statement that moves a send job's still-queued messages later by `by` (a resumed campaign:
 * they keep their order and spacing), for the caller's CTE chain; `jobId` and `by` are SQL as
 * above. RETURNING m.next_attempt_at.
 */
export function delayQueuedSql(jobId: string, by: string): string {
  return `UPDATE messages m SET next_attempt_at = m.next_attempt_at + ${by}, updated_at = now()
        WHERE m.send_job_id = ${jobId} AND m.status = 'queued'
    RETURNING m.next_attempt_at`;
}

/** Settles a job's queued messages; returns how many. One statement. */
export async function settleQueued(db: Queryable, jobId: string, status: SettledStatus, error: string): Promise<number> {
  const { rowCount } = await db.query(settleQueuedSql('$1', '$2', '$3'), [jobId, status, error]);
  return rowCount ?? 0;
}
