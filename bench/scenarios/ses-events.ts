import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPool } from '../../src/db/pool.ts';
import { buildApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/log.ts';
import { createTenant } from '../../src/tenants/tenants.ts';

/**
 * 200,000 HMAC-signed contract events over real HTTP against 200,000 messages, one event each
 * (70% delivery, 15% open, 5% click, 4% hard bounce, 4% soft bounce, 1% complaint, 1% provider
 * suppression; half by our id, half by the provider id). The engine runs in this thread, the
 * load generator in a worker thread (its own event loop) with bounded keep-alive concurrency.
 * Baseline in the same run: the same requests with a wrong signature (HTTP + HMAC, no database).
 */
const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const EVENTS = Number(process.env.BENCH_SES_EVENTS ?? 200_000);
// SNS delivers a busy topic with many parallel connections; group commit batches grow with them.
const CONCURRENCY = Number(process.env.BENCH_SES_CONCURRENCY ?? 200);
const SECRET = 'bench-webhook-secret-0123456789abcdef';

// Plain JS for the worker: builds and signs each body, then keeps CONCURRENCY requests in flight.
const CLIENT = `
const { workerData, parentPort } = require('node:worker_threads');
const http = require('node:http');
const { createHmac } = require('node:crypto');
const { url, secret, tenantId, ids, providerIds, emails, concurrency, forge } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const target = new URL(url);
const types = (i) => { const p = i % 100; return p < 70 ? 'delivery' : p < 85 ? 'open' : p < 90 ? 'click' : p < 94 ? 'hard_bounced' : p < 98 ? 'soft_bounced' : p < 99 ? 'complaint' : 'suppression'; };
const n = ids.length;
const bodies = new Array(n);
for (let i = 0; i < n; i++) {
  const body = JSON.stringify({ event_type: types(i), message_id: i % 2 ? ids[i] : providerIds[i], tenant_id: tenantId, email: emails[i], occurred_at: new Date(Date.UTC(2025, 2, 1) + i).toISOString() });
  bodies[i] = [body, forge ? 'f'.repeat(64) : createHmac('sha256', secret).update(body).digest('hex')];
}
const latencies = new Float64Array(n);
const statuses = {};
let next = 0;
function one(i) {
  return new Promise((resolve) => {
    const [body, sig] = bodies[i];
    const t0 = performance.now();
    const req = http.request({ host: target.hostname, port: target.port, path: '/webhooks/ses', method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-amz-sns-signature': sig } }, (res) => {
      res.resume();
      res.on('end', () => { latencies[i] = performance.now() - t0; statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1; resolve(); });
    });
    req.on('error', () => { latencies[i] = performance.now() - t0; statuses.error = (statuses.error || 0) + 1; resolve(); });
    req.end(body);
  });
}
async function lane() { while (next < n) await one(next++); }
const start = performance.now();
Promise.all(Array.from({ length: concurrency }, lane)).then(() => {
  const seconds = (performance.now() - start) / 1000;
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(n - 1, Math.floor(p * n))];
  agent.destroy();
  parentPort.postMessage({ seconds, rate: n / seconds, p50: q(0.5), p99: q(0.99), max: sorted[n - 1], statuses });
});
`;

interface RunResult {
  seconds: number;
  rate: number;
  p50: number;
  p99: number;
  max: number;
  statuses: Record<string, number>;
}

function load(data: Record<string, unknown>): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(CLIENT, { eval: true, workerData: data });
    worker.once('message', (m) => {
      resolve(m as RunResult);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

export default async function sesEvents() {
  const name = `se_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const db = createPool(url.toString(), 10);
  let app: Awaited<ReturnType<typeof buildApp>> | undefined;
  try {
    await migrate(db);
    const tenant = await createTenant(db, 'bench');
    const jobId = crypto.randomUUID();
    await db.query(
      `INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, idempotency_key)
       VALUES ($1, $2, 'newsletter', 'news@example.com', 's', 'h', 't', 'bench')`,
      [jobId, tenant.id],
    );
    let t0 = performance.now();
    await db.query(
      `INSERT INTO messages (id, tenant_id, proxy_job_id, recipient, status, provider_message_id, sent_at)
       SELECT gen_random_uuid(), $1, $2, 'user' || n || '@example.org', 'sent', 'ses-' || n, now()
         FROM generate_series(1, $3::int) AS n`,
      [tenant.id, jobId, EVENTS],
    );
    await db.query('ANALYZE messages');
    const seedSeconds = (performance.now() - t0) / 1000;
    const { rows } = await db.query<{ id: string; provider_message_id: string; recipient: string }>(
      'SELECT id, provider_message_id, recipient FROM messages ORDER BY provider_message_id',
    );

    const config = loadConfig({ DATABASE_URL: url.toString(), JWT_SECRET: 'bench-jwt-secret-0123456789abcdef0123456789', LOG_LEVEL: 'silent', SES_WEBHOOK_SECRET: SECRET });
    app = await buildApp({ config, db, logger: createLogger('silent') });
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const data = {
      url: address, secret: SECRET, tenantId: tenant.id, concurrency: CONCURRENCY,
      ids: rows.map((r) => r.id), providerIds: rows.map((r) => r.provider_message_id), emails: rows.map((r) => r.recipient),
    };

    const baselineCount = Math.min(EVENTS, 20_000);
    const baseline = await load({ ...data, forge: true, ids: data.ids.slice(0, baselineCount) });
    t0 = performance.now();
    const run = await load({ ...data, forge: false });
    const { rows: [after] } = await db.query(
      `SELECT (SELECT count(*) FROM message_events) AS events, (SELECT count(*) FROM suppressions) AS suppressions,
              (SELECT count(*) FROM messages WHERE status <> 'sent') AS moved`,
    );
    const fmt = (n: number) => n.toFixed(1);
    console.log(`messages seeded: ${EVENTS} in ${seedSeconds.toFixed(2)} s (one INSERT..SELECT)`);
    console.log(`events: ${EVENTS}, concurrency ${CONCURRENCY}, statuses ${JSON.stringify(run.statuses)}`);
    console.log(`events/s: ${Math.round(run.rate)}  (target >= 5000)  wall ${run.seconds.toFixed(2)} s`);
    console.log(`latency ms: p50 ${fmt(run.p50)}  p99 ${fmt(run.p99)}  max ${fmt(run.max)}`);
    console.log(`baseline (wrong signature: HTTP + HMAC, no database): ${Math.round(baseline.rate)} req/s, p99 ${fmt(baseline.p99)} ms, ${JSON.stringify(baseline.statuses)}`);
    console.log(`ratio events/s to baseline: ${(run.rate / baseline.rate).toFixed(2)}`);
    console.log(`written: ${after.events} timeline rows, ${after.moved} status changes, ${after.suppressions} suppressions`);
  } finally {
    await app?.close();
    await db.end();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}
