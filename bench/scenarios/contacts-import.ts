import { availableParallelism, loadavg } from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { issueToken } from '../../src/auth/jwt.ts';
import { loadConfig } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/log.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { BENCH_JWT_SECRET, benchDatabase, cpuMeter, fmt } from '../lib.ts';

/**
 * POST /v1/lists/{id}/contacts/import of BENCH_IMPORT_CONTACTS (default 200,000) CSV rows
 * (email, first_name, last_name, a property), streamed over HTTP on 127.0.0.1 to the app in this
 * process, into a fresh database; then a file changing every contact's `plan` (all updates), then
 * that file again (nothing to rewrite). Baseline in the same run: the same CSV bytes COPY'd raw into
 * a temporary table (pg-copy-streams), no parsing in Node, no rules. Goal: >= 50,000 new
 * contacts/s. The file is generated as it is sent, so the peak RSS printed shows the import does
 * not hold it. The load average printed beside the figures says how shared the machine was; the CPU
 * time per contact (this process, and the bench database's PostgreSQL backends) varies far less.
 */
const TOTAL = Number(process.env.BENCH_IMPORT_CONTACTS ?? 200_000);

/** The file; `plan` names the pass, so a second pass with another plan changes every contact. */
function csv(plan = 'free'): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i === 0) this.push('email,first_name,last_name,plan\n');
      const lines: string[] = [];
      for (let n = 0; n < 5_000 && i < TOTAL; n++, i++) lines.push(`user${i}@bench.example.com,First${i},Last${i},${i % 3 ? plan : `${plan}-pro`}\n`);
      this.push(lines.length ? lines.join('') : null);
    },
  });
}

export default async function contactsImport() {
  const bench = await benchDatabase();
  const config = loadConfig({ DATABASE_URL: bench.url, JWT_SECRET: BENCH_JWT_SECRET, LOG_LEVEL: 'warn' });
  const app = await buildApp({ config, db: bench.db, logger: createLogger('warn') });
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const tenant = await createTenant(bench.db, 'bench');
    const token = await issueToken(BENCH_JWT_SECRET, { tenantId: tenant.id, scopes: ['lists.manage', 'lists.view'], ttl: '1h' });
    const auth = { authorization: `Bearer ${token}` };
    const list = await (await fetch(`${baseUrl}/v1/lists`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bench' }) })).json();

    // Baseline: the bytes straight into PostgreSQL.
    const client = await bench.db.connect();
    const b0 = performance.now();
    await client.query('CREATE TEMP TABLE raw_import (email text, first_name text, last_name text, plan text)');
    await pipeline(csv(), client.query(copyFrom(`COPY raw_import FROM STDIN WITH (FORMAT csv, HEADER true)`)));
    const baselineS = (performance.now() - b0) / 1000;
    client.release();

    let peakRss = process.memoryUsage().rss;
    const timer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
    const run = async (plan?: string) => {
      const t0 = performance.now();
      const cpu = await cpuMeter(bench.db, process.pid);
      const res = await fetch(`${baseUrl}/v1/lists/${list.id}/contacts/import`, {
        method: 'POST', headers: { ...auth, 'content-type': 'text/csv' }, body: Readable.toWeb(csv(plan)) as ReadableStream, duplex: 'half',
      } as RequestInit);
      const body = await res.json();
      const seconds = (performance.now() - t0) / 1000;
      return { seconds, cpu: await cpu.stop(), body };
    };
    const rssBefore = process.memoryUsage().rss;
    const first = await run();
    const second = await run('basic');
    const third = await run('basic');
    clearInterval(timer);
    if (first.body.created !== TOTAL || second.body.updated !== TOTAL || third.body.updated !== TOTAL) {
      throw new Error(`unexpected import result: ${JSON.stringify([first.body, second.body, third.body])}`);
    }
    const rate = (s: number) => TOTAL / s;
    console.log(`contacts: ${fmt(TOTAL)} CSV rows`);
    console.log(`baseline raw COPY into a temp table: ${fmt(rate(baselineS))} rows/s (${fmt(baselineS, 2)} s)`);
    console.log(`import, all new:      ${fmt(rate(first.seconds))} contacts/s (${fmt(first.seconds, 2)} s), ${fmt(rate(first.seconds) / rate(baselineS), 2)}x the baseline`);
    console.log(`import, all updates:  ${fmt(rate(second.seconds))} contacts/s (${fmt(second.seconds, 2)} s), ${fmt(rate(second.seconds) / rate(baselineS), 2)}x the baseline (a property changed)`);
    console.log(`import, unchanged:    ${fmt(rate(third.seconds))} contacts/s (${fmt(third.seconds, 2)} s), ${fmt(rate(third.seconds) / rate(baselineS), 2)}x the baseline (the same file again: nothing rewritten)`);
    // CPU per contact: this process (the app, and the client generating and sending the file) and the PostgreSQL backends of the bench database.
    const perContact = (r: typeof first) => `Node ${fmt((r.cpu.engineMs * 1000) / TOTAL, 1)} µs + PostgreSQL ${fmt((r.cpu.postgresMs * 1000) / TOTAL, 1)} µs`;
    console.log(`CPU per contact (Node: the app, and the client generating and sending the file): new ${perContact(first)}; updates ${perContact(second)}; unchanged ${perContact(third)}`);
    console.log(`goal >= 50,000 contacts/s (new): ${rate(first.seconds) >= 50_000 ? 'met' : 'NOT met'}`);
    console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${availableParallelism()} cores (a shared machine slows every figure alike)`);
    console.log(`process RSS: ${fmt(rssBefore / 1048576)} MB before, peak ${fmt(peakRss / 1048576)} MB during (the file is never held)`);
  } finally {
    await app.close();
    await bench.drop();
  }
}
