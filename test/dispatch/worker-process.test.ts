import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitProxySend } from '../../src/sending/submit.ts';
import { tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';
import { exited, startWorkerProcess } from '../helpers/worker.ts';

let database: TestDatabase;
let tenantId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  ({ tenantId } = await tenantWithToken(database.db));
});
afterAll(() => database.drop());

const startWorker = (sink: SmtpSink, env: Record<string, string> = {}) => startWorkerProcess(database.url, sink.url, env);

async function submitMany(n: number, key: string) {
  const to = Array.from({ length: n }, (_, i) => `user${i}@example.com`);
  const { jobId } = await submitProxySend(
    database.db,
    tenantId,
    { message_type: 'transactional', from: 'sender@acme.test', to, subject: 'Batch', html: '<p>x</p>', text: 'x', tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' }, idempotency_key: key },
    { idempotencyTtlHours: 24 },
  );
  return jobId;
}

async function statuses(jobId: string): Promise<Map<string, string>> {
  const { rows } = await database.db.query('SELECT id, status FROM messages WHERE proxy_job_id = $1', [jobId]);
  return new Map(rows.map((r) => [r.id, r.status]));
}

describe('worker processes', () => {
  it('a worker killed mid-batch loses nothing, and a send it recorded is never repeated', async () => {
    const sink = await startSmtpSink({ delayMs: 10 });
    try {
      const jobId = await submitMany(300, 'crash');
      const first = startWorker(sink, { DISPATCH_LEASE_SECONDS: '4' });
      await until(() => sink.messages.length >= 40, 20_000, 'the first worker to get going');
      first.kill('SIGKILL');
      await exited(first);
      const atKill = await statuses(jobId);
      const recordedSent = [...atKill].filter(([, s]) => s === 'sent').map(([id]) => id);
      const inFlight = [...atKill].filter(([, s]) => s === 'sending').length;
      expect(recordedSent.length).toBeGreaterThan(0);
      expect(inFlight).toBeGreaterThan(0);

      const second = startWorker(sink, { DISPATCH_LEASE_SECONDS: '4' });
      try {
        await until(async () => [...(await statuses(jobId)).values()].every((s) => s === 'sent'), 40_000, 'every message to be sent');
      } finally {
        second.kill('SIGTERM');
        await exited(second);
      }
      const deliveries = new Map<string, number>();
      for (const m of sink.messages) deliveries.set(m.messageId, (deliveries.get(m.messageId) ?? 0) + 1);
      const all = [...(await statuses(jobId)).keys()];
      // Nothing lost: every message reached the SMTP server.
      expect(all.filter((id) => !deliveries.has(id))).toEqual([]);
      // A send recorded before the crash is never made again.
      expect(recordedSent.filter((id) => deliveries.get(id) !== 1)).toEqual([]);
      // Repeats are confined to the sends in flight when the process died (at-least-once there).
      const repeats = [...deliveries.values()].filter((n) => n > 1).length;
      expect(repeats).toBeLessThanOrEqual(inFlight);
    } finally {
      await sink.close();
    }
  });

  it('SIGTERM stops claiming, finishes in-flight sends, records them and gives back the rest', async () => {
    const sink = await startSmtpSink({ delayMs: 20 });
    try {
      const jobId = await submitMany(200, 'graceful');
      const worker = startWorker(sink);
      await until(() => sink.messages.length >= 20, 20_000, 'the worker to get going');
      worker.kill('SIGTERM');
      expect(await exited(worker)).toBe(0);
      const after = await statuses(jobId);
      const delivered = new Set(sink.messages.map((m) => m.messageId));
      expect([...after.values()].filter((s) => s === 'sending')).toEqual([]);
      for (const [id, status] of after) expect(status === 'sent', `message ${id}`).toBe(delivered.has(id));
      expect(delivered.size).toBeLessThan(200);
      const { rows } = await database.db.query(`SELECT count(*)::int AS n FROM messages WHERE proxy_job_id = $1 AND status = 'queued' AND attempts = 0`, [jobId]);
      expect(rows[0].n).toBe(200 - delivered.size);
    } finally {
      await sink.close();
    }
  });
});
