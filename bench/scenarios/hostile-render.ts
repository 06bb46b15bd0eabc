import os from 'node:os';
import { issueToken } from '../../src/auth/jwt.ts';
import { newId } from '../../src/ids.ts';
import { JobRenderer, type ListMessage } from '../../src/jobs/render.ts';
import { compileTemplate } from '../../src/jobs/template.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { BENCH_JWT_SECRET, benchDatabase, fmt, freePort, sleep, startEngineProcess, startSink, stopProcess } from '../lib.ts';

// Each hostile recipient's render runs until Liquid's 1 s render limit stops it.
const HOSTILE_MEMBERS = Number(process.env.BENCH_HOSTILE_MEMBERS ?? 40);
const PHASE_MS = Number(process.env.BENCH_HOSTILE_PHASE_MS ?? 8_000);
const BOMB = '<p>{% for i in (1..preferences.n) %}{% for j in (1..preferences.n) %}x{% endfor %}{% endfor %}</p>';
const NEWSLETTER = {
  subject: 'News for {{ preferences.name | default: "you" }}',
  html: `<html><body><h1>Hello {{ preferences.name }}</h1>${'<p>Paragraph with a <a href="https://acme.example/a">link</a> and some text.</p>'.repeat(40)}</body></html>`,
  text: 'Hello {{ preferences.name }}',
};

const p = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];

/** Two clients in a loop each on GET /v1/_health and POST /v1/send-jobs for `ms`: latencies per route. */
async function measure(base: string, token: string, ms: number, tag: string) {
  const health: number[] = [];
  const send: number[] = [];
  const until = Date.now() + ms;
  let i = 0;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const loop = async (out: number[], call: () => Promise<Response>) => {
    while (Date.now() < until) {
      const t = performance.now();
      const res = await call();
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`${res.status} from the engine`);
      out.push(performance.now() - t);
    }
  };
  const post = () =>
    fetch(`${base}/v1/send-jobs`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        message_type: 'transactional',
        from: 'receipts@acme.test',
        to: [`user${i}@example.com`],
        subject: 'Receipt',
        html: '<p>Thanks</p>',
        text: 'Thanks',
        tags: { campaign_id: 'r', site_id: 's', list_id: 'l', segment: 'all' },
        idempotency_key: `${tag}-${i++}`,
      }),
    });
  await Promise.all([loop(health, () => fetch(`${base}/v1/_health`)), loop(health, () => fetch(`${base}/v1/_health`)), loop(send, post), loop(send, post)]);
  health.sort((a, b) => a - b);
  send.sort((a, b) => a - b);
  return { health, send };
}

/** Renders per second of a typical newsletter: on the calling thread, and through the render threads. */
export async function renderThroughput(db: Awaited<ReturnType<typeof benchDatabase>>['db'], tenantId: string) {
  const n = 4_000;
  const template = compileTemplate(NEWSLETTER);
  let t = performance.now();
  for (let i = 0; i < n; i++) template.render({ email: `u${i}@example.com`, subscriber_id: newId(), preferences: { name: `N${i}` }, unsubscribe_url: 'https://x.example/u' });
  const inThread = n / ((performance.now() - t) / 1000);

  const campaignId = newId();
  const listId = newId();
  const jobId = newId();
  await db.query('INSERT INTO lists (tenant_id, id) VALUES ($1, $2)', [tenantId, listId]);
  await db.query('INSERT INTO campaigns (id, tenant_id) VALUES ($1, $2)', [campaignId, tenantId]);
  await db.query(
    `INSERT INTO send_jobs (id, tenant_id, list_id, campaign_id, name, from_address, template, scheduled_at, status, track_clicks)
     VALUES ($1, $2, $3, $4, 'bench', 'news@acme.test', $5, now(), 'cancelled', true)`,
    [jobId, tenantId, listId, campaignId, JSON.stringify(NEWSLETTER)],
  );
  const renderer = new JobRenderer(db, { baseUrl: 'http://127.0.0.1:3000', secret: 'x'.repeat(32) });
  const message = (i: number): ListMessage => ({ id: newId(), tenantId, recipient: `u${i}@example.com`, list: { jobId, listId, subscriberId: newId(), preferences: { name: `N${i}` } } });
  const batch = (from: number) => Array.from({ length: 100 }, (_, i) => message(from + i));
  await Promise.all(renderer.renderMany(batch(0)).values()); // warm every thread
  t = performance.now();
  // The dispatcher's shape: a claimed batch of 100 handed over at once, the next one while it renders.
  for (let i = 0; i < n; i += 200) {
    await Promise.all([...renderer.renderMany(batch(i)).values(), ...renderer.renderMany(batch(i + 100)).values()]);
  }
  const pooled = n / ((performance.now() - t) / 1000);
  await renderer.close();
  return { inThread, pooled };
}

