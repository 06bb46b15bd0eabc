import autocannon from 'autocannon';
import nodemailer from 'nodemailer';
import { issueToken } from '../../src/auth/jwt.ts';
import { composeMessage } from '../../src/sending/compose.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { noDelaySocket } from '../../src/transports/smtp.ts';
import os from 'node:os';
import { BENCH_JWT_SECRET, benchDatabase, cpuMeter, fmt, freePort, peakRssMb, sleep, startEngineProcess, startSink, stopProcess } from '../lib.ts';

const REQUESTS = Number(process.env.BENCH_TX_REQUESTS ?? 10_000);
const CONNECTIONS = Number(process.env.BENCH_TX_CONNECTIONS ?? 20);
const SMTP_CONCURRENCY = 10;

function body(i: number) {
  return JSON.stringify({
    message_type: 'transactional',
    from: 'receipts@acme.test',
    to: [`user${i}@example.com`],
    subject: `Your receipt #${i}`,
    html: `<p>Thanks for order <b>${i}</b>.</p>`,
    text: `Thanks for order ${i}.`,
    tags: { campaign_id: 'receipts', site_id: 'shop', list_id: 'none', segment: 'all' },
    idempotency_key: `bench-${i}`,
  });
}

/**
 * Bare nodemailer, same messages, same sink, same concurrency: the baseline the engine is compared
 * with. `noDelay` gives it the engine's TCP_NODELAY sockets, so the ratio shows the engine's overhead.
 */
async function bareNodemailer(port: number, n: number, noDelay: boolean): Promise<number> {
  const transporter = nodemailer.createTransport({ host: '127.0.0.1', port, pool: true, maxConnections: SMTP_CONCURRENCY, maxMessages: Infinity, ...(noDelay ? { getSocket: noDelaySocket } : {}) } as nodemailer.TransportOptions);
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: SMTP_CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        const m = await composeMessage({ id: `00000000-0000-7000-8000-${String(i).padStart(12, '0')}`, recipient: `user${i}@example.com`, from: 'receipts@acme.test', subject: `Your receipt #${i}`, html: `<p>Thanks for order <b>${i}</b>.</p>`, text: `Thanks for order ${i}.`, headers: {}, listUnsubscribe: null });
        await transporter.sendMail({ envelope: { from: m.from, to: [m.to] }, raw: m.raw });
      }
    }),
  );
  const rate = n / ((performance.now() - started) / 1000);
  transporter.close();
  return rate;
}

