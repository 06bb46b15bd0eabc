import type { Queryable } from '../db/pool.ts';
import { ENQUEUE_WAKE, enqueueCtes } from '../outbox/enqueue.ts';

export interface ChunkResult {
  /** False when the job is no longer running (cancelled) or already fanned out. */
  active: boolean;
  inserted: number;
  done: boolean;
}

/**
 * Writes the next chunk of a running job's messages in ONE statement: the next `chunkSize` active
 * members after the job's cursor (members who unsubscribed before now are not among them), through
 * the outbox's enqueue (queued, or suppressed when the address is suppressed); the cursor moves
 * in the same statement, so a retried chunk never writes a member twice.
 *
 * Send times (`next_attempt_at`) carry the pacing:
 * - `spread`: evenly over [start, window_end) by the member's position among `recipients_total`;
 * - a rate (job's, else tenant's, else the default): the chunk reserves consecutive slots on the
 *   tenant's send clock, so the rate holds across jobs and worker processes;
 * - no rate: as soon as the window opens.
 *
 * The job row is locked FOR UPDATE, which orders a chunk against a concurrent cancel: either the
 * chunk commits first and the cancel then cancels its messages, or the cancel commits first and
 * the chunk finds the job no longer running and writes nothing.
 */
export async function fanOutChunk(db: Queryable, jobId: string, chunkSize: number, defaultRate: number | null): Promise<ChunkResult> {
  const { rows } = await db.query(
    `WITH job AS (
       SELECT j.id, j.tenant_id, j.list_id, j.campaign_id, j.fanout_cursor, j.fanout_count, j.window_end, j.pacing, j.recipients_total,
              greatest(now(), coalesce(j.window_start, now())) AS base,
              greatest(j.started_at, coalesce(j.window_start, j.started_at)) AS spread_base,
              coalesce(j.rate_per_second, t.max_send_rate, $3::numeric) AS rate
         FROM send_jobs j JOIN tenants t ON t.id = j.tenant_id
        WHERE j.id = $1 AND j.status = 'running' AND NOT j.fanout_done
        FOR UPDATE OF j
     ), members AS (
       SELECT m.subscriber_id, s.email, row_number() OVER (ORDER BY m.subscriber_id) - 1 AS i
         FROM job
         JOIN list_members m ON m.tenant_id = job.tenant_id AND m.list_id = job.list_id
         JOIN subscribers s ON s.tenant_id = m.tenant_id AND s.id = m.subscriber_id
        WHERE m.status = 'active' AND s.status = 'active'
          AND m.subscriber_id > coalesce(job.fanout_cursor, '00000000-0000-0000-0000-000000000000')
        ORDER BY m.subscriber_id
        LIMIT $2
     ), chunk AS (
       SELECT count(*)::int AS n, (SELECT subscriber_id FROM members ORDER BY i DESC LIMIT 1) AS last FROM members
     ), clock AS (
       INSERT INTO tenant_send_clock AS c (tenant_id, next_slot)
       SELECT job.tenant_id, job.base + make_interval(secs => chunk.n / job.rate)
         FROM job, chunk
        WHERE job.pacing = 'fast' AND job.rate IS NOT NULL AND chunk.n > 0
       ON CONFLICT (tenant_id) DO UPDATE
         SET next_slot = greatest(c.next_slot, (SELECT base FROM job)) + (EXCLUDED.next_slot - (SELECT base FROM job))
       RETURNING c.next_slot
     ), ${enqueueCtes(`
       SELECT uuid_v7() AS id, job.tenant_id, NULL::uuid AS proxy_job_id, job.id AS send_job_id, members.subscriber_id,
              members.email AS recipient,
              jsonb_build_object('campaign_id', job.campaign_id, 'list_id', job.list_id, 'send_job_id', job.id) AS tags,
              '{}'::jsonb AS headers,
              CASE
                WHEN job.pacing = 'spread' THEN job.spread_base
                     + (job.window_end - job.spread_base) * ((job.fanout_count + members.i)::float8 / greatest(job.recipients_total, 1))
                WHEN job.rate IS NOT NULL THEN (SELECT next_slot FROM clock)
                     - make_interval(secs => ((SELECT n FROM chunk) - members.i) / job.rate)
                ELSE job.base
              END AS next_attempt_at,
              job.window_end AS expires_at
         FROM job CROSS JOIN members`)}, progress AS (
       UPDATE send_jobs
          SET fanout_cursor = coalesce(chunk.last, send_jobs.fanout_cursor),
              fanout_count = send_jobs.fanout_count + chunk.n,
              fanout_done = chunk.n < $2
         FROM chunk
        WHERE send_jobs.id = $1 AND EXISTS (SELECT 1 FROM job)
       RETURNING fanout_done
     )
     SELECT EXISTS (SELECT 1 FROM job) AS active,
            (SELECT count(*)::int FROM enqueued) AS inserted,
            coalesce((SELECT fanout_done FROM progress), true) AS done,
            ${ENQUEUE_WAKE}`,
    [jobId, chunkSize, defaultRate],
  );
  return { active: rows[0].active, inserted: rows[0].inserted, done: rows[0].done };
}
