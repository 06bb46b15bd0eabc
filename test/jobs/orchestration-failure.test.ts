import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSendJob, failSendJob, getSendJob } from '../../src/jobs/jobs.ts';
import { fanOutChunk } from '../../src/jobs/fanout.ts';
import { startOrchestration, type Orchestration } from '../../src/orchestration/boss.ts';
import { tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { until } from '../helpers/wait.ts';
import { seedList } from './helpers.ts';

/** Issue 9, item 10: a send job whose orchestration fails ends `failed` with its reason, and says so in the log. */
let database: TestDatabase;
let orchestration: Orchestration;
const lines: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  database = await createTestDatabase();
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  orchestration = await startOrchestration(database.url, database.db, logger, { worker: true, sendJobs: { chunkSize: 100, defaultRatePerSecond: null, checkEverySeconds: 1 } });
});
afterAll(async () => {
  await orchestration?.stop();
  await database?.drop();
});

describe('a send job whose orchestration fails', () => {
  it('ends failed with status_reason and an error log line naming the job (a data error is not retried)', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const { listId } = await seedList(database.db, tenantId, { count: 3 });
    const job = await createSendJob(database.db, tenantId, { list_id: listId, subject: 'Hi', body_text: 'x' }, { from: 'news@acme.test' });
    // A rate the API refuses today (an older engine accepted it): the fan-out fails with "out of range".
    await database.db.query('UPDATE send_jobs SET rate_per_second = 1e-300 WHERE id = $1', [job.id]);
    await orchestration.scheduler.scheduleRun(job.id, new Date());
    const failed = await until(async () => {
      const j = await getSendJob(database.db, tenantId, job.id);
      return j.status === 'failed' ? j : undefined;
    }, 15_000, 'the job to fail');
    expect(failed.status_reason).toMatch(/^send-job\.run failed: .*out of range/);
    const logged = lines.find((l) => l.msg === 'send job failed' && l.send_job_id === job.id);
    expect(logged).toMatchObject({ level: 50, queue: 'send-job.run', permanent: true, failed: true });
    // Failed at the first attempt: no retry of an error that cannot pass.
    expect(lines.filter((l) => l.msg === 'send job step failed; retrying' && l.send_job_id === job.id)).toEqual([]);
  });

  it('failSendJob fails what the job had queued, and leaves a finished job alone', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const { listId } = await seedList(database.db, tenantId, { count: 3 });
    const job = await createSendJob(database.db, tenantId, { list_id: listId, subject: 'Hi', body_text: 'x', scheduled_at: new Date(Date.now() + 3_600_000).toISOString() }, { from: 'news@acme.test' });
    await database.db.query(`UPDATE send_jobs SET status = 'running', started_at = now() WHERE id = $1`, [job.id]);
    expect((await fanOutChunk(database.db, job.id, 100, null)).inserted).toBe(3);
    expect(await failSendJob(database.db, job.id, 'send-job.run failed: boom')).toBe(true);
    const view = await getSendJob(database.db, tenantId, job.id);
    expect(view).toMatchObject({ status: 'failed', status_reason: 'send-job.run failed: boom', counts: { total: 3, failed: 3, queued: 0 } });
    expect(view.finished_at).not.toBeNull();
    expect(await failSendJob(database.db, job.id, 'again')).toBe(false);
    expect((await getSendJob(database.db, tenantId, job.id)).status_reason).toBe('send-job.run failed: boom');
  });
});