export default async function transactional() {
  const database = await benchDatabase();
  const sink = await startSink();
  const port = await freePort();
  const tenant = await createTenant(database.db, 'bench');
  const token = await issueToken(BENCH_JWT_SECRET, { tenantId: tenant.id, scopes: ['send'], ttl: '1h' });
  console.log(`sink: ${sink.kind}; ${fmt(REQUESTS)} submissions, ${CONNECTIONS} HTTP connections, SMTP concurrency ${SMTP_CONCURRENCY}`);

  // The API alone (`serve`, no dispatcher in the process: how API processes are scaled out), on a
  // database of its own so its messages do not count below.
  await apiOnly();

  const bareDefault = await bareNodemailer(sink.port, Math.min(REQUESTS, 2000), false);
  const baseline = await bareNodemailer(sink.port, Math.min(REQUESTS, 5000), true);

  const engine = await startEngineProcess('start', {
    DATABASE_URL: database.url,
    PORT: String(port),
    SEND_ENGINE_TRANSPORT: `smtp://127.0.0.1:${sink.port}`,
    // Not about sending domains: the bench sends from a domain it never verifies.
    REQUIRE_VERIFIED_DOMAIN: 'false',
    DISPATCH_CONCURRENCY: String(SMTP_CONCURRENCY),
  });
  try {
    const url = `http://127.0.0.1:${port}/v1/send-jobs`;
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

    // Latency of a lone request on an idle engine.
    const lone: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      const res = await fetch(url, { method: 'POST', headers, body: body(REQUESTS + i) });
      const text = await res.text();
      if (!res.ok) throw new Error(`POST /v1/send-jobs answered ${res.status}: ${text}`);
      lone.push(performance.now() - t);
    }
    lone.sort((a, b) => a - b);
    await waitForSent(database, 200, 60_000);

    // Same run, same concurrency: durable one-row commits per second on this database (what one
    // commit per request would allow; the shared server's WAL flush sets it).
    const commitRate = await commitBaseline(database.db, CONNECTIONS, 2000);
    // Same run, same connections: what the HTTP stack alone answers (no database write).
    const health = await load({ url: `http://127.0.0.1:${port}/v1/_health`, connections: CONNECTIONS, amount: REQUESTS, requests: [{ method: 'GET' }] }, 'GET /v1/_health');

    let i = 0;
    const started = performance.now();
    const result = await load({
      url,
      connections: CONNECTIONS,
      amount: REQUESTS,
      requests: [{ method: 'POST', headers, setupRequest: (req) => ({ ...req, body: body(i++) }) }],
    }, 'POST /v1/send-jobs');
    const accepted = started + result.seconds * 1000;
    const sentAt = await waitForSent(database, REQUESTS + 200, 300_000);
    const deliverySeconds = (sentAt - started) / 1000;
    const engineRate = REQUESTS / deliverySeconds;

    console.log(`idle single request:   p50 ${fmt(lone[100], 1)} ms, p99 ${fmt(lone[197], 1)} ms`);
    const acceptRate = REQUESTS / ((accepted - started) / 1000);
    console.log(`baseline commits:      ${fmt(commitRate)} one-row INSERT+COMMIT/s at ${CONNECTIONS} concurrent (same database, same run)`);
    console.log(`baseline /v1/_health:  ${fmt(rps(health))} req/s, p50 ${fmt(health.latency.p50, 1)} ms, p99 ${fmt(health.latency.p99, 1)} ms (same run, same connections)`);
    console.log(`HTTP under load:       ${fmt(rps(result))} req/s, p50 ${fmt(result.latency.p50, 1)} ms, p99 ${fmt(result.latency.p99, 1)} ms, non-2xx ${result.non2xx}, errors ${result.errors}`);
    console.log(`accept phase:          ${fmt((accepted - started) / 1000, 2)} s for ${fmt(REQUESTS)} submissions: ${fmt(acceptRate)} accepted sends/s (${fmt(acceptRate / rps(health), 2)} of /v1/_health's rate, ${fmt(acceptRate / commitRate, 2)} of the commit rate)`);
    console.log(`goal (start):          >= 3,000 accepted sends/s with p99 < 25 ms: ${acceptRate >= 3000 && result.latency.p99 < 25 ? 'reached' : 'NOT reached'}`);
    console.log(`delivered end to end:  ${fmt(engineRate)} msgs/s (${fmt(REQUESTS)} messages in ${fmt(deliverySeconds, 2)} s, submit to last 'sent')`);
    console.log(`bare nodemailer:       ${fmt(baseline)} msgs/s into the same sink with TCP_NODELAY (engine/bare ratio ${fmt(engineRate / baseline, 2)}); ${fmt(bareDefault)} msgs/s with nodemailer's default sockets`);
    console.log(`engine peak RSS:       ${peakRssMb(engine.pid!)} MB`);
  } finally {
    await stopProcess(engine);
    await sink.stop();
    await database.drop();
  }
}

