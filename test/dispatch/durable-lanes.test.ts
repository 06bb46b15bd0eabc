import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/dispatch/dispatcher.ts';
import { createLogger } from '../../src/log.ts';
import { submitProxySend } from '../../src/sending/submit.ts';
import type { Transport } from '../../src/transports/transport.ts';
import { tenantWithToken, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { smtpTransport } from '../../src/transports/smtp.ts';
import { startSmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.drop());

const CONCURRENCY = 4;
const MESSAGES = 120;

describe('a lane starts no send while its previous confirmed send is unrecorded', () => {
  it('so sends confirmed by the transport but not yet recorded as sent never exceed DISPATCH_CONCURRENCY', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const to = Array.from({ length: MESSAGES }, (_, i) => `lane${i}@example.com`);
    await submitProxySend(database.db, tenantId, { message_type: 'transactional', from: 'a@lanes.test', to, subject: 's', html: '<p>x</p>', text: 'x', tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' }, idempotency_key: 'lanes' }, { idempotencyTtlHours: 1 });

    // A transport that answers at once and, as each send starts, counts how many of its confirmed
    // sends the database does not show as sent yet: what a SIGKILL at that instant would repeat.
    const confirmed: string[] = [];
    const unrecordedAtStart: number[] = [];
    const transport: Transport = {
      name: 'counting',
      async send(message) {
        const { rows } = await database.db.query(`SELECT count(*)::int AS n FROM messages WHERE id = ANY($1::uuid[]) AND status <> 'sent'`, [confirmed]);
        unrecordedAtStart.push(rows[0].n);
        confirmed.push(message.id);
        return { providerMessageId: `p-${message.id}` };
      },
      close: async () => {},
    };
    const config = testConfig(database.url, { DISPATCH_CONCURRENCY: String(CONCURRENCY), DISPATCH_BATCH_SIZE: '100', DISPATCH_POLL_MS: '50' });
    const dispatcher = new Dispatcher(database.db, database.url, transport, config.dispatch, createLogger('silent'));
    await dispatcher.start();
    try {
      await until(async () => (await database.db.query(`SELECT count(*)::int AS n FROM messages WHERE status = 'sent'`)).rows[0].n === MESSAGES, 30_000, 'every message to be sent');
    } finally {
      await dispatcher.stop();
    }
    expect(confirmed).toHaveLength(MESSAGES);
    // Each of the other lanes may hold one confirmed, unrecorded send; this lane holds none.
    expect(Math.max(...unrecordedAtStart)).toBeLessThanOrEqual(CONCURRENCY - 1);
  });
});

describe('over SMTP, a lane overlaps its next send with its outcome write but not the acceptance', () => {
  it('when the server takes a message, the sends it took before and the database does not show as sent never exceed the other lanes', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const to = Array.from({ length: MESSAGES }, (_, i) => `smtp-lane${i}@example.com`);
    await submitProxySend(database.db, tenantId, { message_type: 'transactional', from: 'a@lanes.test', to, subject: 's', html: '<p>x</p>', text: 'x', tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' }, idempotency_key: 'smtp-lanes' }, { idempotencyTtlHours: 1 });

    // At each end of DATA (before the 250), what a SIGKILL right after that 250 could repeat: the
    // messages the sink already took that are not recorded as sent.
    const taken: string[] = [];
    const unrecordedAtAccept: number[] = [];
    const sink = await startSmtpSink({
      async beforeAccept(messageId) {
        const { rows } = await database.db.query(`SELECT count(*)::int AS n FROM messages WHERE id = ANY($1::uuid[]) AND status <> 'sent'`, [taken]);
        unrecordedAtAccept.push(rows[0].n);
        taken.push(messageId);
      },
    });
    const transport = smtpTransport({ url: sink.url, maxConnections: CONCURRENCY });
    const config = testConfig(database.url, { DISPATCH_CONCURRENCY: String(CONCURRENCY), DISPATCH_BATCH_SIZE: '100', DISPATCH_POLL_MS: '50' });
    const dispatcher = new Dispatcher(database.db, database.url, transport, config.dispatch, createLogger('silent'));
    await dispatcher.start();
    try {
      await until(async () => (await database.db.query(`SELECT count(*)::int AS n FROM messages WHERE status = 'sent' AND recipient LIKE 'smtp-lane%'`)).rows[0].n === MESSAGES, 30_000, 'every message to be sent');
    } finally {
      await dispatcher.stop();
      await transport.close();
      await sink.close();
    }
    expect(new Set(taken).size).toBe(MESSAGES);
    expect(Math.max(...unrecordedAtAccept)).toBeLessThanOrEqual(CONCURRENCY - 1);
  });
});
