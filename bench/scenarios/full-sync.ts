import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPool } from '../../src/db/pool.ts';
import { buildApp } from '../../src/http/app.ts';
import { signWebhook } from '../../src/index.ts';
import { createWebhookClient } from '../../src/lists/webhook-clients.ts';
import { createLogger } from '../../src/log.ts';
import { createTenant } from '../../src/tenants/tenants.ts';

/**
 * Full list sync of BENCH_SYNC_SUBSCRIBERS (default 1,000,000) subscribers in batches of
 * BENCH_SYNC_BATCH (1,000), signed, over HTTP on 127.0.0.1 to the engine's HTTP app running in a
 * child process (this file in server mode, what `send-engine serve` runs, so the RSS and CPU
 * printed are the API's alone) against a fresh database. Baseline in the same run: the same
 * batches inserted by plain set-based SQL (jsonb_to_recordset into a keyed table), no HTTP, no rules.
 * Env: BENCH_SYNC_SUBSCRIBERS, BENCH_SYNC_BATCH, BENCH_SYNC_CONCURRENCY (batches in flight, 4),
 * BENCH_PG_URL (a superuser URL; a database is created and dropped).
 */

const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TOTAL = Number(process.env.BENCH_SYNC_SUBSCRIBERS ?? 1_000_000);
const BATCH = Number(process.env.BENCH_SYNC_BATCH ?? 1_000);
const CONCURRENCY = Number(process.env.BENCH_SYNC_CONCURRENCY ?? 4);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// Server mode: the child process. The same app `send-engine serve` runs, without the worker role.
if (process.env.BENCH_FULL_SYNC_SERVER === '1') {
  const config = loadConfig();
  const db = createPool(config.databaseUrl!, 10);
  const app = await buildApp({ config, db, logger: createLogger(config.logLevel) });
  await app.listen({ port: config.port, host: config.host });
  process.once('SIGTERM', () => app.close().then(() => db.end()).then(() => process.exit(0)));
}

const uuidOf = (n: number, tag: string) => `${tag}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

/** One batch's subscribers as JSON text, built directly (the client side must not be the bottleneck). */
function subscribersJson(batchNo: number): string {
  const from = (batchNo - 1) * BATCH;
  const to = Math.min(from + BATCH, TOTAL);
  const parts: string[] = [];
  for (let i = from; i < to; i++) {
    parts.push(`{"id":"${uuidOf(i, '5b5c0000')}","email":"user${i}@bench.example.com","status":"${i % 50 === 0 ? 'unsubscribed' : 'active'}","preferences":{"weekly":${i % 2 === 0}}}`);
  }
  return `[${parts.join(',')}]`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function rssOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(status.match(new RegExp(`${name}:\\s+(\\d+)`))?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** User + system CPU seconds a process has used so far. */
async function cpuOf(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function waitHealthy(baseUrl: string, child: ChildProcess) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${baseUrl}/v1/_health`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('server did not become healthy in 60 s');
}

/** Runs `work(batchNo)` for batches 1..n, `concurrency` at a time, in a shuffled order. */
async function runBatches(n: number, concurrency: number, work: (batchNo: number) => Promise<void>) {
  const order = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < order.length) await work(order[next++]);
    }),
  );
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

