import { issueToken } from '../../src/auth/jwt.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { BENCH_JWT_SECRET, benchDatabase, cpuMeter, fmt, freePort, peakRssMb, rssMb, sleep, startEngineProcess, startSink, stopProcess, seedMembers } from '../lib.ts';

// The same unsigned list send by engines started in turn with different node flags or settings
// (docs/operations.md#memory): peak RSS and engine CPU per message of each, in alternating order.
// BENCH_ENGINE_SETTINGS="name|node flags|NAME=value,NAME=value;..." (default: the launcher's V8
// setting against V8's defaults); BENCH_ENGINE_ROUNDS (2); BENCH_LIST_MEMBERS (20,000).
const MEMBERS = Number(process.env.BENCH_LIST_MEMBERS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ENGINE_ROUNDS ?? 2);
const SETTINGS = (process.env.BENCH_ENGINE_SETTINGS ?? 'default||;v8-defaults|--no-optimize-for-size|')
  .split(';')
  .filter(Boolean)
  .map((setting) => {
    const [name, flags = '', env = ''] = setting.split('|');
    const pairs = env.split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]);
    return { name, flags, env: Object.fromEntries(pairs) as Record<string, string> };
  });
const HTML = `<html><body><h1>November news</h1>${'<p>Lorem ipsum dolor sit amet, <a href="https://acme.example/article">read more</a>.</p>'.repeat(10)}</body></html>`;

export default async function engineSettings() {
  const database = await benchDatabase();
  const sink = await startSink();
  const tenant = await createTenant(database.db, 'bench');
  const token = await issueToken(BENCH_JWT_SECRET, { tenantId: tenant.id, scopes: ['jobs.manage'], ttl: '2h' });
  const listId = '01890000-0000-7000-8000-00000000b002';
  await seedMembers(database.db, tenant.id, listId, MEMBERS);
  await database.db.query('ANALYZE');
  console.log(`sink: ${sink.kind}; ${fmt(MEMBERS)} members, unsigned, open and click tracking; ${ROUNDS} rounds of ${SETTINGS.map((s) => s.name).join(', ')}`);
  const nodeArgs = process.env.BENCH_ENGINE_NODE_ARGS;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const setting of round % 2 ? [...SETTINGS].reverse() : SETTINGS) {
        const port = await freePort();
        // startEngineProcess passes BENCH_ENGINE_NODE_ARGS to node.
        process.env.BENCH_ENGINE_NODE_ARGS = setting.flags;
        const engine = await startEngineProcess('start', {
          DATABASE_URL: database.url,
          PORT: String(port),
          SEND_ENGINE_TRANSPORT: `smtp://127.0.0.1:${sink.port}`,
          REQUIRE_VERIFIED_DOMAIN: 'false',
          DISPATCH_CONCURRENCY: '20',
          DISPATCH_BATCH_SIZE: '200',
          DEFAULT_FROM_ADDRESS: 'news@acme.example',
          ...setting.env,
        });
        try {
          await sleep(2000);
          const idle = rssMb(engine.pid!);
          const meter = await cpuMeter(database.db, engine.pid!);
          const started = performance.now();
          const res = await fetch(`http://127.0.0.1:${port}/api/send-jobs`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ list_id: listId, from: 'news@acme.example', subject: 'November news for {{ email }}', template: { html: HTML, text: 'November news' }, tracking: { open: true, click: true } }),
          });
          if (!res.ok) throw new Error(`creating the job failed: ${res.status} ${await res.text()}`);
          const { send_job_id: jobId } = (await res.json()) as { send_job_id: string };
          for (;;) {
            const { rows } = await database.db.query(`SELECT status FROM send_jobs WHERE id = $1`, [jobId]);
            if (rows[0].status !== 'pending' && rows[0].status !== 'running') break;
            await sleep(250);
          }
          const cpu = await meter.stop();
          const seconds = (performance.now() - started) / 1000;
          const { rows } = await database.db.query(`SELECT count(*)::int AS n FROM messages WHERE send_job_id = $1 AND status = 'sent'`, [jobId]);
          const sent: number = rows[0].n;
          console.log(
            `${setting.name.padEnd(14)} round ${round + 1}: ${fmt(sent)} sent, ${fmt(sent / seconds)} msgs/s; idle ${idle} MB, peak RSS ${peakRssMb(engine.pid!)} MB; ` +
              `CPU per message: engine ${fmt((1000 * cpu.engineMs) / sent)} µs, PostgreSQL ${fmt((1000 * cpu.postgresMs) / sent)} µs`,
          );
        } finally {
          await stopProcess(engine);
        }
      }
    }
  } finally {
    if (nodeArgs === undefined) delete process.env.BENCH_ENGINE_NODE_ARGS;
    else process.env.BENCH_ENGINE_NODE_ARGS = nodeArgs;
    await sink.stop();
    await database.drop();
  }
}
