import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/dispatch/dispatcher.ts';
import { applyEvents } from '../../src/events/ingest.ts';
import { normalizeContractEvent } from '../../src/events/normalize.ts';
import { createLogger } from '../../src/log.ts';
import { submitProxySend, type ProxySendRequest } from '../../src/sending/submit.ts';
import { smtpTransport } from '../../src/transports/smtp.ts';
import type { Transport } from '../../src/transports/transport.ts';
import { tenantWithToken, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startSmtpSink, type SinkOptions, type SmtpSink } from '../helpers/smtp-sink.ts';

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
  // Pooled SMTP connections stay open until the transport closes; the sink waits for them.
  await transport?.close();
  await sink?.close();
  dispatcher = sink = transport = undefined;
});
afterAll(() => database.drop());

async function startPipeline(sinkOptions: SinkOptions = {}, dispatch: Record<string, string> = {}) {
  sink = await startSmtpSink(sinkOptions);
  const config = testConfig(database.url, { SEND_RETRY_BASE_MS: '20', SEND_RETRY_MAX_MS: '100', DISPATCH_POLL_MS: '50', ...dispatch });
  transport = smtpTransport({ url: sink.url, maxConnections: 4 });
  dispatcher = new Dispatcher(database.db, database.url, transport, config.dispatch, createLogger('silent'));
  await dispatcher.start();
  return sink;
}

let seq = 0;
function submit(overrides: Partial<ProxySendRequest> = {}) {
  const req: ProxySendRequest = {
    message_type: 'transactional',
    from: 'sender@acme.test',
    to: ['alice@example.com'],
    subject: 'Hello',
    html: '<p>Hello <b>there</b></p>',
    text: 'Hello there',
    tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' },
    idempotency_key: `delivery-${++seq}`,
    ...overrides,
  };
  return submitProxySend(database.db, tenantId, req, { idempotencyTtlHours: 24 });
}