export default async function fullSync() {
  const batches = Math.ceil(TOTAL / BATCH);
  const dbName = `se_bench_sync_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  const port = await freePort();
  const db = createPool(url.toString(), CONCURRENCY + 1);
  await migrate(db);
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    cwd: ROOT,
    env: { ...process.env, BENCH_FULL_SYNC_SERVER: '1', DATABASE_URL: url.toString(), JWT_SECRET: randomBytes(32).toString('hex'), PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(baseUrl, child);
    const tenant = await createTenant(db, 'bench');
    const client = await createWebhookClient(db, tenant.id);
    const listId = randomUUID();
    const syncId = randomUUID();
    const occurredAt = new Date().toISOString();
    console.log(`full sync: ${TOTAL.toLocaleString('en')} subscribers, ${batches} batches of ${BATCH}, ${CONCURRENCY} in flight, server pid ${child.pid}`);

    // Baseline: the same batches, straight into a keyed table by one set-based INSERT each.
    await db.query('CREATE TABLE bench_baseline (id uuid PRIMARY KEY, email text, status text, preferences jsonb)');
    const baseStart = performance.now();
    await runBatches(batches, CONCURRENCY, async (no) => {
      await db.query('INSERT INTO bench_baseline SELECT * FROM jsonb_to_recordset($1::jsonb) AS (id uuid, email text, status text, preferences jsonb)', [subscribersJson(no)]);
    });
    const baseSeconds = (performance.now() - baseStart) / 1000;
    await db.query('DROP TABLE bench_baseline');

    let slowest = 0;
    let completion = 0;
    let peakRss = 0;
    const sampler = setInterval(() => {
      rssOf(child.pid!).then((r) => (peakRss = Math.max(peakRss, r.rss)), () => {});
    }, 250);
    const cpuBefore = await cpuOf(child.pid!);
    const start = performance.now();
    await runBatches(batches, CONCURRENCY, async (no) => {
      const body = `{"sync_id":"${syncId}","batch_no":${no},"batch_total":${batches},"tenant_id":"${tenant.id}","list_id":"${listId}","occurred_at":"${occurredAt}","subscribers":${subscribersJson(no)}}`;
      const t0 = performance.now();
      const res = await fetch(`${baseUrl}/webhooks/lists/full-sync`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signWebhook({ clientId: client.clientId, secret: client.secret, body }) },
        body,
      });
      const json = (await res.json()) as { sync_state?: string; removed?: number };
      if (res.status !== 200) throw new Error(`batch ${no}: HTTP ${res.status} ${JSON.stringify(json)}`);
      const ms = performance.now() - t0;
      slowest = Math.max(slowest, ms);
      if (json.removed !== undefined) completion = ms;
    });
    const seconds = (performance.now() - start) / 1000;
    const serverCpu = (await cpuOf(child.pid!)) - cpuBefore;
    clearInterval(sampler);
    const rss = await rssOf(child.pid!);

    const { rows } = await db.query(
      `SELECT s.state, s.batches_received, s.subscribers_received, (SELECT count(*) FROM list_members m WHERE m.tenant_id = s.tenant_id AND m.list_id = s.list_id)::int AS members
         FROM list_syncs s WHERE s.id = $1`,
      [syncId],
    );
    const rate = TOTAL / seconds;
    const baseRate = TOTAL / baseSeconds;
    console.log(`sync state: ${rows[0].state}, batches ${rows[0].batches_received}/${batches}, members stored ${rows[0].members.toLocaleString('en')}`);
    console.log(`engine:   ${seconds.toFixed(1)} s, ${Math.round(rate).toLocaleString('en')} subscribers/s (slowest batch ${slowest.toFixed(0)} ms, last batch incl. completion ${completion.toFixed(0)} ms)`);
    console.log(`server process CPU: ${serverCpu.toFixed(1)} s (${((serverCpu / seconds) * 100).toFixed(0)}% of one core; the rest of the 2 cores is PostgreSQL and this client)`);
    console.log(`baseline: ${baseSeconds.toFixed(1)} s, ${Math.round(baseRate).toLocaleString('en')} rows/s (plain INSERT ... jsonb_to_recordset, same batches)`);
    console.log(`ratio engine/baseline: ${(rate / baseRate).toFixed(2)}`);
    console.log(`server peak RSS: ${mb(Math.max(rss.peak, peakRss))} (now ${mb(rss.rss)}); bench process peak RSS ${mb(process.resourceUsage().maxRSS * 1024)}`);
    console.log(`target >= 50,000 subscribers/s: ${rate >= 50_000 ? 'met' : 'NOT met'}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    await db.end();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}
