import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let database: TestDatabase;
let api: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url, { SEND_RATE_PER_SECOND: '25', GUARDRAIL_WINDOW_DAYS: '7' });
});
afterAll(async () => {
  await api?.close();
  await database?.drop();
});

/** Records `count` send events `hoursAgo` hours ago through the event trigger, as the dispatcher would. */
async function sends(tenantId: string, count: number, hoursAgo: number) {
  await database.db.query(
    `WITH m AS (
       INSERT INTO messages (id, tenant_id, recipient, status)
       SELECT gen_random_uuid(), $1, 'r' || g || '@example.com', 'sent' FROM generate_series(1, $2) g
       RETURNING id, tenant_id
     )
     INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, recorded_at)
     SELECT gen_random_uuid(), tenant_id, id, 'send', now() - make_interval(hours => $3), now() - make_interval(hours => $3) FROM m`,
    [tenantId, count, hoursAgo],
  );
}

describe('GET /v1/account', () => {
  it('snapshots the tenant: 24 h sends from the hourly roll-up, send rate, API limit and guardrail state', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['org.view'], 'Acme');
    await sends(tenantId, 3, 0);
    await sends(tenantId, 2, 5);
    await sends(tenantId, 4, 30); // outside the 24 hours, inside the guardrail's 7 days
    await database.db.query(`UPDATE tenant_event_counters SET complained = 1, hard_bounced = 2 WHERE tenant_id = $1 AND day = (now() AT TIME ZONE 'UTC')::date`, [tenantId]);
    const other = await tenantWithToken(database.db, ['org.view']);
    await sends(other.tenantId, 50, 1);

    const res = await call(api.baseUrl, 'GET', '/v1/account', { token });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('max-age=60');
    const body = res.json;
    expect(body.org).toMatchObject({ id: tenantId, name: 'Acme' });
    expect(body.send_quota).toEqual({ max_24_hour: null, max_send_rate: 25, sent_last_24_hours: 5 });
    expect(body.plan).toMatchObject({ tier: 'self-hosted', api_rate_limit_per_minute: 600, send_rate_limit_per_minute: 300_000 });
    expect(body.guardrail).toMatchObject({ newsletters_paused: false, window_days: 7, sent: 9 });
    expect(body.guardrail.complaint_rate).toBeCloseTo(1 / 9);
    expect(body.guardrail.hard_bounce_rate).toBeCloseTo(2 / 9);
    expect(body).toMatchObject({ transport: { kind: 'capture' }, aws: null, production_access: null, cloudformation: null });
  });

  it('shows a paused tenant, a tenant rate over the default, and needs org.view', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['org.view']);
    await database.db.query(
      `UPDATE tenants SET newsletter_paused_at = now(), newsletter_pause_reason = 'complaint rate too high', max_send_rate = 3.5 WHERE id = $1`,
      [tenantId],
    );
    const res = await call(api.baseUrl, 'GET', '/v1/account', { token });
    expect(res.json.guardrail).toMatchObject({ newsletters_paused: true, reason: 'complaint rate too high', sent: 0, complaint_rate: 0 });
    expect(res.json.send_quota).toMatchObject({ max_send_rate: 3.5, sent_last_24_hours: 0 });

    const noScope = await tenantWithToken(database.db, ['messages.view']);
    const refused = await call(api.baseUrl, 'GET', '/v1/account', { token: noScope.token });
    expect(refused.status).toBe(403);
    expect(refused.json.detail).toContain('org.view');
  });
});