async function waitForStatus(jobId: string, done: (statuses: string[]) => boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await database.db.query('SELECT status FROM messages WHERE proxy_job_id = $1', [jobId]);
    const statuses = rows.map((r) => r.status as string);
    if (done(statuses)) return statuses;
    if (Date.now() > deadline) throw new Error(`statuses stuck at ${statuses.join(',')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('dispatch over real SMTP', () => {
  it('delivers a newsletter with one-click unsubscribe headers and our message id, and records it', async () => {
    const s = await startPipeline();
    const { jobId } = await submit({
      message_type: 'newsletter',
      to: ['alice@example.com', 'bob@example.com'],
      list_unsubscribe: { url: 'https://acme.test/unsub?u=1', mailto: 'unsub@acme.test' },
      headers: { 'X-Campaign': 'spring' },
    });
    const received = await s.waitFor(2);
    const { rows } = await database.db.query('SELECT id, recipient, status, provider_message_id, sent_at FROM messages WHERE proxy_job_id = $1', [jobId]);
    await waitForStatus(jobId, (st) => st.every((x) => x === 'sent'));
    for (const row of rows) {
      const mail = received.find((m) => m.messageId === row.id)!;
      expect(mail, `message ${row.id} arrived`).toBeDefined();
      expect(mail.envelopeTo).toEqual([row.recipient]);
      const listUnsub = mail.raw.toString().match(/^List-Unsubscribe:.*$/gim);
      expect(listUnsub).toEqual(['List-Unsubscribe: <https://acme.test/unsub?u=1>, <mailto:unsub@acme.test>']);
      expect(mail.raw.toString()).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r?$/m);
      expect(mail.raw.toString()).toMatch(new RegExp(`^X-Send-Engine-Message-Id: ${row.id}\\r?$`, 'm'));
      expect(mail.parsed.headers.get('x-campaign')).toBe('spring');
      expect(mail.parsed.subject).toBe('Hello');
      expect(mail.parsed.text?.trim()).toBe('Hello there');
      expect(mail.parsed.html).toContain('<b>there</b>');
    }
    const recorded = await database.db.query(
      `SELECT m.status, m.provider_message_id, m.sent_at, e.type, e.data FROM messages m JOIN message_events e ON e.message_id = m.id WHERE m.proxy_job_id = $1`,
      [jobId],
    );
    expect(recorded.rows).toHaveLength(2);
    for (const r of recorded.rows) {
      expect(r.status).toBe('sent');
      // The Message-ID we sent (what DSNs and provider events quote), not the relay's queue id.
      expect(r.provider_message_id).toMatch(/^<[0-9a-f-]{36}@acme\.test>$/);
      expect(received.map((m) => m.parsed.messageId)).toContain(r.provider_message_id);
      expect(r.sent_at).toBeInstanceOf(Date);
      expect(r.type).toBe('send');
      expect(r.data.provider_message_id).toBe(r.provider_message_id);
    }
  });

  it('gives transactional mail no List-Unsubscribe unless asked, and never sends to suppressed recipients', async () => {
    await database.db.query(`INSERT INTO suppressions (tenant_id, email, reason, source) VALUES ($1, 'blocked@example.com', 'bounce', 'test')`, [tenantId]);
    const s = await startPipeline();
    const { jobId } = await submit({ to: ['carol@example.com', 'blocked@example.com'] });
    await waitForStatus(jobId, (st) => st.includes('sent'));
    await new Promise((r) => setTimeout(r, 300));
    expect(s.messages.map((m) => m.envelopeTo[0])).toEqual(['carol@example.com']);
    expect(s.messages[0].raw.toString()).not.toMatch(/^List-Unsubscribe/im);
    expect((await waitForStatus(jobId, () => true)).sort()).toEqual(['sent', 'suppressed']);
  });

  it('retries a transient SMTP failure with backoff, then delivers', async () => {
    let refusals = 0;
    const s = await startPipeline({ onRecipient: (a) => (a === 'flaky@example.com' && refusals++ < 2 ? 451 : undefined) });
    const { jobId } = await submit({ to: ['flaky@example.com'] });
    await waitForStatus(jobId, (st) => st[0] === 'sent');
    expect(s.messages).toHaveLength(1);
    const { rows } = await database.db.query(
      `SELECT m.attempts, array_agg(e.type ORDER BY e.recorded_at, e.type) AS events FROM messages m JOIN message_events e ON e.message_id = m.id WHERE m.proxy_job_id = $1 GROUP BY m.attempts`,
      [jobId],
    );
    expect(rows[0].attempts).toBe(3);
    expect(rows[0].events).toEqual(['deferral', 'deferral', 'send']);
  });

  it('fails a permanent SMTP rejection at once and stores the reason', async () => {
    const s = await startPipeline({ onRecipient: (a) => (a === 'gone@example.com' ? 550 : undefined) });
    const { jobId } = await submit({ to: ['gone@example.com', 'fine@example.com'] });
    await waitForStatus(jobId, (st) => st.length === 2 && !st.includes('queued') && !st.includes('sending'));
    const { rows } = await database.db.query('SELECT recipient, status, attempts, last_error FROM messages WHERE proxy_job_id = $1 ORDER BY recipient', [jobId]);
    expect(rows[0]).toMatchObject({ recipient: 'fine@example.com', status: 'sent' });
    expect(rows[1]).toMatchObject({ recipient: 'gone@example.com', status: 'failed', attempts: 1 });
    expect(rows[1].last_error).toContain('550');
    expect(s.messages.map((m) => m.envelopeTo[0])).toEqual(['fine@example.com']);
  });

  it('gives up on a transient failure after the attempt limit, with the reason', async () => {
    await startPipeline({ onRecipient: (a) => (a === 'busy@example.com' ? 421 : undefined) }, { SEND_MAX_ATTEMPTS: '3' });
    const { jobId } = await submit({ to: ['busy@example.com'] });
    await waitForStatus(jobId, (st) => st[0] === 'failed');
    const { rows } = await database.db.query('SELECT attempts, last_error FROM messages WHERE proxy_job_id = $1', [jobId]);
    expect(rows[0].attempts).toBe(3);
    expect(rows[0].last_error).toContain('421');
  });

  it('retries when the SMTP server is down, and delivers once it is up', async () => {
    const config = testConfig(database.url, { SEND_RETRY_BASE_MS: '50', SEND_RETRY_MAX_MS: '200', DISPATCH_POLL_MS: '50' });
    // Reserve a port, close it, point the transport at it; start the sink there later.
    const probe = await startSmtpSink();
    const port = probe.port;
    await probe.close();
    transport = smtpTransport({ url: `smtp://127.0.0.1:${port}`, maxConnections: 2 });
    dispatcher = new Dispatcher(database.db, database.url, transport, config.dispatch, createLogger('silent'));
    await dispatcher.start();
    const { jobId } = await submit({ to: ['patient@example.com'] });
    await waitForStatus(jobId, () => true);
    await new Promise((r) => setTimeout(r, 300));
    const before = await database.db.query('SELECT status, attempts FROM messages WHERE proxy_job_id = $1', [jobId]);
    expect(before.rows[0].attempts).toBeGreaterThanOrEqual(1);
    expect(before.rows[0].status).not.toBe('sent');
    const { SMTPServer } = await import('smtp-server');
    const got: string[] = [];
    const server = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false, onData(stream, session, cb) { stream.resume(); stream.on('end', () => { got.push(session.envelope.rcptTo[0].address); cb(); }); } });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      await waitForStatus(jobId, (st) => st[0] === 'sent');
      expect(got).toEqual(['patient@example.com']);
    } finally {
      await dispatcher.stop();
      await transport.close();
      dispatcher = transport = undefined;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('provider events find an SMTP-sent message by the Message-ID we sent', () => {
  it('matches an event quoting <message uuid@domain>', async () => {
    const s = await startPipeline();
    const { jobId } = await submit({ to: ['dsn@example.com'] });
    await waitForStatus(jobId, (st) => st[0] === 'sent');
    const [mail] = await s.waitFor(1);
    const { rows } = await database.db.query('SELECT id, provider_message_id FROM messages WHERE proxy_job_id = $1', [jobId]);
    expect(rows[0].provider_message_id).toBe(mail.parsed.messageId);
    // As a DSN or an SES/SNS event quotes it: the header value, not our bare uuid.
    const event = normalizeContractEvent({
      event_type: 'hard_bounced',
      message_id: mail.parsed.messageId!,
      tenant_id: tenantId,
      email: 'dsn@example.com',
      occurred_at: new Date().toISOString(),
    });
    expect(event.ourId).toBeNull();
    const applied = await applyEvents(database.db, [event], { softBounceLimit: 3, softBounceWindowDays: 7, guardrail: { complaintRatePercent: 100, bounceRatePercent: 100, minSent: 1_000_000, windowDays: 7 } });
    expect(applied.outcomes).toEqual(['applied']);
    const after = await database.db.query('SELECT status FROM messages WHERE id = $1', [rows[0].id]);
    expect(after.rows[0].status).toBe('bounced');
  });
});