export default async function hostileRender() {
  const database = await benchDatabase();
  const sink = await startSink();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const client = await createTenant(database.db, 'client');
  const hostile = await createTenant(database.db, 'hostile');
  const clientToken = await issueToken(BENCH_JWT_SECRET, { tenantId: client.id, scopes: ['send'], ttl: '1h' });
  const hostileToken = await issueToken(BENCH_JWT_SECRET, { tenantId: hostile.id, scopes: ['jobs.manage'], ttl: '1h' });

  // What one hostile recipient cost the event loop when rendering ran on it (before this change).
  const bomb = compileTemplate({ subject: 'Bomb', html: BOMB });
  let t = performance.now();
  try {
    bomb.render({ email: 'x@example.com', subscriber_id: newId(), preferences: { n: 4000 }, unsubscribe_url: 'https://x.example/u' });
  } catch {
    // The render limit stops it: that is the point.
  }
  const onLoopMs = performance.now() - t;

  const listId = newId();
  await database.db.query('INSERT INTO lists (tenant_id, id) VALUES ($1, $2)', [hostile.id, listId]);
  await database.db.query(
    `WITH s AS (
       INSERT INTO subscribers (tenant_id, id, email, status, updated_at)
       SELECT $1, gen_random_uuid(), 'victim' || g || '@example.com', 'active', now() FROM generate_series(1, $3) g RETURNING id)
     INSERT INTO list_members (tenant_id, list_id, subscriber_id, status, reason, source_id, status_at, preferences)
     SELECT $1, $2, id, 'active', 'seed', gen_random_uuid(), now() - interval '1 minute', '{"n": 4000}' FROM s`,
    [hostile.id, listId, HOSTILE_MEMBERS],
  );

  const engine = await startEngineProcess('start', {
    DATABASE_URL: database.url,
    PORT: String(port),
    SEND_ENGINE_TRANSPORT: `smtp://127.0.0.1:${sink.port}`,
    RATE_LIMIT_LIVE_PER_MINUTE: '1000000',
    LOG_LEVEL: 'error',
  });
  try {
    console.log(`${os.availableParallelism()} cores; ${HOSTILE_MEMBERS} hostile recipients (each render stopped by the 1 s limit); phases of ${PHASE_MS / 1000} s, 2 clients per route`);
    console.log(`one hostile render on the calling thread: ${fmt(onLoopMs)} ms of blocked event loop (what each recipient cost the API before)`);
    await measure(base, clientToken, 1_000, 'warm');
    const quiet = await measure(base, clientToken, PHASE_MS, 'quiet');

    const res = await fetch(`${base}/api/send-jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hostileToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ list_id: listId, from: 'news@hostile.test', subject: 'Bomb', template: { html: BOMB } }),
    });
    if (!res.ok) throw new Error(`hostile job refused: ${res.status} ${await res.text()}`);
    const { send_job_id: jobId } = (await res.json()) as { send_job_id: string };
    // Wait until its messages are being rendered.
    for (let i = 0; i < 100; i++) {
      const { rows } = await database.db.query(`SELECT count(*)::int AS n FROM messages WHERE send_job_id = $1 AND status = 'sending'`, [jobId]);
      if (rows[0].n > 0) break;
      await sleep(100);
    }
    const hostilePhase = await measure(base, clientToken, PHASE_MS, 'hostile');
    // The hostile job ends with every message failed and the reason stored; nothing else stops.
    let rows: Array<{ failed: number; total: number; reason: string | null }> = [];
    for (let i = 0; i < 240; i++) {
      ({ rows } = await database.db.query(
        `SELECT count(*) FILTER (WHERE status = 'failed' AND last_error LIKE 'render_failed:%')::int AS failed, count(*)::int AS total,
                min(last_error) AS reason FROM messages WHERE send_job_id = $1`,
        [jobId],
      ));
      if (rows[0].total && rows[0].failed === rows[0].total) break;
      await sleep(500);
    }
    const line = (name: string, a: number[], b: number[]) =>
      console.log(
        `${name.padEnd(22)} p50 ${fmt(p(a, 0.5), 1)} -> ${fmt(p(b, 0.5), 1)} ms, p99 ${fmt(p(a, 0.99), 1)} -> ${fmt(p(b, 0.99), 1)} ms ` +
          `(quiet -> hostile rendering; p99 ratio ${fmt(p(b, 0.99) / p(a, 0.99), 2)}; ${fmt(a.length)} / ${fmt(b.length)} requests) ${p(b, 0.99) < 50 ? 'OK < 50 ms' : 'OVER 50 ms'}`,
      );
    line('GET /v1/_health', quiet.health, hostilePhase.health);
    line('POST /v1/send-jobs', quiet.send, hostilePhase.send);
    console.log(`hostile job: ${rows[0].failed} of ${rows[0].total} messages failed, e.g. "${rows[0].reason}"; the engine still answers: ${(await fetch(`${base}/v1/_health`)).status}`);
  } finally {
    await stopProcess(engine);
    await sink.stop();
  }

  const { inThread, pooled } = await renderThroughput(database.db, client.id);
  console.log(`newsletter renders/s: ${fmt(inThread)} on the calling thread, ${fmt(pooled)} through piscina (${Math.max(1, Math.min(4, os.availableParallelism()))} threads, chunks of 16 from batches of 100; ratio ${fmt(pooled / inThread, 2)})`);
  await database.drop();
}
