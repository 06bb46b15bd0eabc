import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let database: TestDatabase;
let api: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url, { RATE_LIMIT_LIVE_PER_MINUTE: '100000' });
});
afterAll(async () => {
  await api.close();
  await database.drop();
});

describe('GET /v1/reports/deliverability', () => {
  it('buckets the roll-up by UTC day, ISO week and month with delivery_rate = delivered / sent', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['reports.view']);
    // Hand-made roll-up rows (what the event trigger maintains): day, sent, delivered, hard, soft, complained, provider_suppressed.
    await database.db.query(
      `INSERT INTO tenant_event_counters (tenant_id, day, sent, delivered, hard_bounced, soft_bounced, complained, provider_suppressed)
       VALUES ($1, '2025-03-03', 10, 8, 1, 1, 0, 0),  -- Monday
              ($1, '2025-03-05',  5, 5, 0, 0, 1, 0),  -- Wednesday, same ISO week
              ($1, '2025-03-10',  0, 2, 0, 0, 0, 0),  -- late deliveries only: rate 0, not null
              ($1, '2025-03-12',  0, 0, 0, 0, 0, 0),  -- empty: omitted
              ($1, '2025-04-01',  4, 3, 0, 0, 0, 1)`,
      [tenantId],
    );
    const other = await tenantWithToken(database.db, ['reports.view']);
    await database.db.query(`INSERT INTO tenant_event_counters (tenant_id, day, sent) VALUES ($1, '2025-03-03', 999)`, [other.tenantId]);
    const report = async (groupBy: string) => {
      const res = await call(api.baseUrl, 'GET', `/v1/reports/deliverability?from=2025-03-01T00:00:00Z&to=2025-04-30T00:00:00Z&group_by=${groupBy}`, { token });
      expect(res.status).toBe(200);
      return res.json.data;
    };
    expect(await report('day')).toEqual([
      { period: '2025-03-03T00:00:00.000Z', sent: 10, delivered: 8, bounced: 2, complained: 0, suppressed: 0, delivery_rate: 0.8 },
      { period: '2025-03-05T00:00:00.000Z', sent: 5, delivered: 5, bounced: 0, complained: 1, suppressed: 0, delivery_rate: 1 },
      { period: '2025-03-10T00:00:00.000Z', sent: 0, delivered: 2, bounced: 0, complained: 0, suppressed: 0, delivery_rate: 0 },
      { period: '2025-04-01T00:00:00.000Z', sent: 4, delivered: 3, bounced: 0, complained: 0, suppressed: 1, delivery_rate: 0.75 },
    ]);
    expect(await report('week')).toEqual([
      { period: '2025-03-03T00:00:00.000Z', sent: 15, delivered: 13, bounced: 2, complained: 1, suppressed: 0, delivery_rate: 13 / 15 },
      { period: '2025-03-10T00:00:00.000Z', sent: 0, delivered: 2, bounced: 0, complained: 0, suppressed: 0, delivery_rate: 0 },
      { period: '2025-03-31T00:00:00.000Z', sent: 4, delivered: 3, bounced: 0, complained: 0, suppressed: 1, delivery_rate: 0.75 },
    ]);
    expect(await report('month')).toEqual([
      { period: '2025-03-01T00:00:00.000Z', sent: 15, delivered: 15, bounced: 2, complained: 1, suppressed: 0, delivery_rate: 1 },
      { period: '2025-04-01T00:00:00.000Z', sent: 4, delivered: 3, bounced: 0, complained: 0, suppressed: 1, delivery_rate: 0.75 },
    ]);
    const bad = await call(api.baseUrl, 'GET', '/v1/reports/deliverability?group_by=year', { token });
    expect(bad.status).toBe(422);
    expect(bad.json.error).toBe('validation_error');
    expect(bad.json.message).toContain('group_by');
    const noScope = await tenantWithToken(database.db, ['messages.view']);
    expect((await call(api.baseUrl, 'GET', '/v1/reports/deliverability', { token: noScope.token })).status).toBe(403);
  });
});

