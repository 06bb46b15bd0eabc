import { issueToken } from '../../src/auth/jwt.ts';
import { loadConfig } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/log.ts';
import { encodeCursor } from '../../src/observability/cursor.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { BENCH_JWT_SECRET, benchDatabase, fmt } from '../lib.ts';

/**
 * Reports and message-list pages over one tenant's 90 days of history (default 10,000,000
 * events). The history is generated set-based in SQL, one INSERT per day of sends, through the
 * real message_events trigger, so the roll-ups are the ones the engine would have built. Then
 * each report and page is requested RUNS times over real HTTP (the app in this process, a JWT
 * with the needed scopes) and p50/p99 are printed against the targets.
 */
const EVENTS = Number(process.env.BENCH_REPORT_EVENTS ?? 10_000_000);
const RUNS = Number(process.env.BENCH_REPORT_RUNS ?? 50);
const DAYS = 90;
const RECIPIENTS = 200_000;
const TEMPLATES = ['welcome', 'weekly-digest', 'promo-spring', 'product-update', 'reengagement', 'order-followup', 'onboarding-day3'];
const WEEKS = Math.ceil(DAYS / 7);
// Per message: 1 send, 1 delivery or bounce (3 %), 0.2 % complaints, half the delivered open 1-4
// times (some on a later day), 15 % click 1-2 times: about 3.4 events.
const EVENTS_PER_MESSAGE = 3.43;
const REPORT_TARGET_MS = 100;
const PAGE_TARGET_MS = 50;

// One day's messages (3 in 10 proxy sends, the rest spread over the templates' weekly jobs) and
// all their events, in one statement: the trigger runs once over the day's transition table.
const DAY_SQL = `
WITH g AS MATERIALIZED (
  SELECT uuid_v7() AS id, $2::timestamptz + random() * interval '1 day' AS at, floor(random() * 10)::int AS t,
         'u' || floor(random() * ${RECIPIENTS})::int || '@example.com' AS recipient,
         random() AS r1, random() AS r2, random() AS r3, random() AS r4
    FROM generate_series(1, $3::int)
), f AS MATERIALIZED (
  SELECT id, at, t, recipient,
         CASE WHEN r1 < 0.02 THEN 'hard' WHEN r1 < 0.03 THEN 'soft' END AS bounce,
         (r1 >= 0.03 AND r2 < 0.002) AS complaint,
         CASE WHEN r1 >= 0.03 AND r3 < 0.5 THEN 1 + floor(r4 * 4)::int ELSE 0 END AS opens,
         CASE WHEN r1 >= 0.03 AND r3 < 0.15 THEN 1 + floor(r4 * 2)::int ELSE 0 END AS clicks
    FROM g
), m AS (
  INSERT INTO messages (id, tenant_id, proxy_job_id, send_job_id, recipient, status, attempts, created_at, updated_at, sent_at, provider_message_id)
  SELECT id, $1, CASE WHEN t < 3 THEN $4::uuid END, CASE WHEN t >= 3 THEN ($5::uuid[])[(t - 3) * ${WEEKS} + $6::int + 1] END, recipient,
         CASE WHEN bounce IS NOT NULL THEN 'bounced' WHEN complaint THEN 'complained' WHEN clicks > 0 THEN 'clicked' WHEN opens > 0 THEN 'opened' ELSE 'delivered' END,
         1, at, at, at + interval '1 second', 'ses-' || id
    FROM f
)
INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, recorded_at, data)
SELECT uuid_v7(), $1, f.id, e.type, e.at, least(e.at, now()), e.data
  FROM f CROSS JOIN LATERAL (
    SELECT 'send' AS type, f.at + interval '1 second' AS at, '{}'::jsonb AS data
    UNION ALL SELECT 'delivery', f.at + interval '5 seconds', '{}' WHERE f.bounce IS NULL
    UNION ALL SELECT 'bounce', f.at + interval '5 seconds', jsonb_build_object('bounce_class', f.bounce) WHERE f.bounce IS NOT NULL
    UNION ALL SELECT 'complaint', f.at + interval '1 hour', '{}' WHERE f.complaint
    UNION ALL SELECT 'open', f.at + interval '1 minute' + random() * interval '48 hours', '{}' FROM generate_series(1, f.opens)
    UNION ALL SELECT 'click', f.at + interval '2 minutes' + random() * interval '48 hours', '{}' FROM generate_series(1, f.clicks)
  ) e`;