async function apiOnly() {
  const database = await benchDatabase();
  const port = await freePort();
  const tenant = await createTenant(database.db, 'bench-api');
  const token = await issueToken(BENCH_JWT_SECRET, { tenantId: tenant.id, scopes: ['send'], ttl: '1h' });
  const engine = await startEngineProcess('serve', { DATABASE_URL: database.url, PORT: String(port), REQUIRE_VERIFIED_DOMAIN: 'false' });
  try {
    const url = `http://127.0.0.1:${port}/v1/send-jobs`;
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    let i = 0;
    // Warm-up (connections, prepared statements), then the measured run; the baselines in between.
    await load({ url, connections: CONNECTIONS, amount: 500, requests: [{ method: 'POST', headers, setupRequest: (req) => ({ ...req, body: body(i++) }) }] }, 'POST /v1/send-jobs (serve, warm-up)');
    const commits = await commitBaseline(database.db, CONNECTIONS, 2000);
    let meter = await cpuMeter(database.db, engine.pid!);
    const health = await load({ url: `http://127.0.0.1:${port}/v1/_health`, connections: CONNECTIONS, amount: REQUESTS, requests: [{ method: 'GET' }] }, 'GET /v1/_health');
    const healthCpu = await meter.stop();
    meter = await cpuMeter(database.db, engine.pid!);
    const result = await load({ url, connections: CONNECTIONS, amount: REQUESTS, requests: [{ method: 'POST', headers, setupRequest: (req) => ({ ...req, body: body(i++) }) }] }, 'POST /v1/send-jobs (serve)');
    const sendCpu = await meter.stop();
    const rate = rps(result);
    console.log(`API only (serve):      ${fmt(rate)} accepted sends/s, p50 ${fmt(result.latency.p50, 1)} ms, p99 ${fmt(result.latency.p99, 1)} ms; same run: /v1/_health ${fmt(rps(health))} req/s (ratio ${fmt(rate / rps(health), 2)}), ${fmt(commits)} one-row commits/s (ratio ${fmt(rate / commits, 2)})`);
    // CPU per request does not depend on what else the machine runs: where the time goes, and what
    // two otherwise idle cores would allow when engine, PostgreSQL and load generator share them.
    const per = (ms: number) => fmt(ms / REQUESTS, 3);
    const total = (c: typeof sendCpu) => (c.engineMs + c.postgresMs + c.loadGeneratorMs) / REQUESTS;
    console.log(`CPU per request (serve): POST /v1/send-jobs engine ${per(sendCpu.engineMs)} ms + PostgreSQL ${per(sendCpu.postgresMs)} ms + load generator ${per(sendCpu.loadGeneratorMs)} ms; GET /v1/_health engine ${per(healthCpu.engineMs)} ms + load generator ${per(healthCpu.loadGeneratorMs)} ms`);
    console.log(`CPU bound (serve):     ${os.availableParallelism()} cores at 100% would allow ${fmt((os.availableParallelism() * 1000) / total(sendCpu))} sends/s and ${fmt((os.availableParallelism() * 1000) / total(healthCpu))} /v1/_health req/s; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    // Group commit at work: rows one statement wrote share its transaction id (xmin).
    const { rows: written } = await database.db.query<{ messages: number; transactions: number }>(`SELECT count(*)::int AS messages, count(DISTINCT xmin::text)::int AS transactions FROM messages`);
    console.log(`group commit (serve):  ${fmt(written[0].messages)} messages written by ${fmt(written[0].transactions)} transactions (${fmt(written[0].messages / written[0].transactions, 1)} sends per commit, warm-up included)`);
    console.log(`goal (serve):          >= 3,000 accepted sends/s with p99 < 25 ms: ${rate >= 3000 && result.latency.p99 < 25 ? 'reached' : 'NOT reached'}`);
  } finally {
    await stopProcess(engine);
    await database.drop();
  }
}

/**
 * Requests per second from the start to the last response. autocannon itself only stops at its
 * next one-second sample, so its duration (and `requests.average`) rounds a 1.6 s run up to 2 s.
 */
const rps = (r: LoadResult) => r.requests.total / r.seconds;

async function commitBaseline(db: import('../../src/db/pool.ts').Db, concurrency: number, n: number): Promise<number> {
  await db.query('CREATE TABLE IF NOT EXISTS bench_commits (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())');
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < n) await db.query('INSERT INTO bench_commits DEFAULT VALUES');
  }));
  return n / ((performance.now() - started) / 1000);
}

type LoadResult = autocannon.Result & { seconds: number };

/**
 * autocannon, failing loudly: the first non-2xx answer (a 429, a 422...) or connection error stops
 * the run and throws with the status and body, instead of a bench waiting for messages never queued.
 * `seconds`: from the start to the last response (see rps).
 */
async function load(options: autocannon.Options, what: string): Promise<LoadResult> {
  let failure: string | undefined;
  let last = 0;
  const requests = options.requests?.map((r) => ({
    ...r,
    onResponse: (status: number, body: string) => {
      last = performance.now();
      if ((status < 200 || status > 299) && !failure) {
        failure = `${what} answered ${status}: ${body.slice(0, 500)}`;
        instance.stop();
      }
    },
  }));
  let instance!: autocannon.Instance;
  const started = performance.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon({ ...options, requests }, (err, r) => (err ? reject(err) : resolve(r)));
    instance.on('reqError', (err: Error) => {
      failure ??= `${what}: ${err.message}`;
      instance.stop();
    });
  });
  if (failure) throw new Error(`bench stopped: ${failure}`);
  if (result.non2xx || result.errors) throw new Error(`bench stopped: ${what} had ${result.non2xx} non-2xx answers and ${result.errors} errors`);
  return Object.assign(result, { seconds: (last - started) / 1000 });
}

async function waitForSent(database: { db: import('../../src/db/pool.ts').Db }, n: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await database.db.query(`SELECT count(*) FILTER (WHERE status = 'sent')::int AS sent, count(*) FILTER (WHERE status = 'failed')::int AS failed FROM messages`);
    if (rows[0].sent + rows[0].failed >= n) {
      if (rows[0].failed) console.log(`warning: ${rows[0].failed} messages failed`);
      return performance.now();
    }
    if (Date.now() > deadline) {
      const { rows: by } = await database.db.query(`SELECT status, count(*)::int AS n FROM messages GROUP BY status`);
      throw new Error(`only ${rows[0].sent} of ${n} sent after ${timeoutMs / 1000} s; messages by status: ${JSON.stringify(Object.fromEntries(by.map((r) => [r.status, r.n])))}`);
    }
    await sleep(50);
  }
}
