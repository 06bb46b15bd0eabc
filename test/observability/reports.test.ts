import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    const noScope = await tenantWithToken(database.db, ['messages.view']);
    expect((await call(api.baseUrl, 'GET', '/v1/reports/deliverability', { token: noScope.token })).status).toBe(403);
  });
});
