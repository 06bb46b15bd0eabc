import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/pool.ts';
import { Dispatcher } from '../../src/dispatch/dispatcher.ts';
import { JobRenderer } from '../../src/jobs/render.ts';
import { createLogger } from '../../src/log.ts';
import { submitProxySend } from '../../src/sending/submit.ts';
import { smtpTransport } from '../../src/transports/smtp.ts';
import { call, tenantWithToken, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';
import { seedList } from '../jobs/helpers.ts';

let database: TestDatabase;
let sink: SmtpSink;

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await startSmtpSink();
});
afterAll(async () => {
  await sink.close();
  await database.drop();
});

const inSink = (domain: string) => sink.messages.filter((m) => m.envelopeTo[0].endsWith(`@${domain}`));

const messagesOf = (jobId: string) =>
  database.db
    .query(
      `SELECT m.recipient, m.status, m.last_error, e.type AS event, e.data->>'error' AS event_error
         FROM messages m LEFT JOIN message_events e ON e.message_id = m.id
        WHERE m.send_job_id = $1 ORDER BY m.recipient`,
      [jobId],
    )
    .then((r) => r.rows);

describe('one tenant’s job cannot stop the engine or other tenants’ mail', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine(database.db, database.url, { smtpUrl: sink.url });
  });
  afterAll(() => engine.close());

  it('fails the messages of a time-bomb template and of a template that no longer parses; the healthy job completes', async () => {
    const hostile = await tenantWithToken(database.db, undefined, 'hostile');
    const healthy = await tenantWithToken(database.db, undefined, 'healthy');
    const create = (token: string, body: Record<string, unknown>) => call(engine.baseUrl, 'POST', '/api/send-jobs', { token, body });

    // Renders fine at creation (the sample recipient has no preferences), exceeds the render limit
    // at send time for members whose preference asks for a 4000×4000 loop.
    const bombList = await seedList(database.db, hostile.tenantId, { count: 2, domain: 'bomb.test' });
    await database.db.query(`UPDATE list_members SET preferences = '{"n": 4000}' WHERE list_id = $1`, [bombList.listId]);
    const bomb = await create(hostile.token, {
      list_id: bombList.listId,
      subject: 'Bomb',
      template: { html: '<p>{% for i in (1..preferences.n) %}{% for j in (1..preferences.n) %}x{% endfor %}{% endfor %}</p>' },
    });
    expect(bomb.status).toBe(200);

    // Valid when created; by send time the stored template no longer parses (as after an upgrade
    // of the template engine): on main, loading it threw inside the dispatch loop and killed the process.
    const brokenList = await seedList(database.db, hostile.tenantId, { count: 2, domain: 'broken.test' });
    const broken = await create(hostile.token, {
      list_id: brokenList.listId,
      subject: 'Broken',
      template: { html: '<p>{{ email }}</p>' },
      scheduled_at: new Date(Date.now() + 1_500).toISOString(),
    });
    expect(broken.status).toBe(200);
    await database.db.query(`UPDATE send_jobs SET template = '{"subject": "Broken", "html": "<p>{% if %}</p>"}' WHERE id = $1`, [broken.json.send_job_id]);

    const okList = await seedList(database.db, healthy.tenantId, { count: 3, domain: 'healthy.test' });
    const ok = await create(healthy.token, { list_id: okList.listId, subject: 'Fine', template: { html: '<p>Hi {{ email }}</p>' } });
    expect(ok.status).toBe(200);

    const finished = (id: string, token: string) =>
      until(async () => {
        const res = await call(engine.baseUrl, 'GET', `/api/send-jobs/${id}`, { token });
        return ['completed', 'failed', 'cancelled'].includes(res.json.status) ? res.json : undefined;
      }, 30_000, `job ${id} to finish`);
    const okJob = await finished(ok.json.send_job_id, healthy.token);
    expect(okJob).toMatchObject({ status: 'completed', counts: expect.objectContaining({ sent: 3, failed: 0 }) });
    expect(inSink('healthy.test')).toHaveLength(3);

    await finished(bomb.json.send_job_id, hostile.token);
    await finished(broken.json.send_job_id, hostile.token);
    const bombRows = await messagesOf(bomb.json.send_job_id);
    expect(bombRows).toHaveLength(2);
    for (const r of bombRows) {
      expect(r).toMatchObject({ status: 'failed', event: 'failure' });
      expect(r.last_error).toMatch(/^render_failed: (template html: .*(limit|exceed)|render exceeded)/i);
      expect(r.event_error).toBe(r.last_error);
    }
    const brokenRows = await messagesOf(broken.json.send_job_id);
    expect(brokenRows).toHaveLength(2);
    for (const r of brokenRows) {
      expect(r).toMatchObject({ status: 'failed', event: 'failure' });
      expect(r.last_error).toMatch(/^render_failed: template html: /);
    }
    expect(inSink('bomb.test')).toHaveLength(0);
    expect(inSink('broken.test')).toHaveLength(0);

    // Still dispatching afterwards.
    const again = await create(healthy.token, { list_id: okList.listId, subject: 'Again', body_text: 'again' });
    expect((await finished(again.json.send_job_id, healthy.token)).counts.sent).toBe(3);
  }, 60_000);
});