/** A tenant's fixture built through the real insert path: message_events rows, counted by the trigger. */
function fixture(tenantId: string) {
  const db = database.db;
  const listId = newId();
  const campaignId = newId();
  let proxyJob: string | undefined;
  return {
    async init() {
      await db.query('INSERT INTO lists (tenant_id, id) VALUES ($1, $2)', [tenantId, listId]);
      await db.query('INSERT INTO campaigns (id, tenant_id) VALUES ($1, $2)', [campaignId, tenantId]);
      proxyJob = newId();
      await db.query(
        `INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, idempotency_key)
         VALUES ($1, $2, 'transactional', 'a@acme.test', 's', 'h', 't', $3)`,
        [proxyJob, tenantId, `fixture-${proxyJob}`],
      );
    },
    /** A list send job; its name is the template. */
    async job(name: string | null) {
      const id = newId();
      await db.query(
        `INSERT INTO send_jobs (id, tenant_id, list_id, campaign_id, name, from_address, template, scheduled_at, status)
         VALUES ($1, $2, $3, $4, $5, 'news@acme.test', '{}', now(), 'completed')`,
        [id, tenantId, listId, campaignId, name],
      );
      return id;
    },
    /** A message of a list send job, or (job null) a proxy send. */
    async message(job: string | null, recipient: string) {
      const id = newId();
      await db.query(
        `INSERT INTO messages (id, tenant_id, proxy_job_id, send_job_id, recipient, status) VALUES ($1, $2, $3, $4, $5, 'sent')`,
        [id, tenantId, job ? null : proxyJob, job, recipient],
      );
      return id;
    },
    /** One INSERT statement (so one trigger run) of events arriving at `at`. */
    async arrive(at: string, events: Array<[message: string, type: string, data?: Record<string, unknown>]>) {
      await db.query(
        `INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, recorded_at, data)
         SELECT gen_random_uuid(), $1, e.message_id, e.type, $2, $2, e.data::jsonb
           FROM unnest($3::uuid[], $4::text[], $5::text[]) AS e(message_id, type, data)`,
        [tenantId, at, events.map((e) => e[0]), events.map((e) => e[1]), events.map((e) => JSON.stringify(e[2] ?? {}))],
      );
    },
  };
}

