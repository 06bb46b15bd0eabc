import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/dispatch/dispatcher.ts';
import { createLogger } from '../../src/log.ts';
import { submitProxySend } from '../../src/sending/submit.ts';
import { createTransport } from '../../src/transports/index.ts';
import { smtpTransport } from '../../src/transports/smtp.ts';
import { TransportError, type Transport } from '../../src/transports/transport.ts';
import { tenantWithToken, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';

let database: TestDatabase;
let tenantId: string;
let sink: SmtpSink | undefined;
let dispatcher: Dispatcher | undefined;
let transport: Transport | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  ({ tenantId } = await tenantWithToken(database.db));
});
afterEach(async () => {
  await dispatcher?.stop();
  await transport?.close();
  await sink?.close();
  dispatcher = sink = transport = undefined;
});
afterAll(() => database.drop());

let seq = 0;
async function submit(to: string[]) {
  const { jobId } = await submitProxySend(
    database.db,
    tenantId,
    {
      message_type: 'transactional',
      from: 'sender@acme.test',
      to,
      subject: 'Lease',
      html: '<p>hello</p>',
      text: 'hello',
      tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' },
      idempotency_key: `lease-${++seq}`,
    },
    { idempotencyTtlHours: 24 },
  );
  return jobId;
}

const messages = (jobId: string) =>
  database.db
    .query(
      `SELECT m.id, m.recipient, m.status, m.attempts, m.leased_by, m.last_error,
              coalesce(array_agg(e.type ORDER BY e.recorded_at, e.type) FILTER (WHERE e.id IS NOT NULL), '{}') AS events,
              coalesce(array_agg(e.data ORDER BY e.recorded_at, e.type) FILTER (WHERE e.id IS NOT NULL), '{}') AS data
         FROM messages m LEFT JOIN message_events e ON e.message_id = m.id
        WHERE m.proxy_job_id = $1 GROUP BY m.id ORDER BY m.recipient`,
      [jobId],
    )
    .then((r) => r.rows);

/** A logger whose lines the test can read. */
function capturedLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

describe('a send never outlives its lease', () => {
  // The first RCPT stalls 5 s, longer than the 4 s lease: on main the message was reclaimed and sent
  // while the first send was still waiting, and that first send then delivered a second copy.
  it.each([
    ['the transport built from the configuration (per-wait timeouts from the lease)', true],
    ['a transport without timeouts (the lease deadline aborts the send)', false],
  ])('with %s: one copy, and the outcome recorded', async (_name, fromConfig) => {
    sink = await startSmtpSink({ rcptDelayMs: (_a, i) => (i === 0 ? 5_000 : 0) });
    const config = testConfig(database.url, {
      SEND_ENGINE_TRANSPORT: sink.url,
      DISPATCH_LEASE_SECONDS: '4',
      DISPATCH_POLL_MS: '50',
      SEND_RETRY_BASE_MS: '20',
      SEND_RETRY_MAX_MS: '50',
    });
    transport = fromConfig ? createTransport(config) : smtpTransport({ url: sink.url, maxConnections: 2 });
    dispatcher = new Dispatcher(database.db, database.url, transport, config.dispatch, createLogger('silent'));
    await dispatcher.start();
    const jobId = await submit(['stalled@example.com']);
    await until(async () => (await messages(jobId))[0].status === 'sent', 20_000, 'the message to be sent');
    // Past the stalled RCPT's answer: a send that outlived its lease would deliver now.
    await new Promise((r) => setTimeout(r, 5_500));
    expect(sink.messages.map((m) => m.envelopeTo[0])).toEqual(['stalled@example.com']);
    const [row] = await messages(jobId);
    expect(row).toMatchObject({ status: 'sent', attempts: 2, events: ['deferral', 'send'] });
    expect(row.data[0].error).toMatch(/deadline|timeout|timed out|closed/i);
  }, 40_000);
});

