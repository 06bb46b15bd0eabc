import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let database: TestDatabase;
let api: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url);
});
afterAll(async () => {
  await api?.close();
  await database?.drop();
});

const WINDOW = 'from=2025-03-01T00:00:00Z&to=2025-03-31T00:00:00Z';

/**
 * Two identities of one tenant (a proxy send from news.example.test, a list send job "Digest" from
 * shop.example.test), events inserted through message_events so the identity roll-up trigger counts them.
 */
describe('reports filtered by identity', () => {
  let token: string;

  beforeAll(async () => {
    const db = database.db;
    const tenant = await tenantWithToken(db, ['reports.view']);
    token = tenant.token;
    const { tenantId } = tenant;
    const listId = newId();
    const campaignId = newId();
    const proxyJob = newId();
    const sendJob = newId();
    await db.query('INSERT INTO lists (tenant_id, id) VALUES ($1, $2)', [tenantId, listId]);
    await db.query('INSERT INTO campaigns (id, tenant_id) VALUES ($1, $2)', [campaignId, tenantId]);
    await db.query(
      `INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, idempotency_key)
       VALUES ($1, $2, 'transactional', 'Hello@News.Example.test', 's', 'h', 't', 'k1')`,
      [proxyJob, tenantId],
    );
    await db.query(
      `INSERT INTO send_jobs (id, tenant_id, list_id, campaign_id, name, from_address, template, scheduled_at, status)
       VALUES ($1, $2, $3, $4, 'Digest', 'deals@shop.example.test', '{}', now(), 'completed')`,
      [sendJob, tenantId, listId, campaignId],
    );
    const message = async (proxy: string | null, job: string | null, recipient: string) => {
      const id = newId();
      await db.query(`INSERT INTO messages (id, tenant_id, proxy_job_id, send_job_id, recipient, status) VALUES ($1, $2, $3, $4, $5, 'sent')`, [id, tenantId, proxy, job, recipient]);
      return id;
    };
    const n1 = await message(proxyJob, null, 'a@inbox.example');
    const n2 = await message(proxyJob, null, 'b@inbox.example');
    const s1 = await message(null, sendJob, 'a@inbox.example');
    const arrive = (at: string, events: Array<[string, string, object?]>) =>
      db.query(
        `INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, recorded_at, data)
         SELECT gen_random_uuid(), $1, e.m, e.t, $2, $2, e.d::jsonb FROM unnest($3::uuid[], $4::text[], $5::text[]) AS e(m, t, d)`,
        [tenantId, at, events.map((e) => e[0]), events.map((e) => e[1]), events.map((e) => JSON.stringify(e[2] ?? {}))],
      );
    await arrive('2025-03-03T08:00:00Z', [[n1, 'send'], [n2, 'send'], [s1, 'send'], [n1, 'delivery'], [n2, 'bounce', { bounce_class: 'hard' }], [s1, 'delivery']]);
    // Two opens by the same recipient in two statements: one unique.
    await arrive('2025-03-03T09:00:00Z', [[s1, 'open']]);
    await arrive('2025-03-03T10:00:00Z', [[s1, 'open'], [n1, 'open']]);
  });

  const get = async (path: string) => {
    const res = await call(api.baseUrl, 'GET', path, { token });
    expect(res.status, res.text).toBe(200);
    return res.json.data;
  };

  it('deliverability counts only the identity\'s mail; an address counts by its domain, case-insensitively', async () => {
    const news = { period: '2025-03-03T00:00:00.000Z', sent: 2, delivered: 1, bounced: 1, complained: 0, suppressed: 0, delivery_rate: 0.5 };
    expect(await get(`/v1/reports/deliverability?${WINDOW}&identity=news.example.test`)).toEqual([news]);
    expect(await get(`/v1/reports/deliverability?${WINDOW}&identity=${encodeURIComponent('someone@NEWS.example.test')}`)).toEqual([news]);
    expect(await get(`/v1/reports/deliverability?${WINDOW}&identity=shop.example.test`)).toEqual([
      { period: '2025-03-03T00:00:00.000Z', sent: 1, delivered: 1, bounced: 0, complained: 0, suppressed: 0, delivery_rate: 1 },
    ]);
    expect(await get(`/v1/reports/deliverability?${WINDOW}&identity=nothing.example.test`)).toEqual([]);
    // Without the filter: everything, as before.
    expect((await get(`/v1/reports/deliverability?${WINDOW}`))[0]).toMatchObject({ sent: 3, delivered: 2 });
  });

  it('engagement and template performance honour it too, with uniques per identity', async () => {
    expect(await get(`/v1/reports/engagement?${WINDOW}&identity=shop.example.test`)).toEqual([
      { period: '2025-03-03T00:00:00.000Z', sent: 1, delivered: 1, opens: 2, unique_opens: 1, clicks: 0, unique_clicks: 0, open_rate: 1, click_rate: 0 },
    ]);
    expect((await get(`/v1/reports/engagement?${WINDOW}&identity=news.example.test`))[0]).toMatchObject({ opens: 1, unique_opens: 1, delivered: 1 });
    expect(await get(`/v1/reports/template-performance?${WINDOW}&identity=shop.example.test`)).toEqual([
      expect.objectContaining({ template: 'Digest', sent: 1, delivered: 1, opens: 2, unique_opens: 1, bounced: 0 }),
    ]);
    // The proxy sends of news.example.test have no template.
    expect(await get(`/v1/reports/template-performance?${WINDOW}&identity=news.example.test`)).toEqual([]);
  });
});
