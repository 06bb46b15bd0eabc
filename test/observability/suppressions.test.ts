import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
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

describe('suppressions', () => {
  it('add and remove need suppressions.manage, are audited with who and why, and stay within the tenant', async () => {
    const { tenantId, token: viewer } = await tenantWithToken(database.db, ['suppressions.view']);
    const manager = await createApiKey(database.db, tenantId, ['suppressions.view', 'suppressions.manage'], { environment: 'live' });

    const denied = await call(api.baseUrl, 'POST', '/v1/suppressions', { token: viewer, body: { email: 'x@example.com' } });
    expect(denied.status).toBe(403);
    expect(denied.json.detail).toContain('suppressions.manage');

    const added = await call(api.baseUrl, 'POST', '/v1/suppressions', { token: manager.secret, body: { email: 'Dan@Example.com', reason: 'manual', comment: 'asked by phone' } });
    expect(added.status).toBe(201);
    expect(added.json).toMatchObject({ email: 'dan@example.com', reason: 'manual', source: 'api' });
    const again = await call(api.baseUrl, 'POST', '/v1/suppressions', { token: manager.secret, body: { email: 'dan@example.com' } });
    expect(again.status).toBe(200);

    const got = await call(api.baseUrl, 'GET', '/v1/suppressions/DAN%40example.com', { token: viewer });
    expect(got.status).toBe(200);
    expect(got.json.email).toBe('dan@example.com');

    // Another tenant sees nothing and cannot remove it.
    const other = await createApiKey(database.db, (await tenantWithToken(database.db)).tenantId, ['suppressions.view', 'suppressions.manage'], { environment: 'live' });
    expect((await call(api.baseUrl, 'GET', '/v1/suppressions/dan%40example.com', { token: other.secret })).status).toBe(404);
    expect((await call(api.baseUrl, 'DELETE', '/v1/suppressions/dan%40example.com', { token: other.secret })).status).toBe(404);
    expect((await call(api.baseUrl, 'GET', '/v1/suppressions', { token: other.secret })).json.data).toEqual([]);

    expect((await call(api.baseUrl, 'DELETE', '/v1/suppressions/dan%40example.com', { token: viewer })).status).toBe(403);
    const removed = await call(api.baseUrl, 'DELETE', '/v1/suppressions/dan%40example.com?comment=confirmed%20valid', { token: manager.secret });
    expect(removed.status).toBe(200);
    expect((await call(api.baseUrl, 'GET', '/v1/suppressions/dan%40example.com', { token: viewer })).status).toBe(404);
    expect((await call(api.baseUrl, 'DELETE', '/v1/suppressions/dan%40example.com', { token: manager.secret })).status).toBe(404);

    const audit = await call(api.baseUrl, 'GET', '/v1/suppressions/dan%40example.com/audit', { token: viewer });
    expect(audit.json.data).toEqual([
      expect.objectContaining({ action: 'added', actor: `api_key:${manager.key_id}`, reason: 'manual', comment: 'asked by phone' }),
      expect.objectContaining({ action: 'removed', actor: `api_key:${manager.key_id}`, comment: 'confirmed valid' }),
    ]);
  });

  it('lists newest first with cursor pages, filters by reason and email substring, and refuses bad input with 4xx', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['suppressions.view']);
    await database.db.query(
      `INSERT INTO suppressions (tenant_id, email, reason, source, created_at)
       SELECT $1, 'user' || g || '@example.com', CASE WHEN g % 3 = 0 THEN 'complaint' ELSE 'hard_bounce' END, 'ses', now() - g * interval '1 minute'
         FROM generate_series(1, 12) g`,
      [tenantId],
    );
    const emails: string[] = [];
    let path: string | null = '/v1/suppressions?limit=5';
    while (path) {
      const res = await call(api.baseUrl, 'GET', path, { token });
      expect(res.status).toBe(200);
      emails.push(...res.json.data.map((s: any) => s.email));
      const link = res.headers.get('link');
      path = link ? link.slice(1, link.indexOf('>')) : null;
    }
    expect(emails).toEqual(Array.from({ length: 12 }, (_, i) => `user${i + 1}@example.com`));
    const complaints = await call(api.baseUrl, 'GET', '/v1/suppressions?reason=COMPLAINT', { token });
    expect(complaints.json.data).toHaveLength(4);
    expect(complaints.json.data[0]).toMatchObject({ reason: 'complaint', source: 'ses_event' });
    const search = await call(api.baseUrl, 'GET', '/v1/suppressions?email=USER1&limit=1', { token });
    expect(search.json.data.map((s: any) => s.email).sort()).toEqual(['user10@example.com', 'user11@example.com', 'user12@example.com', 'user1@example.com']);
    expect(search.json.pagination.has_more).toBe(false);
    // A stale cursor falls back to page 1 (the reference's rule for this list).
    expect((await call(api.baseUrl, 'GET', '/v1/suppressions?cursor=garbage', { token })).status).toBe(200);

    const manager = await createApiKey(database.db, tenantId, ['suppressions.manage'], { environment: 'live' });
    const notAnAddress = await call(api.baseUrl, 'POST', '/v1/suppressions', { token: manager.secret, body: { email: 'not-an-address' } });
    expect(notAnAddress.status).toBe(422);
    expect(notAnAddress.json).toMatchObject({ error: 'validation_error', message: expect.stringContaining('email') });
    const malformed = await call(api.baseUrl, 'POST', '/v1/suppressions', { token: manager.secret, rawBody: '{"email":' });
    expect(malformed.status).toBe(400);
    expect(malformed.json.error).toBe('bad_request');
    const from = await call(api.baseUrl, 'GET', '/v1/suppressions?from=nonsense', { token });
    expect(from.status).toBe(422);
    expect(from.json).toMatchObject({ error: 'validation_failed', message: expect.stringContaining('from') });
  });
});
