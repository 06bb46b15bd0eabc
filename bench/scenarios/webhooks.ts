import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { createEndpoint } from '../../src/webhooks/endpoints.ts';
import { secretBoxFor } from '../../src/webhooks/secret-box.ts';
import { benchDatabase, BENCH_JWT_SECRET, fmt, sleep, startEngineProcess, stopProcess, type BenchDatabase } from '../lib.ts';

const EVENTS = Number(process.env.BENCH_WEBHOOK_EVENTS ?? 100_000);
/** Events per producing transaction (each a change that queues its events, as the triggers do). */
const CHUNK = 1000;

interface Receiver {
  url: string;
  count: () => number;
  close(): Promise<void>;
}

/** A local receiver answering every request with `status` (keep-alive, body discarded). */
async function receiver(status: number): Promise<Receiver> {
  let count = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      count++;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'failing on purpose');
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`,
    count: () => count,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

interface Run {
  /** Deliveries per second to the healthy endpoint(s), first event created to last delivered. */
  healthyRate: number;
  totalRate: number;
  p50: number;
  p99: number;
  seconds: number;
}

/**
 * 100,000 events (BENCH_WEBHOOK_EVENTS) fanned out to two endpoints on 127.0.0.1, delivered by a real `send-engine worker`
 * process while a producer inserts the events in transactions of 1,000. Latency is per delivery,
 * from the event's created_at (the change) to the delivery's recorded success: with a backlog it is
 * mostly time in the queue, so a third, paced run (BENCH_WEBHOOK_PACED_RATE events/s for 15 s, below
 * capacity) shows the latency of an engine keeping up.
 */
async function run(database: BenchDatabase, label: string, secondStatus: number, pace?: { events: number; perSecond: number }): Promise<Run> {
  const config = loadConfig({ DATABASE_URL: database.url, JWT_SECRET: BENCH_JWT_SECRET, WEBHOOK_ALLOW_PRIVATE: 'true' });
  const tenant = await createTenant(database.db, label);
  const healthy = await receiver(200);
  const second = await receiver(secondStatus);
  const box = secretBoxFor(config);
  const a = await createEndpoint(database.db, box, tenant.id, { url: healthy.url, description: 'healthy' }, true);
  const b = await createEndpoint(database.db, box, tenant.id, { url: second.url, description: secondStatus === 200 ? 'healthy' : 'failing' }, true);
  const healthyIds = secondStatus === 200 ? [a.id, b.id] : [a.id];

  const total = pace?.events ?? EVENTS;
  const chunk = pace ? Math.max(1, Math.round(pace.perSecond / 20)) : CHUNK;
  const started = performance.now();
  for (let done = 0; done < total; done += chunk) {
    // Paced: one small transaction every 50 ms, below capacity, so latency is not queueing.
    if (pace) await sleep(Math.max(0, started + (done / pace.perSecond) * 1000 - performance.now()));
    await database.db.query(
      `INSERT INTO outbound_events (id, tenant_id, type, payload)
       SELECT uuid_v7(), $1, 'message.delivered',
              jsonb_build_object('message_id', gen_random_uuid(), 'recipient', 'user' || i || '@example.com',
                                 'tags', jsonb_build_object('campaign_id', 'c1', 'list_id', 'l1'), 'occurred_at', now())
         FROM generate_series(1, $2) i`,
      [tenant.id, Math.min(chunk, total - done)],
    );
  }
  const produced = (performance.now() - started) / 1000;
  const target = total * healthyIds.length;
  for (;;) {
    const { rows } = await database.db.query(
      `SELECT count(*)::int AS n FROM webhook_deliveries WHERE endpoint_id = ANY ($1::uuid[]) AND status = 'succeeded'`,
      [healthyIds],
    );
    if (rows[0].n >= target) break;
    await sleep(100);
  }
  const { rows } = await database.db.query<{ first: Date; last: Date; p50: number; p99: number }>(
    `SELECT min(event_created_at) AS first, max(delivered_at) AS last,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - event_created_at)) * 1000 AS p50,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - event_created_at)) * 1000 AS p99
       FROM webhook_deliveries WHERE endpoint_id = ANY ($1::uuid[])`,
    [healthyIds],
  );
  const seconds = (rows[0].last.getTime() - rows[0].first.getTime()) / 1000;
  const failingAttempts = secondStatus === 200 ? 0 : second.count();
  await healthy.close();
  await second.close();
  const result = { healthyRate: target / seconds / healthyIds.length, totalRate: (target + failingAttempts) / seconds, p50: rows[0].p50, p99: rows[0].p99, seconds };
  console.log(
    `${label.padEnd(34)} ${fmt(target / seconds)} deliveries/s to healthy endpoints (${fmt(result.healthyRate)} per endpoint), ` +
      `${fmt(target)} in ${fmt(seconds, 1)} s; change→delivery p50 ${fmt(result.p50)} ms, p99 ${fmt(result.p99)} ms` +
      (failingAttempts ? `; ${fmt(failingAttempts)} attempts at the failing endpoint answered 500` : '') +
      `; events produced in ${fmt(produced, 1)} s`,
  );
  return result;
}

export default async function webhooks() {
  const database = await benchDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'se-bench-webhooks-'));
  const worker = await startEngineProcess('worker', {
    DATABASE_URL: database.url,
    WEBHOOK_ALLOW_PRIVATE: 'true',
    SEND_ENGINE_DATA_DIR: dataDir,
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('WEBHOOK_')) as [string, string][]),
  });
  try {
    await sleep(1500);
    // JIT, sockets and connection pools warm, so the first measured run is not the slow one.
    await run(database, 'warm-up (not compared)', 200, { events: 5000, perSecond: 1e9 });
    const base = await run(database, '2 endpoints answering 200', 200);
    const degraded = await run(database, '1 answering 200, 1 failing (500)', 500);
    const paced = Number(process.env.BENCH_WEBHOOK_PACED_RATE ?? 400);
    await run(database, `paced: ${fmt(paced)} events/s × 2 endpoints`, 200, { events: paced * 15, perSecond: paced });
    const ratio = degraded.healthyRate / base.healthyRate;
    console.log(
      `healthy endpoint's rate with a failing neighbour / without: ${fmt(ratio, 2)} (must stay ≥ 0.90: ${ratio >= 0.9 ? 'ok' : 'NOT MET'}); ` +
        `goal ≥ 2,000 deliveries/s: ${base.healthyRate * 2 >= 2000 ? 'met' : 'NOT MET'}`,
    );
  } finally {
    await stopProcess(worker);
    await rm(dataDir, { recursive: true, force: true });
    await database.drop();
  }
}
