import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';
import { exited, startWorkerProcess } from '../helpers/worker.ts';
import { seedList } from './helpers.ts';

let database: TestDatabase;
let sink: SmtpSink;
let api: TestEngine;

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await startSmtpSink({ delayMs: 10 });
  // API only: the send job's fan-out and sends happen in the worker processes below.
  api = await startTestEngine(database.db, database.url);
});
afterAll(async () => {
  await api.close();
  await sink.close();
  await database.drop();
});

const startWorker = () => startWorkerProcess(database.url, sink.url, { DISPATCH_LEASE_SECONDS: '4' });

describe('a list send job survives its worker being killed', () => {
  it('every eligible member gets exactly one message; a recorded send is never repeated', async () => {
    const { token, tenantId } = await tenantWithToken(database.db);
    const { listId, members } = await seedList(database.db, tenantId, { count: 200, domain: 'crash.test' });
    const first = startWorker();
    const created = await call(api.baseUrl, 'POST', '/api/send-jobs', { token, body: { list_id: listId, subject: 'Crash test', body_text: 'x' } });
    expect(created.status).toBe(200);
    const jobId = created.json.send_job_id;

    // A spawned worker starts slowly on a loaded 2-core machine (tsx, pg-boss, render threads).
    await until(() => sink.messages.length >= 40 || undefined, 60_000, 'the first worker to send');
    first.kill('SIGKILL');
    await exited(first);
    const { rows: atKill } = await database.db.query(`SELECT id, status FROM messages WHERE send_job_id = $1`, [jobId]);
    const recordedSent = atKill.filter((r) => r.status === 'sent').map((r) => r.id as string);
    const inFlight = atKill.filter((r) => r.status === 'sending').length;

    const second = startWorker();
    try {
      await until(async () => (await call(api.baseUrl, 'GET', `/api/send-jobs/${jobId}`, { token })).json.status === 'completed' || undefined, 90_000, 'the job to complete');
    } finally {
      second.kill('SIGTERM');
      await exited(second);
    }
    const job = (await call(api.baseUrl, 'GET', `/api/send-jobs/${jobId}`, { token })).json;
    expect(job.counts).toMatchObject({ total: 200, sent: 200, queued: 0, failed: 0 });

    const idsByRecipient = new Map<string, Set<string>>();
    const deliveries = new Map<string, number>();
    for (const m of sink.messages) {
      idsByRecipient.set(m.envelopeTo[0], (idsByRecipient.get(m.envelopeTo[0]) ?? new Set()).add(m.messageId));
      deliveries.set(m.messageId, (deliveries.get(m.messageId) ?? 0) + 1);
    }
    // Every member, and one message each (a resend of an in-flight message is the same message).
    expect([...idsByRecipient.keys()].sort()).toEqual(members.map((m) => m.email).sort());
    expect([...idsByRecipient.values()].filter((ids) => ids.size !== 1)).toEqual([]);
    expect(recordedSent.filter((id) => deliveries.get(id) !== 1)).toEqual([]);
    expect([...deliveries.values()].filter((n) => n > 1).length).toBeLessThanOrEqual(inFlight);
  }, 150_000);
});
