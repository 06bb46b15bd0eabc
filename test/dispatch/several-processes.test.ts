import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, TEST_JWT_SECRET, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';
import { CLI, exited, startWorkerProcess } from '../helpers/worker.ts';
import { freePort } from '../e2e/processes.ts';
import { seedList } from '../jobs/helpers.ts';

const MEMBERS = 200;
const RATE = 10; // the tenant's messages per second: 20 s for the list; unpaced, the same list took about 6 s here under load

let database: TestDatabase;
let sink: SmtpSink;
const children: ChildProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await startSmtpSink();
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await sink.close();
  await database.drop();
});

function startServe(port: number): ChildProcess {
  return spawn(process.execPath, [CLI, 'serve'], {
    env: {
      ...process.env, DATABASE_URL: database.url, JWT_SECRET: TEST_JWT_SECRET, PORT: String(port), HOST: '127.0.0.1',
      SEND_ENGINE_TRANSPORT: sink.url, DEFAULT_FROM_ADDRESS: 'news@acme.test', REQUIRE_VERIFIED_DOMAIN: 'false', LOG_LEVEL: 'error',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

describe('two workers and one API process on one PostgreSQL', () => {
  it('deliver a list job exactly once per member, at the tenant\'s rate across both workers', async () => {
    const { tenantId, token } = await tenantWithToken(database.db);
    await database.db.query('UPDATE tenants SET max_send_rate = $2 WHERE id = $1', [tenantId, RATE]);
    const { listId, members } = await seedList(database.db, tenantId, { count: MEMBERS, domain: 'several.test' });

    const port = await freePort();
    const serve = startServe(port);
    const workers = [0, 1].map(() => startWorkerProcess(database.url, sink.url, { REQUIRE_VERIFIED_DOMAIN: 'false', LOG_LEVEL: 'error' }));
    children.push(serve, ...workers);
    const baseUrl = `http://127.0.0.1:${port}`;
    await until(() => fetch(`${baseUrl}/v1/_health`).then((r) => r.ok || undefined, () => undefined), 60_000, 'the API process');

    // The rate is the tenant's, as the API reports it.
    expect((await call(baseUrl, 'GET', '/v1/account', { token })).json.send_quota.max_send_rate).toBe(RATE);
    const createdAt = Date.now();
    const created = await call(baseUrl, 'POST', '/api/send-jobs', { token, body: { list_id: listId, subject: 'Hello {{ email }}', body_text: 'Hi' } });
    expect(created.status).toBe(200);
    const job = await until(async () => {
      const res = await call(baseUrl, 'GET', `/api/send-jobs/${created.json.send_job_id}`, { token });
      return ['completed', 'failed', 'cancelled'].includes(res.json.status) ? res.json : undefined;
    }, 60_000, 'the job to finish');
    expect(job.status).toBe('completed');
    expect(job.counts).toMatchObject({ total: MEMBERS, sent: MEMBERS, queued: 0, failed: 0 });

    // Exactly once: one delivery per member, each message id once.
    const got = sink.messages.filter((m) => m.envelopeTo[0].endsWith('@several.test'));
    expect(got).toHaveLength(MEMBERS);
    expect(new Set(got.map((m) => m.messageId)).size).toBe(MEMBERS);
    expect(got.map((m) => m.envelopeTo[0]).sort()).toEqual(members.map((m) => m.email).sort());

    // The rate held across the two workers: the tenant's send clock gives member i the slot i/R
    // after the job started and no worker sends before a slot, so the sends span at least (N-1)/R
    // from the job's creation. (Sends behind a late one catch up, so first-to-last delivery alone
    // is no measure.) Unpaced, the same list went out in about 6 s here.
    const times = got.map((m) => m.receivedAt).sort((a, b) => a - b);
    expect((times[times.length - 1] - createdAt) / 1000).toBeGreaterThanOrEqual((MEMBERS - 1) / RATE);

    // Both workers were still up and stop cleanly.
    for (const w of workers) w.kill('SIGTERM');
    serve.kill('SIGTERM');
    expect(await Promise.all([...workers, serve].map(exited))).toEqual([0, 0, 0]);
  }, 150_000);
});