describe('errors of a whole batch', () => {
  let tenantId: string;
  beforeAll(async () => {
    ({ tenantId } = await tenantWithToken(database.db, undefined, 'batch errors'));
  });

  let seq = 0;
  const submit = (to: string) =>
    submitProxySend(
      database.db,
      tenantId,
      { message_type: 'transactional', from: 'a@acme.test', to: [to], subject: 's', html: '<p>x</p>', text: 'x', tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' }, idempotency_key: `sup-${++seq}` },
      { idempotencyTtlHours: 24 },
    );
  const row = (to: string) =>
    database.db
      .query(
        `SELECT m.status, array_agg(e.type ORDER BY e.recorded_at) AS events, array_agg(e.data->>'error' ORDER BY e.recorded_at) AS errors
           FROM messages m JOIN message_events e ON e.message_id = m.id WHERE m.recipient = $1 GROUP BY m.status`,
        [to],
      )
      .then((r) => r.rows[0]);

  it('a failed loop iteration retries its messages with the reason, and the loop goes on', async () => {
    const config = testConfig(database.url, { DISPATCH_POLL_MS: '50', SEND_RETRY_BASE_MS: '20', SEND_RETRY_MAX_MS: '50' });
    const transport = smtpTransport({ url: sink.url, maxConnections: 2 });
    const dispatcher = new Dispatcher(database.db, database.url, transport, config.dispatch, createLogger('silent'));
    // A bug in the batch path, once.
    const target = dispatcher as unknown as { sendAll: (...a: unknown[]) => Promise<void> };
    const sendAll = target.sendAll.bind(dispatcher);
    target.sendAll = async () => {
      target.sendAll = sendAll;
      throw new Error('boom in the batch path');
    };
    try {
      await submit('iteration@example.com');
      await dispatcher.start();
      await until(async () => (await row('iteration@example.com'))?.status === 'sent', 15_000, 'the message to be sent after the failed iteration');
      expect(await row('iteration@example.com')).toMatchObject({ events: ['deferral', 'send'], errors: ['dispatch_error: boom in the batch path', null] });
    } finally {
      await dispatcher.stop();
      await transport.close();
    }
  });

  it('a database error while loading a job retries its messages, which go out once the database answers', async () => {
    const config = testConfig(database.url, { DISPATCH_POLL_MS: '50', SEND_RETRY_BASE_MS: '20', SEND_RETRY_MAX_MS: '50' });
    let failures = 3;
    // The renderer's view of the database fails its first queries (as a restarting server would).
    const flaky = {
      query: (...args: Parameters<Db['query']>) => (failures-- > 0 ? Promise.reject(new Error('connection terminated unexpectedly')) : database.db.query(...args)),
    } as unknown as Db;
    const transport = smtpTransport({ url: sink.url, maxConnections: 2 });
    const dispatcher = new Dispatcher(database.db, database.url, transport, config.dispatch, createLogger('silent'), new JobRenderer(flaky, config.tracking, { threads: 1 }));
    try {
      const hostile = await tenantWithToken(database.db, undefined, 'flaky db');
      const { listId } = await seedList(database.db, hostile.tenantId, { count: 1, domain: 'flaky.test' });
      const jobId = '01900000-0000-7000-8000-00000000f1a0';
      const campaignId = '01900000-0000-7000-8000-00000000ca00';
      await database.db.query(`INSERT INTO campaigns (id, tenant_id) VALUES ($1, $2)`, [campaignId, hostile.tenantId]);
      await database.db.query(
        `INSERT INTO send_jobs (id, tenant_id, list_id, campaign_id, name, from_address, template, scheduled_at, status)
         VALUES ($1, $2, $3, $4, 'flaky', 'news@acme.test', '{"subject": "Hi", "html": "<p>{{ email }}</p>"}', now(), 'running')`,
        [jobId, hostile.tenantId, listId, campaignId],
      );
      await database.db.query(
        `INSERT INTO messages (id, tenant_id, send_job_id, subscriber_id, recipient, status)
         SELECT gen_random_uuid(), $1, $2, subscriber_id, 'user0@flaky.test', 'queued' FROM list_members WHERE list_id = $3`,
        [hostile.tenantId, jobId, listId],
      );
      await dispatcher.start();
      await until(async () => (await row('user0@flaky.test'))?.status === 'sent', 15_000, 'the message to be sent');
      const r = await row('user0@flaky.test');
      expect(r.events.at(-1)).toBe('send');
      expect(r.events.slice(0, -1).every((e: string) => e === 'deferral')).toBe(true);
      expect(r.errors[0]).toBe('internal: connection terminated unexpectedly');
      expect(inSink('flaky.test')).toHaveLength(1);
    } finally {
      await dispatcher.stop();
      await transport.close();
    }
  });
});
