import nodemailer from 'nodemailer';
import { issueToken } from '../../src/auth/jwt.ts';
import { composeMessage } from '../../src/sending/compose.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { noDelaySocket } from '../../src/transports/smtp.ts';
import { BENCH_JWT_SECRET, benchDatabase, fmt, freePort, peakRssMb, sleep, startEngineProcess, startSink, stopProcess } from '../lib.ts';

const MEMBERS = Number(process.env.BENCH_LIST_MEMBERS ?? 100_000);
const CONCURRENCY = Number(process.env.BENCH_LIST_CONCURRENCY ?? 20);
const BASELINE = Math.min(MEMBERS, 20_000);

const HTML = `<html><body><h1>November news</h1>${'<p>Lorem ipsum dolor sit amet, <a href="https://acme.example/article">read more</a>.</p>'.repeat(10)}</body></html>`;

async function bareNodemailer(port: number, n: number): Promise<number> {
  const transporter = nodemailer.createTransport({ host: '127.0.0.1', port, pool: true, maxConnections: CONCURRENCY, maxMessages: Infinity, getSocket: noDelaySocket } as nodemailer.TransportOptions);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        const m = await composeMessage({ id: `00000000-0000-7000-8000-${String(i).padStart(12, '0')}`, recipient: `member${i}@example.com`, from: 'news@acme.example', subject: 'November news', html: HTML, text: 'November news', headers: {}, listUnsubscribe: { url: 'https://acme.example/u/x' } });
        await transporter.sendMail({ envelope: { from: m.from, to: [m.to] }, raw: m.raw });
      }
    }),
  );
  const rate = n / ((performance.now() - started) / 1000);
  transporter.close();
  return rate;
}

export default async function listSend() {
  const database = await benchDatabase();
  const sink = await startSink();
  const port = await freePort();
  const tenant = await createTenant(database.db, 'bench');
  const token = await issueToken(BENCH_JWT_SECRET, { tenantId: tenant.id, scopes: ['jobs.manage'], ttl: '1h' });
  const listId = '01890000-0000-7000-8000-00000000b001';
  // The list as full syncs would leave it, written set-based.
  await database.db.query('INSERT INTO lists (tenant_id, id) VALUES ($1, $2)', [tenant.id, listId]);
  await database.db.query(
    `WITH s AS (
       INSERT INTO subscribers (tenant_id, id, email, status, updated_at)
       SELECT $1, uuid_v7(), 'member' || g || '@example.com', 'active', now() FROM generate_series(1, $3) g
       RETURNING id)
     INSERT INTO list_members (tenant_id, list_id, subscriber_id, status, reason, source_id, status_at)
     SELECT $1, $2, id, 'active', 'seed', gen_random_uuid(), now() FROM s`,
    [tenant.id, listId, MEMBERS],
  );
  await database.db.query('ANALYZE');
  console.log(`sink: ${sink.kind}; ${fmt(MEMBERS)} members, SMTP concurrency ${CONCURRENCY}`);

  const baseline = await bareNodemailer(sink.port, BASELINE);
  const engine = await startEngineProcess('start', {
    DATABASE_URL: database.url,
    PORT: String(port),
    SEND_ENGINE_TRANSPORT: `smtp://127.0.0.1:${sink.port}`,
    // Not about sending domains: the bench sends from a domain it never verifies.
    REQUIRE_VERIFIED_DOMAIN: 'false',
    DISPATCH_CONCURRENCY: String(CONCURRENCY),
    DISPATCH_BATCH_SIZE: '200',
    DEFAULT_FROM_ADDRESS: 'news@acme.example',
  });
  try {
    const started = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/api/send-jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ list_id: listId, subject: 'November news for {{ email }}', template: { html: HTML, text: 'November news' }, tracking: { open: true, click: true } }),
    });
    const { send_job_id: jobId } = (await res.json()) as { send_job_id: string };
    let fanoutSeconds = 0;
    for (;;) {
      const { rows } = await database.db.query(
        `SELECT j.status, j.fanout_done, (SELECT count(*)::int FROM messages WHERE send_job_id = j.id AND status = 'sent') AS sent FROM send_jobs j WHERE id = $1`,
        [jobId],
      );
      if (!fanoutSeconds && rows[0].fanout_done) fanoutSeconds = (performance.now() - started) / 1000;
      if (rows[0].status !== 'pending' && rows[0].status !== 'running') break;
      await sleep(250);
    }
    const seconds = (performance.now() - started) / 1000;
    const { rows } = await database.db.query(`SELECT status, count(*)::int AS n FROM messages WHERE send_job_id = $1 GROUP BY status`, [jobId]);
    const sent = rows.find((r) => r.status === 'sent')?.n ?? 0;
    console.log(`fan-out:               ${fmt(fanoutSeconds, 2)} s for ${fmt(MEMBERS)} members (${fmt(MEMBERS / fanoutSeconds)} messages/s written)`);
    console.log(`delivered end to end:  ${fmt(sent / seconds)} msgs/s (${fmt(sent)} sent in ${fmt(seconds, 1)} s, create to completed; statuses ${JSON.stringify(Object.fromEntries(rows.map((r) => [r.status, r.n])))})`);
    console.log(`bare nodemailer:       ${fmt(baseline)} msgs/s, same HTML, same sink, same connections (engine/bare ratio ${fmt(sent / seconds / baseline, 2)})`);
    console.log(`engine peak RSS:       ${peakRssMb(engine.pid!)} MB`);
  } finally {
    await stopProcess(engine);
    await sink.stop();
    await database.drop();
  }
}