describe('engagement and template-performance reports (hand-computed fixture through the event trigger)', () => {
  let token: string;
  let tenantId: string;
  const WINDOW = 'from=2025-03-01T00:00:00Z&to=2025-04-30T00:00:00Z';
  const get = (path: string, t = token) => call(api.baseUrl, 'GET', path, { token: t });

  beforeAll(async () => {
    ({ tenantId, token } = await tenantWithToken(database.db, ['reports.view']));

    // Another tenant first: its alice opening the same day must not make ours a repeat.
    const other = await tenantWithToken(database.db, ['reports.view']);
    const o = fixture(other.tenantId);
    await o.init();
    const oWelcome = await o.job('Welcome');
    const om = await o.message(oWelcome, 'alice@example.com');
    await o.arrive('2025-03-03T08:00:00Z', [[om, 'send'], [om, 'delivery'], [om, 'open'], [om, 'click']]);

    const f = fixture(tenantId);
    await f.init();
    const welcome = await f.job('Welcome');
    const digest = await f.job('Digest');
    const promo = await f.job('Promo');
    const unnamed = await f.job(null);
    const w1 = await f.message(welcome, 'alice@example.com');
    const w2 = await f.message(welcome, 'Bob@Example.com');
    const w3 = await f.message(welcome, 'carol@example.com');
    const w4 = await f.message(welcome, 'erin@example.com');
    const w5 = await f.message(welcome, 'jack@example.com');
    const w6 = await f.message(welcome, 'kim@example.com');
    const d1 = await f.message(digest, 'ALICE@example.com');
    const d2 = await f.message(digest, 'dave@example.com');
    const [d3, d4, d5, d6] = await Promise.all(['frank', 'gina', 'hank', 'ivy'].map((n) => f.message(digest, `${n}@example.com`)));
    const pr1 = await f.message(promo, 'lee@example.com');
    const p1 = await f.message(null, 'bob@example.com'); // proxy send: no template
    const u1 = await f.message(unnamed, 'carol@example.com'); // unnamed job: no template

    // Monday 2025-03-03.
    await f.arrive('2025-03-03T09:00:00Z', [w1, w2, w3, w5, w6, d1, d2, p1, u1, pr1].map((m) => [m, 'send'] as [string, string]));
    await f.arrive('2025-03-03T09:05:00Z', [
      ...[w1, w2, w5, w6, d1, d2, p1, u1].map((m) => [m, 'delivery'] as [string, string]),
      [w3, 'bounce', { bounce_class: 'hard' }],
      [pr1, 'bounce', { bounce_class: 'soft' }],
    ]);
    // alice twice in one statement and via two templates, bob via a template and a proxy send.
    await f.arrive('2025-03-03T10:00:00Z', [[w1, 'open'], [w1, 'open'], [d1, 'open'], [p1, 'open'], [w2, 'open']]);
    // alice again the same day in a later statement: a total, not a unique.
    await f.arrive('2025-03-03T18:00:00Z', [[w1, 'open'], [w1, 'click'], [w1, 'click']]);
    // Wednesday 2025-03-05 (UTC; the local time says the 4th): alice again, now a new unique for this day.
    await f.arrive('2025-03-04T23:30:00-02:00', [d3, d4, d5, d6].map((m) => [m, 'send'] as [string, string]));
    await f.arrive('2025-03-05T02:00:00Z', [
      ...[d3, d4, d5, d6].map((m) => [m, 'delivery'] as [string, string]),
      [w1, 'open'], [u1, 'open'], [d3, 'open'], [d2, 'click'], [w2, 'complaint'],
    ]);
    // Monday 2025-03-10: a late open, nothing delivered that day.
    await f.arrive('2025-03-10T12:00:00Z', [[d2, 'open']]);
    // Wednesday 2025-03-12: only a deferral, no engagement: an empty engagement bucket.
    await f.arrive('2025-03-12T12:00:00Z', [[w4, 'deferral']]);
    // Tuesday 2025-04-01.
    await f.arrive('2025-04-01T08:00:00Z', [[w4, 'send'], [w4, 'delivery'], [w4, 'open']]);
    await f.arrive('2025-04-01T09:00:00Z', [[w4, 'open'], [w4, 'click']]);
  });

  it('counts opens and clicks in total and as distinct recipients per UTC day; open/click rates over delivered', async () => {
    const res = await get(`/v1/reports/engagement?${WINDOW}&group_by=day`);
    expect(res.status).toBe(200);
    expect(res.json.data).toEqual([
      { period: '2025-03-03T00:00:00.000Z', sent: 10, delivered: 8, opens: 6, unique_opens: 2, clicks: 2, unique_clicks: 1, open_rate: 2 / 8, click_rate: 1 / 8 },
      { period: '2025-03-05T00:00:00.000Z', sent: 4, delivered: 4, opens: 3, unique_opens: 3, clicks: 1, unique_clicks: 1, open_rate: 0.75, click_rate: 0.25 },
      { period: '2025-03-10T00:00:00.000Z', sent: 0, delivered: 0, opens: 1, unique_opens: 1, clicks: 0, unique_clicks: 0, open_rate: 0, click_rate: 0 },
      { period: '2025-04-01T00:00:00.000Z', sent: 1, delivered: 1, opens: 2, unique_opens: 1, clicks: 1, unique_clicks: 1, open_rate: 1, click_rate: 1 },
    ]);
    // The same fixture through the deliverability report: bounces hard + soft, the complaint on Wednesday.
    const deliverability = await get(`/v1/reports/deliverability?${WINDOW}&group_by=day`);
    expect(deliverability.json.data.slice(0, 2)).toEqual([
      { period: '2025-03-03T00:00:00.000Z', sent: 10, delivered: 8, bounced: 2, complained: 0, suppressed: 0, delivery_rate: 0.8 },
      { period: '2025-03-05T00:00:00.000Z', sent: 4, delivered: 4, bounced: 0, complained: 1, suppressed: 0, delivery_rate: 1 },
    ]);
  });

  it('sums daily uniques into week and month buckets (a recipient active on two days counts twice)', async () => {
    const week = await get(`/v1/reports/engagement?${WINDOW}&group_by=week`);
    expect(week.json.data).toEqual([
      // alice opened on Monday and on Wednesday: 2 + 3 = 5 unique opens.
      { period: '2025-03-03T00:00:00.000Z', sent: 14, delivered: 12, opens: 9, unique_opens: 5, clicks: 3, unique_clicks: 2, open_rate: 5 / 12, click_rate: 2 / 12 },
      { period: '2025-03-10T00:00:00.000Z', sent: 0, delivered: 0, opens: 1, unique_opens: 1, clicks: 0, unique_clicks: 0, open_rate: 0, click_rate: 0 },
      { period: '2025-03-31T00:00:00.000Z', sent: 1, delivered: 1, opens: 2, unique_opens: 1, clicks: 1, unique_clicks: 1, open_rate: 1, click_rate: 1 },
    ]);
    const month = await get(`/v1/reports/engagement?${WINDOW}&group_by=month`);
    expect(month.json.data).toEqual([
      { period: '2025-03-01T00:00:00.000Z', sent: 14, delivered: 12, opens: 10, unique_opens: 6, clicks: 3, unique_clicks: 2, open_rate: 0.5, click_rate: 2 / 12 },
      { period: '2025-04-01T00:00:00.000Z', sent: 1, delivered: 1, opens: 2, unique_opens: 1, clicks: 1, unique_clicks: 1, open_rate: 1, click_rate: 1 },
    ]);
    // Whole UTC days: a window inside Wednesday selects all of Wednesday.
    const wednesday = await get('/v1/reports/engagement?from=2025-03-05T10:00:00Z&to=2025-03-05T11:00:00Z');
    expect(wednesday.json.data.map((b: any) => [b.period, b.unique_opens])).toEqual([['2025-03-05T00:00:00.000Z', 3]]);
  });

  it('ranks templates by sent, then name; excludes untemplated sends; asymmetric rate denominators', async () => {
    const res = await get(`/v1/reports/template-performance?${WINDOW}`);
    expect(res.status).toBe(200);
    expect(res.json.data).toEqual([
      // Digest and Welcome tie on sent: name ascending breaks it. Inline templates: no id, no version.
      { template_id: null, version: null, template: 'Digest', sent: 6, delivered: 6, opens: 3, unique_opens: 3, clicks: 1, unique_clicks: 1, bounced: 0, complained: 0, bounce_rate: 0, complaint_rate: 0, open_rate: 0.5, click_rate: 1 / 6 },
      { template_id: null, version: null, template: 'Welcome', sent: 6, delivered: 5, opens: 7, unique_opens: 4, clicks: 3, unique_clicks: 2, bounced: 1, complained: 1, bounce_rate: 1 / 6, complaint_rate: 1 / 6, open_rate: 0.8, click_rate: 0.4 },
      // Nothing delivered: engagement rates are 0, not null.
      { template_id: null, version: null, template: 'Promo', sent: 1, delivered: 0, opens: 0, unique_opens: 0, clicks: 0, unique_clicks: 0, bounced: 1, complained: 0, bounce_rate: 1, complaint_rate: 0, open_rate: 0, click_rate: 0 },
    ]);
    // Only the late open on 2025-03-10: every denominator is 0.
    const late = await get('/v1/reports/template-performance?from=2025-03-10T00:00:00Z&to=2025-03-10T23:00:00Z');
    expect(late.json.data).toEqual([
      { template_id: null, version: null, template: 'Digest', sent: 0, delivered: 0, opens: 1, unique_opens: 1, clicks: 0, unique_clicks: 0, bounced: 0, complained: 0, bounce_rate: 0, complaint_rate: 0, open_rate: 0, click_rate: 0 },
    ]);
  });

  it('filters by template case-insensitively and exactly; no match is 200 with no rows', async () => {
    for (const name of ['welcome', 'WELCOME', 'Welcome']) {
      const res = await get(`/v1/reports/template-performance?${WINDOW}&template=${name}`);
      expect(res.status).toBe(200);
      expect(res.json.data.map((r: any) => [r.template, r.sent])).toEqual([['Welcome', 6]]);
    }
    for (const name of ['Welc', 'Welcome%20', 'nothing']) {
      const res = await get(`/v1/reports/template-performance?${WINDOW}&template=${name}`);
      expect(res.status).toBe(200);
      expect(res.json.data).toEqual([]);
    }
  });

  it('needs reports.view, refuses the unsupported channel filter, a malformed identity and a bad group_by with 422', async () => {
    const noScope = await tenantWithToken(database.db, ['messages.view']);
    for (const path of ['/v1/reports/deliverability', '/v1/reports/engagement', '/v1/reports/template-performance']) {
      const denied = await get(path, noScope.token);
      expect(denied.status, path).toBe(403);
      expect(denied.json.detail).toContain('reports.view');
      expect((await call(api.baseUrl, 'GET', path)).status, path).toBe(401);
      for (const filter of ['channel=transactional', 'identity=not%20a%20domain']) {
        const res = await get(`${path}?${filter}`);
        expect(res.status, `${path}?${filter}`).toBe(422);
        expect(res.json.error).toBe('validation_failed');
        expect(res.json.message).toContain(filter.split('=')[0]);
      }
      const from = await get(`${path}?from=yesterday`);
      expect(from.status, path).toBe(422);
      expect(from.json).toMatchObject({ error: 'validation_failed', message: expect.stringContaining('from') });
    }
    for (const path of ['/v1/reports/deliverability', '/v1/reports/engagement']) {
      const groupBy = await get(`${path}?group_by=year`);
      expect(groupBy.status, path).toBe(422);
      expect(groupBy.json).toMatchObject({ error: 'validation_error', message: expect.stringContaining('group_by') });
    }
  });

  it("keeps other tenants' events out", async () => {
    const stranger = await tenantWithToken(database.db, ['reports.view']);
    expect((await get(`/v1/reports/engagement?${WINDOW}`, stranger.token)).json.data).toEqual([]);
    expect((await get(`/v1/reports/template-performance?${WINDOW}`, stranger.token)).json.data).toEqual([]);
  });
});