interface Case {
  name: string;
  kind: 'report' | 'page';
  path: string;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

export default async function reports() {
  const database = await benchDatabase();
  const { db } = database;
  let app: Awaited<ReturnType<typeof buildApp>> | undefined;
  try {
    const tenant = await createTenant(db, 'bench');
    const listId = crypto.randomUUID();
    const campaignId = crypto.randomUUID();
    const proxyJobId = crypto.randomUUID();
    await db.query('INSERT INTO lists (tenant_id, id) VALUES ($1, $2)', [tenant.id, listId]);
    await db.query('INSERT INTO campaigns (id, tenant_id, name) VALUES ($1, $2, $3)', [campaignId, tenant.id, 'bench']);
    await db.query(
      `INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, idempotency_key)
       VALUES ($1, $2, 'transactional', 'receipts@acme.example', 'Receipt', '<p>x</p>', 'x', 'bench')`,
      [proxyJobId, tenant.id],
    );
    // Each template is sent by one list send job per week: jobIds[template * WEEKS + week].
    const jobIds = TEMPLATES.flatMap(() => Array.from({ length: WEEKS }, () => crypto.randomUUID()));
    await db.query(
      `INSERT INTO send_jobs (id, tenant_id, list_id, campaign_id, name, from_address, template, scheduled_at, status)
       SELECT id, $1, $2, $3, ($5::text[])[(n - 1) / ${WEEKS} + 1], 'news@acme.example', '{}', now(), 'completed'
         FROM unnest($4::uuid[]) WITH ORDINALITY AS j(id, n)`,
      [tenant.id, listId, campaignId, jobIds, TEMPLATES],
    );

    const perDay = Math.round(EVENTS / EVENTS_PER_MESSAGE / DAYS);
    const firstDay = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate()) - DAYS * 86_400_000);
    console.log(`generating ~${fmt(EVENTS)} events: ${fmt(perDay * DAYS)} messages over ${DAYS} days from ${firstDay.toISOString().slice(0, 10)}, ${TEMPLATES.length} templates + proxy sends`);
    const started = performance.now();
    for (let d = 0; d < DAYS; d++) {
      const day = new Date(firstDay.getTime() + d * 86_400_000);
      await db.query(DAY_SQL, [tenant.id, day, perDay, proxyJobId, jobIds, Math.floor(d / 7)]);
      if ((d + 1) % 15 === 0) console.log(`  day ${d + 1}/${DAYS}: ${fmt((performance.now() - started) / 1000, 1)} s`);
    }
    const generated = (performance.now() - started) / 1000;
    const t0 = performance.now();
    await db.query('VACUUM ANALYZE');
    const vacuumed = (performance.now() - t0) / 1000;
    const { rows: [size] } = await db.query(
      `SELECT (SELECT count(*) FROM message_events)::bigint AS events, (SELECT count(*) FROM messages)::bigint AS messages,
              pg_database_size(current_database()) AS db_bytes,
              pg_total_relation_size('engagement_uniques') AS uniques_bytes, (SELECT count(*) FROM engagement_uniques)::bigint AS uniques,
              (SELECT count(*) FROM tenant_event_counters)::int AS day_rows, (SELECT count(*) FROM template_event_counters)::int AS template_rows`,
    );
    const mb = (b: number) => `${fmt(b / 1024 / 1024)} MB`;
    console.log(`generated ${fmt(size.events)} events for ${fmt(size.messages)} messages through the trigger in ${fmt(generated, 1)} s (${fmt(size.events / generated)} events/s); VACUUM ANALYZE ${fmt(vacuumed, 1)} s`);
    console.log(`database ${mb(size.db_bytes)}; roll-ups: ${size.day_rows} tenant-day rows, ${size.template_rows} template-day rows; engagement_uniques ${fmt(size.uniques)} rows, ${mb(size.uniques_bytes)}`);

