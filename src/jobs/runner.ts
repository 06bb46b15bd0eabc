import type PgBoss from 'pg-boss';
import type { Db } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { fanOutChunk } from './fanout.ts';
import { failSendJob } from './jobs.ts';
import { settleQueuedSql } from '../outbox/settle.ts';

/** pg-boss queues of a send job's life: one job-level message each, never one per recipient. */
export const QUEUES = {
  /** Start (at scheduled_at / window_start) and fan out, in slices, resuming from the cursor. */
  run: 'send-job.run',
  /** At window_end: whatever is still queued is expired. */
  expire: 'send-job.expire',
  /** Polls until nothing is left to send, then completes the job. */
  check: 'send-job.check',
} as const;

export interface JobScheduler {
  scheduleRun(jobId: string, startAt: Date): Promise<void>;
}

export interface RunnerOptions {
  chunkSize: number;
  defaultRatePerSecond: number | null;
  checkEverySeconds: number;
}

// A run slice hands over to a fresh pg-boss job after this long, so a healthy long fan-out never
// reaches the job's expiry, and a crashed one is retried (from its cursor) soon after it.
const SLICE_MS = 20_000;
const RUN_EXPIRE_SECONDS = 60;

type Data = { jobId: string };

export function bossScheduler(boss: PgBoss): JobScheduler {
  return {
    async scheduleRun(jobId, startAt) {
      await boss.send(QUEUES.run, { jobId }, { startAfter: startAt, retryLimit: 10, retryDelay: 5, expireInSeconds: RUN_EXPIRE_SECONDS });
    },
  };
}

export async function createSendJobQueues(boss: PgBoss) {
  for (const name of Object.values(QUEUES)) await boss.createQueue(name);
}

/** The worker side: runs, expires and completes send jobs. */
export async function registerSendJobWorkers(boss: PgBoss, db: Db, options: RunnerOptions, log: Logger) {
  const later = (name: string, jobId: string, startAfter: Date | number) =>
    boss.send(name, { jobId }, { startAfter, retryLimit: 10, retryDelay: 5, expireInSeconds: RUN_EXPIRE_SECONDS });

  async function run(jobId: string) {
    const { rows } = await db.query(
      `UPDATE send_jobs j
          SET status = 'running', started_at = coalesce(j.started_at, now()),
              recipients_total = coalesce(j.recipients_total, (
                SELECT count(*) FROM list_members m JOIN subscribers s ON s.tenant_id = m.tenant_id AND s.id = m.subscriber_id
                 WHERE m.tenant_id = j.tenant_id AND m.list_id = j.list_id AND m.status = 'active' AND s.status = 'active'))
        WHERE id = $1 AND status IN ('pending', 'running')
          -- A campaign rescheduled later (/v1/campaigns/{id}/schedule) leaves its earlier run behind: not yet.
          AND (status = 'running' OR greatest(scheduled_at, coalesce(window_start, scheduled_at)) <= now() + interval '1 second')
        RETURNING window_end, fanout_done, (started_at = now()) AS first_run`,
      [jobId],
    );
    const job = rows[0];
    if (!job) return; // cancelled or finished meanwhile
    if (job.first_run) {
      log.info({ send_job_id: jobId }, 'send job started');
      if (job.window_end) await later(QUEUES.expire, jobId, job.window_end);
      await later(QUEUES.check, jobId, options.checkEverySeconds);
    }
    const until = Date.now() + SLICE_MS;
    let done = job.fanout_done as boolean;
    while (!done && Date.now() < until) {
      const chunk = await fanOutChunk(db, jobId, options.chunkSize, options.defaultRatePerSecond);
      if (!chunk.active) return;
      done = chunk.done;
    }
    if (!done) await later(QUEUES.run, jobId, new Date());
  }

  async function expire(jobId: string) {
    const expired = await db.query(
      `WITH stop AS (UPDATE send_jobs SET fanout_done = true WHERE id = $1 AND status IN ('running', 'paused') RETURNING id)
       ${settleQueuedSql('(SELECT id FROM stop)', "'expired'", "'send window ended'")}`,
      [jobId],
    );
    log.info({ send_job_id: jobId, expired: expired.rowCount }, 'send window closed');
  }

  async function check(jobId: string) {
    const { rows } = await db.query(
      `UPDATE send_jobs SET status = 'completed', finished_at = now()
        WHERE id = $1 AND status IN ('running', 'paused') AND fanout_done
          AND NOT EXISTS (SELECT 1 FROM messages WHERE send_job_id = $1 AND status IN ('queued', 'sending'))
       RETURNING id`,
      [jobId],
    );
    if (rows.length) return log.info({ send_job_id: jobId }, 'send job completed');
    // A paused campaign is still watched: its window may close, and it resumes where it stopped.
    const still = await db.query(`SELECT 1 FROM send_jobs WHERE id = $1 AND status IN ('pending', 'running', 'paused')`, [jobId]);
    if (still.rowCount) await later(QUEUES.check, jobId, options.checkEverySeconds);
  }

  const handlers: Record<string, (jobId: string) => Promise<unknown>> = { [QUEUES.run]: run, [QUEUES.expire]: expire, [QUEUES.check]: check };
  for (const [name, handler] of Object.entries(handlers)) {
    await boss.work<Data>(name, { pollingIntervalSeconds: 0.5, batchSize: 1, includeMetadata: true }, async ([job]) => {
      try {
        await handler(job.data.jobId);
      } catch (err) {
        // A transient error is retried by pg-boss; one that retrying cannot cure, or the last
        // retry, fails the send job with its reason: never a job left `running` for ever.
        const permanent = isPermanent(err);
        if (!permanent && job.retryCount < job.retryLimit) {
          log.warn({ send_job_id: job.data.jobId, queue: name, attempt: job.retryCount + 1, err: (err as Error).message }, 'send job step failed; retrying');
          throw err;
        }
        const reason = `${name} failed: ${(err as Error).message}`.slice(0, 500);
        const failed = await failSendJob(db, job.data.jobId, reason);
        log.error({ send_job_id: job.data.jobId, queue: name, permanent, failed, err: (err as Error).message }, 'send job failed');
      }
    });
  }
}

/** PostgreSQL data exceptions (class 22: an interval out of range) and integrity violations (23) recur on every retry. */
function isPermanent(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}
