import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCOPES } from '../../src/auth/scopes.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { startEngine, type Engine } from '../../src/runtime.ts';
import type { SendOptions, Transport } from '../../src/transports/transport.ts';
import { tenantWithToken, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';

const METRICS_TOKEN = 'metrics-token-for-the-test-0123456789abcdef';
let database: TestDatabase;
let sink: SmtpSink;
let engine: Engine;
let api: string;
let metricsPort: number;

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** Every sample of a scrape as "name{labels}" -> value. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

async function scrape(base: string, token = METRICS_TOKEN) {
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await startSmtpSink();
  metricsPort = await freePort();
  // The real wiring (runtime.ts): the dispatcher's transport is the instrumented one.
  const config = testConfig(database.url, {
    PORT: '0', SEND_ENGINE_TRANSPORT: sink.url, REQUIRE_VERIFIED_DOMAIN: 'false', DISPATCH_POLL_MS: '100',
    METRICS_TOKEN, METRICS_PORT: String(metricsPort),
  });
  engine = await startEngine(config, { api: true, worker: true }, (await import('../../src/log.ts')).createLogger('silent'));
  const address = engine.app!.server.address() as { port: number };
  api = `http://127.0.0.1:${address.port}`;
}, 60_000);

afterAll(async () => {
  await engine?.stop();
  await sink?.close();
  await database?.drop();
});

describe('/metrics', () => {
  it('refuses a scrape without METRICS_TOKEN, with our error body', async () => {
    const res = await scrape(api, 'wrong-token');
    expect(res.status).toBe(401);
    expect(JSON.parse(res.text)).toMatchObject({ error: 'unauthorized', message: expect.stringContaining('METRICS_TOKEN') });
    expect((await scrape(`http://127.0.0.1:${metricsPort}`, 'wrong')).status).toBe(401);
  });

  it('moves the send, HTTP and queue series after a send', async () => {
    const before = parse((await scrape(api)).text);
    const { token } = await tenantWithToken(database.db, DEFAULT_SCOPES);
    const res = await fetch(`${api}/v1/send-jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        message_type: 'transactional', from: 'app@acme.test', to: ['reader@example.com'], subject: 'Hello', html: '<p>Hello</p>', text: 'Hello',
        tags: { campaign_id: 'c1', site_id: 's1', list_id: 'l1', segment: 'all' }, idempotency_key: 'metrics-1',
      }),
    });
    expect(res.status).toBeLessThan(300);
    await until(() => sink.messages.length === 1, 15_000, 'the message reaches the sink');
    const sent = 'send_engine_messages_total{status="sent",transport="smtp"}';
    const after = await until(async () => {
      const s = parse((await scrape(api)).text);
      return (s.get(sent) ?? 0) >= 1 ? s : undefined;
    }, 10_000, 'the sent counter moves');
    expect(after.get(sent)! - (before.get(sent) ?? 0)).toBe(1);
    expect(after.get('send_engine_send_duration_seconds_count{transport="smtp"}')).toBe(1);
    const accepted = [...after.keys()].find((k) => k.startsWith('send_engine_http_requests_total{method="POST",route="/v1/send-jobs"'));
    expect(accepted, 'the send request is counted by its route pattern').toBeTruthy();
    expect(after.get('send_engine_queue_depth')).toBe(0);
    expect(after.has('send_engine_queue_oldest_age_seconds')).toBe(true);
    expect(after.get('send_engine_db_pool_connections{state="total"}')).toBeGreaterThan(0);
    expect(after.has('send_engine_event_loop_lag_p99_seconds')).toBe(true);
    expect(after.has('send_engine_webhook_deliveries{status="failed"}')).toBe(true);
    expect(after.has('send_engine_feedback_events{type="delivered"}')).toBe(true);
  });

  it('counts queued messages and their age at scrape time', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    // Due in an hour: the dispatcher leaves them queued.
    await database.db.query(
      `INSERT INTO messages (id, tenant_id, recipient, status, created_at, next_attempt_at)
       SELECT uuid_v7(), $1, 'q' || i || '@example.com', 'queued', now() - interval '90 seconds', now() + interval '1 hour' FROM generate_series(1, 3) i`,
      [tenantId],
    );
    const s = await until(async () => {
      const m = parse((await scrape(`http://127.0.0.1:${metricsPort}`)).text);
      return m.get('send_engine_queue_depth') === 3 ? m : undefined;
    }, 10_000, 'the queue gauge reads the outbox');
    expect(s.get('send_engine_queue_oldest_age_seconds')).toBeGreaterThanOrEqual(90);
  });

  it('the instrumented transport still defers acceptance: acceptAfter reaches a transport that honours it', async () => {
    const seen: SendOptions[] = [];
    const inner = (defersAcceptance: boolean): Transport => ({
      name: 'stub',
      defersAcceptance,
      async send(_message, options = {}) {
        seen.push(options);
        return { providerMessageId: 'p' };
      },
      close: async () => {},
    });
    const metrics = new Metrics(database.db);
    const deferring = metrics.instrumentTransport(inner(true));
    expect(deferring.defersAcceptance).toBe(true);
    expect(metrics.instrumentTransport(inner(false)).defersAcceptance).toBe(false);
    const acceptAfter = Promise.resolve();
    await deferring.send({} as never, { acceptAfter });
    expect(seen[0].acceptAfter).toBe(acceptAfter);
  });
});
