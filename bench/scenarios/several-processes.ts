import { issueToken } from '../../src/auth/jwt.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { BENCH_JWT_SECRET, benchDatabase, fmt, freePort, processCpuMs, recordingSink, sleep, startEngineProcess, stopProcess, seedMembers } from '../lib.ts';

/**
 * Several processes on one PostgreSQL: one `serve` (the API) and BENCH_SEVERAL_WORKERS (2) `worker`
 * processes send a BENCH_SEVERAL_MEMBERS (100,000) member list job into a real SMTP server that
 * records each delivery's recipient and Message-ID, with the tenant's send rate set to
 * BENCH_SEVERAL_RATE (1,000) messages per second. Prints deliveries, members missed, duplicates,
 * the rate each second against the tenant's, and each worker's CPU (both took part).
 */
const MEMBERS = Number(process.env.BENCH_SEVERAL_MEMBERS ?? 100_000);
const WORKERS = Number(process.env.BENCH_SEVERAL_WORKERS ?? 2);
const RATE = Number(process.env.BENCH_SEVERAL_RATE ?? 1_000);
const DEADLINE_MS = Math.max(120_000, (3 * MEMBERS * 1000) / RATE);

export default async function severalProcesses() {
  const database = await benchDatabase();
  const sink = await recordingSink();
  const port = await freePort();
  const tenant = await createTenant(database.db, 'bench');
  await database.db.query('UPDATE tenants SET max_send_rate = $2 WHERE id = $1', [tenant.id, RATE]);
  const token = await issueToken(BENCH_JWT_SECRET, { tenantId: tenant.id, scopes: ['jobs.manage'], ttl: '1h' });
  const listId = '01890000-0000-7000-8000-00000000c001';
  await seedMembers(database.db, tenant.id, listId, MEMBERS);
  await database.db.query('ANALYZE');
  console.log(`1 serve + ${WORKERS} worker processes, one PostgreSQL; ${fmt(MEMBERS)} members; tenant rate ${fmt(RATE)} msgs/s; sink: smtp-server (Node) recording each delivery`);

  const env = {
    DATABASE_URL: database.url,
    SEND_ENGINE_TRANSPORT: `smtp://127.0.0.1:${sink.port}`,
    REQUIRE_VERIFIED_DOMAIN: 'false',
    DEFAULT_FROM_ADDRESS: 'news@acme.example',
  };
  const serve = await startEngineProcess('serve', { ...env, PORT: String(port) });
  const workers = await Promise.all(Array.from({ length: WORKERS }, () => startEngineProcess('worker', env)));
  try {
    const started = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/api/send-jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ list_id: listId, from: 'news@acme.example', subject: 'News for {{ email }}', body_text: 'Hello' }),
    });
    if (!res.ok) throw new Error(`creating the job failed: ${res.status} ${await res.text()}`);
    const { send_job_id: jobId } = (await res.json()) as { send_job_id: string };
    let status = 'pending';
    while (status === 'pending' || status === 'running') {
      if (performance.now() - started > DEADLINE_MS) throw new Error(`the job did not finish within ${DEADLINE_MS / 1000} s (status ${status}, ${fmt(sink.deliveries.length)} delivered)`);
      await sleep(500);
      ({ status } = (await database.db.query<{ status: string }>('SELECT status FROM send_jobs WHERE id = $1', [jobId])).rows[0]);
    }
    const seconds = (performance.now() - started) / 1000;
    await sleep(1000); // the last replies' bookkeeping in the sink

    const byRecipient = new Map<string, number>();
    for (const d of sink.deliveries) byRecipient.set(d.to, (byRecipient.get(d.to) ?? 0) + 1);
    const duplicates = [...byRecipient.values()].reduce((n, c) => n + c - 1, 0);
    const missed = MEMBERS - byRecipient.size;
    const distinctIds = new Set(sink.deliveries.map((d) => d.messageId)).size;
    // Deliveries per whole second from the first one; the last, partial second is left out.
    const first = Math.min(...sink.deliveries.map((d) => d.at));
    const perSecond: number[] = [];
    for (const d of sink.deliveries) {
      const s = Math.floor((d.at - first) / 1000);
      perSecond[s] = (perSecond[s] ?? 0) + 1;
    }
    const whole = perSecond.slice(0, -1).map((n) => n ?? 0);
    const peak = Math.max(...whole);
    const mean = whole.reduce((a, b) => a + b, 0) / whole.length;
    console.log(`job ${status} in ${fmt(seconds, 1)} s (create to completed); ${fmt(sink.deliveries.length)} deliveries, ${fmt(byRecipient.size)} distinct members, ${fmt(missed)} missed, ${fmt(duplicates)} duplicates; ${fmt(distinctIds)} distinct Message-IDs`);
    console.log(`rate: mean ${fmt(mean)} msgs/s over ${whole.length} whole seconds, busiest second ${fmt(peak)}, tenant's limit ${fmt(RATE)} msgs/s (mean/limit ${fmt(mean / RATE, 3)})`);
    console.log(`CPU: serve ${fmt(processCpuMs(serve.pid!) / 1000, 1)} s; workers ${workers.map((w) => `${fmt(processCpuMs(w.pid!) / 1000, 1)} s`).join(', ')} (each took part)`);
    console.log(`goals: exactly once ${missed === 0 && duplicates === 0 ? 'reached' : 'NOT reached'}; mean rate within the tenant's ${mean <= RATE * 1.01 ? 'reached' : 'NOT reached'}`);
  } finally {
    await Promise.all([...workers, serve].map(stopProcess));
    await sink.stop();
    await database.drop();
  }
}