describe('outcomes and attempts', () => {
  it('records and logs an outcome that arrives for a message another worker now holds', async () => {
    const config = testConfig(database.url, { DISPATCH_POLL_MS: '50' });
    const { log, lines } = capturedLogger();
    // While this worker sends, its lease is lost and another worker takes the message; then the send fails.
    transport = {
      name: 'test',
      async send(message) {
        await database.db.query(`UPDATE messages SET leased_by = 'other-worker', lease_until = now() + interval '1 hour' WHERE id = $1`, [message.id]);
        throw new TransportError('451 try later', false);
      },
      async close() {},
    };
    dispatcher = new Dispatcher(database.db, database.url, transport, config.dispatch, log);
    await dispatcher.start();
    const jobId = await submit(['late@example.com']);
    const [row] = await until(async () => {
      const rows = await messages(jobId);
      return rows[0].events.length ? rows : undefined;
    }, 10_000, 'the late outcome');
    // The other worker's hold is untouched; the outcome is in the timeline, marked late.
    expect(row).toMatchObject({ status: 'sending', leased_by: 'other-worker', events: ['deferral'] });
    expect(row.data[0]).toMatchObject({ late: true, error: '451 try later', attempt: 1 });
    await until(() => lines.some((l) => l.msg?.toString().includes('no longer held') && l.message_id === row.id), 5_000, 'the warning');
    expect(lines.find((l) => l.message_id === row.id && String(l.msg).includes('no longer held'))).toMatchObject({ level: 40, outcome: 'retry', held_by: 'other-worker' });
  });

  it('does not count an attempt for a claimed message whose send never started (lease ending)', async () => {
    // One lane: the first send takes most of the lease, so the second message is past the point
    // where a send may start. It is given back and sent on its next claim, as its first attempt.
    const config = testConfig(database.url, { DISPATCH_POLL_MS: '50', DISPATCH_LEASE_SECONDS: '4', DISPATCH_CONCURRENCY: '1' });
    const sent: string[] = [];
    transport = {
      name: 'test',
      async send(message) {
        if (!sent.length) await new Promise((r) => setTimeout(r, 3_200));
        sent.push(message.to);
        return { providerMessageId: message.messageId };
      },
      async close() {},
    };
    dispatcher = new Dispatcher(database.db, database.url, transport, config.dispatch, createLogger('silent'));
    const jobId = await submit(['first@example.com', 'second@example.com']);
    await dispatcher.start();
    await until(async () => (await messages(jobId)).every((r) => r.status === 'sent'), 20_000, 'both sent');
    const rows = await messages(jobId);
    expect(rows.map((r) => [r.recipient, r.attempts, r.events])).toEqual([
      ['first@example.com', 1, ['send']],
      ['second@example.com', 1, ['send']],
    ]);
    expect(sent).toHaveLength(2);
  }, 30_000);

  it('gives the attempt back for messages claimed but not started at shutdown', async () => {
    const config = testConfig(database.url, { DISPATCH_POLL_MS: '50', DISPATCH_CONCURRENCY: '1', DISPATCH_BATCH_SIZE: '10' });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = 0;
    transport = {
      name: 'test',
      async send(message) {
        started++;
        await gate;
        return { providerMessageId: message.messageId };
      },
      async close() {},
    };
    dispatcher = new Dispatcher(database.db, database.url, transport, config.dispatch, createLogger('silent'));
    const jobId = await submit(['a@example.com', 'b@example.com', 'c@example.com']);
    await dispatcher.start();
    await until(() => started === 1, 5_000, 'the first send to start');
    const stopped = dispatcher.stop();
    release();
    await stopped;
    dispatcher = undefined;
    const rows = await messages(jobId);
    expect(rows.map((r) => [r.status, r.attempts]).sort()).toEqual([
      ['queued', 0],
      ['queued', 0],
      ['sent', 1],
    ]);
  });
});