    const config = loadConfig({ DATABASE_URL: database.url, JWT_SECRET: BENCH_JWT_SECRET, LOG_LEVEL: 'silent', RATE_LIMIT_LIVE_PER_MINUTE: '100000000' });
    app = await buildApp({ config, db, logger: createLogger('silent') });
    const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
    const token = await issueToken(BENCH_JWT_SECRET, { tenantId: tenant.id, scopes: ['messages.view', 'reports.view'], ttl: '1h' });
    const get = async (path: string) => {
      const res = await fetch(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.json()) as { data: unknown[]; pagination?: { next_cursor: string | null } };
      if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
      return body;
    };
    /** Page n of a list (or its last page, if shorter), reached by following next cursors from page 1. */
    const deepPage = async (name: string, first: string, n: number): Promise<Case> => {
      let url = first;
      let page = 1;
      for (; page < n; page++) {
        const cursor = (await get(url)).pagination?.next_cursor;
        if (!cursor) break;
        url = `${first}&cursor=${cursor}`;
      }
      return { name: `${name} page ${page}`, kind: 'page', path: url };
    };

    const now = Date.now();
    const since = (days: number) => new Date(now - days * 86_400_000).toISOString();
    const w30 = `from=${since(30)}&to=${new Date(now).toISOString()}`;
    const w90 = `from=${since(DAYS + 1)}&to=${new Date(now).toISOString()}`;
    const list = `/v1/messages?limit=100&${w90}`;
    const sixtyDaysBack = encodeCursor({ t: since(60), i: 'ffffffff-ffff-ffff-ffff-ffffffffffff' });
    const cases: Case[] = [];
    for (const report of ['deliverability', 'engagement']) {
      for (const [wname, w] of [['30 d', w30], ['90 d', w90]]) {
        for (const g of ['day', 'week', 'month']) cases.push({ name: `${report} ${wname} by ${g}`, kind: 'report', path: `/v1/reports/${report}?${w}&group_by=${g}` });
      }
    }
    cases.push({ name: 'template-performance 30 d', kind: 'report', path: `/v1/reports/template-performance?${w30}` });
    cases.push({ name: 'template-performance 90 d', kind: 'report', path: `/v1/reports/template-performance?${w90}` });
    cases.push({ name: 'template-performance 90 d, one template', kind: 'report', path: `/v1/reports/template-performance?${w90}&template=WEEKLY-DIGEST` });
    cases.push({ name: 'messages page 1 (limit 100)', kind: 'page', path: list });
    cases.push(await deepPage('messages', list, 200));
    cases.push({ name: 'messages page 1 (limit 200, the maximum)', kind: 'page', path: list.replace('limit=100', 'limit=200') });
    cases.push({ name: 'messages limit 200, 60 days back', kind: 'page', path: `${list.replace('limit=100', 'limit=200')}&cursor=${sixtyDaysBack}` });
    cases.push({ name: 'messages from a cursor 60 days back', kind: 'page', path: `${list}&cursor=${sixtyDaysBack}` });
    cases.push({ name: 'messages status=delivered page 1', kind: 'page', path: `${list}&status=delivered` });
    cases.push(await deepPage('messages status=delivered', `${list}&status=delivered`, 200));
    cases.push({ name: 'messages status=Bounce page 1', kind: 'page', path: `${list}&status=Bounce` });
    cases.push(await deepPage('messages status=Bounce', `${list}&status=Bounce`, 200));
    cases.push({ name: 'messages status=complained page 1', kind: 'page', path: `${list}&status=complained` });
    cases.push({ name: 'messages status=complained 60 days back', kind: 'page', path: `${list}&status=complained&cursor=${sixtyDaysBack}` });

    console.log(`\n${'case'.padEnd(44)} ${'rows'.padStart(5)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}  target`);
    let missed = 0;
    for (const c of cases) {
      let rows = 0;
      for (let i = 0; i < 3; i++) rows = (await get(c.path)).data.length; // warm-up
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const t = performance.now();
        await get(c.path);
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      const target = c.kind === 'report' ? REPORT_TARGET_MS : PAGE_TARGET_MS;
      const p99 = quantile(times, 0.99);
      if (p99 >= target) missed++;
      console.log(`${c.name.padEnd(44)} ${String(rows).padStart(5)} ${fmt(quantile(times, 0.5), 1).padStart(8)} ${fmt(p99, 1).padStart(8)}  < ${target} ${p99 < target ? 'met' : 'MISSED'}`);
    }
    console.log(`\n${RUNS} runs each, sequential, over HTTP (rate limiting and JWT verification included); targets: reports < ${REPORT_TARGET_MS} ms, pages < ${PAGE_TARGET_MS} ms at p99: ${missed ? `${missed} missed` : 'all met'}`);
  } finally {
    await app?.close();
    await database.drop();
  }
}
