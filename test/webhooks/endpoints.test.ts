import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBHOOK_EVENT_TYPES, DELIVERY_STATUSES } from '../../src/webhooks/event-types.ts';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let database: TestDatabase;
let api: TestApp;
let token: string;
let tenantId: string;
let otherToken: string;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url);
  ({ token, tenantId } = await tenantWithToken(database.db));
  otherToken = (await tenantWithToken(database.db)).token;
});
afterAll(async () => {
  await api?.close();
  await database?.drop();
});

const endpointCount = async () => (await database.db.query('SELECT count(*)::int AS n FROM webhook_endpoints')).rows[0].n;

describe('webhook endpoints API', () => {
  it('registers an endpoint, shows its whsec_ secret once, stores it encrypted', async () => {
    const res = await call(api.baseUrl, 'POST', '/v1/webhook-endpoints', {
      token,
      body: { url: 'https://hooks.acme.example/send-engine', event_types: ['subscription.unsubscribed', 'message.bounced'], description: 'Member Center' },
    });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      url: 'https://hooks.acme.example/send-engine', event_types: ['subscription.unsubscribed', 'message.bounced'],
      description: 'Member Center', status: 'enabled', disabled_reason: null,
    });
    expect(res.json.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(res.json.secret.slice(6), 'base64')).toHaveLength(32);

    const stored = (await database.db.query('SELECT secret_enc FROM webhook_endpoints WHERE id = $1', [res.json.id])).rows[0].secret_enc as Buffer;
    expect(stored.includes(Buffer.from(res.json.secret))).toBe(false);
    expect(stored.includes(Buffer.from(res.json.secret.slice(6), 'base64'))).toBe(false);

    const one = await call(api.baseUrl, 'GET', `/v1/webhook-endpoints/${res.json.id}`, { token });
    expect(one.status).toBe(200);
    expect(one.json.id).toBe(res.json.id);
    expect(one.json).not.toHaveProperty('secret');
  });

  it('answers 404 for another tenant\'s endpoint on every route, and changes nothing', async () => {
    const mine = (await call(api.baseUrl, 'POST', '/v1/webhook-endpoints', { token, body: { url: 'https://a.example/h' } })).json;
    for (const [method, path, body] of [
      ['GET', `/v1/webhook-endpoints/${mine.id}`],
      ['PATCH', `/v1/webhook-endpoints/${mine.id}`, { status: 'disabled' }],
      ['DELETE', `/v1/webhook-endpoints/${mine.id}`],
      ['POST', `/v1/webhook-endpoints/${mine.id}/rotate-secret`],
      ['GET', `/v1/webhook-endpoints/${mine.id}/deliveries`],
    ] as const) {
      const res = await call(api.baseUrl, method, path, { token: otherToken, body });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.json).toMatchObject({ error: 'not_found', request_id: res.headers.get('x-request-id') });
    }
    const still = (await call(api.baseUrl, 'GET', `/v1/webhook-endpoints/${mine.id}`, { token })).json;
    expect(still.status).toBe('enabled');
    expect(still.updated_at).toBe(mine.updated_at);
    const list = await call(api.baseUrl, 'GET', '/v1/webhook-endpoints', { token: otherToken });
    expect(list.json.data).toEqual([]);
  });

  it('refuses http://, private and metadata addresses and unknown event types with 422, writing nothing', async () => {
    const before = await endpointCount();
    for (const [url, code] of [
      ['http://hooks.acme.example/x', 'invalid_url'],
      ['https://127.0.0.1/x', 'invalid_url'],
      ['https://10.1.2.3/x', 'invalid_url'],
      ['https://169.254.169.254/latest/meta-data', 'invalid_url'],
      ['https://[::1]/x', 'invalid_url'],
      ['https://user:pw@hooks.acme.example/x', 'invalid_url'],
      ['not a url', 'invalid_url'],
    ]) {
      const res = await call(api.baseUrl, 'POST', '/v1/webhook-endpoints', { token, body: { url } });
      expect(res.status, url).toBe(422);
      expect(res.json.error, url).toBe(code);
    }
    const bad = await call(api.baseUrl, 'POST', '/v1/webhook-endpoints', { token, body: { url: 'https://a.example/h', event_types: ['message.exploded'] } });
    expect(bad.status).toBe(422);
    expect(bad.json.error).toBe('validation_error');
    expect(await endpointCount()).toBe(before);
  });

  it('needs the webhooks.manage scope', async () => {
    const { token: readOnly } = await tenantWithToken(database.db, ['messages.view']);
    const res = await call(api.baseUrl, 'POST', '/v1/webhook-endpoints', { token: readOnly, body: { url: 'https://a.example/h' } });
    expect(res.status).toBe(403);
    expect(res.json.error).toBe('permission_denied');
    expect(res.json.message).toContain('webhooks.manage');
  });

  it('patches, disables with a reason, re-enables, pages the list and deletes', async () => {
    const { token: t } = await tenantWithToken(database.db);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await call(api.baseUrl, 'POST', '/v1/webhook-endpoints', { token: t, body: { url: `https://h${i}.example/x` } })).json.id);

    const patched = await call(api.baseUrl, 'PATCH', `/v1/webhook-endpoints/${ids[0]}`, { token: t, body: { url: 'https://new.example/y', event_types: ['send_job.completed'], description: 'jobs' } });
    expect(patched.status).toBe(200);
    expect(patched.json).toMatchObject({ url: 'https://new.example/y', event_types: ['send_job.completed'], description: 'jobs', status: 'enabled' });
    const disabled = await call(api.baseUrl, 'PATCH', `/v1/webhook-endpoints/${ids[0]}`, { token: t, body: { status: 'disabled' } });
    expect(disabled.json).toMatchObject({ status: 'disabled', disabled_reason: 'disabled by request' });
    const all = await call(api.baseUrl, 'PATCH', `/v1/webhook-endpoints/${ids[0]}`, { token: t, body: { status: 'enabled', event_types: null } });
    expect(all.json).toMatchObject({ status: 'enabled', disabled_reason: null, event_types: null });
    const refused = await call(api.baseUrl, 'PATCH', `/v1/webhook-endpoints/${ids[0]}`, { token: t, body: { url: 'http://plain.example/' } });
    expect(refused.status).toBe(422);
    expect((await call(api.baseUrl, 'GET', `/v1/webhook-endpoints/${ids[0]}`, { token: t })).json.url).toBe('https://new.example/y');

    const first = await call(api.baseUrl, 'GET', '/v1/webhook-endpoints?limit=2', { token: t });
    expect(first.json.data.map((e: { id: string }) => e.id)).toEqual([ids[2], ids[1]]);
    expect(first.json.pagination.has_more).toBe(true);
    const second = await call(api.baseUrl, 'GET', `/v1/webhook-endpoints?limit=2&cursor=${first.json.pagination.next_cursor}`, { token: t });
    expect(second.json.data.map((e: { id: string }) => e.id)).toEqual([ids[0]]);
    expect(second.json.pagination).toEqual({ has_more: false, next_cursor: null });

    expect((await call(api.baseUrl, 'DELETE', `/v1/webhook-endpoints/${ids[1]}`, { token: t })).status).toBe(204);
    expect((await call(api.baseUrl, 'GET', `/v1/webhook-endpoints/${ids[1]}`, { token: t })).status).toBe(404);
  });

  it('rotates the secret: a new one, the old one valid for 24 h more', async () => {
    const created = (await call(api.baseUrl, 'POST', '/v1/webhook-endpoints', { token, body: { url: 'https://r.example/h' } })).json;
    const rotated = await call(api.baseUrl, 'POST', `/v1/webhook-endpoints/${created.id}/rotate-secret`, { token });
    expect(rotated.status).toBe(200);
    expect(rotated.json.secret).toMatch(/^whsec_/);
    expect(rotated.json.secret).not.toBe(created.secret);
    const grace = Date.parse(rotated.json.previous_secret_expires_at) - Date.now();
    expect(grace).toBeGreaterThan(23.9 * 3600_000);
    expect(grace).toBeLessThanOrEqual(24 * 3600_000);
  });

  it('declares the event vocabulary once: the SQL CHECK mirrors the TypeScript list, and routes are in /openapi.json', async () => {
    const sql = (await database.db.query('SELECT webhook_event_types() AS t')).rows[0].t;
    expect(sql).toEqual([...WEBHOOK_EVENT_TYPES]);
    await expect(database.db.query(`INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, status, secret_enc) VALUES (gen_random_uuid(), $1, 'https://x', '{message.exploded}', 'enabled', '\\x01')`, [tenantId]))
      .rejects.toThrow(/check constraint/);
    const check = (await database.db.query(`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'webhook_deliveries_status_check'`)).rows[0].def;
    for (const s of DELIVERY_STATUSES) expect(check).toContain(`'${s}'`);
    const spec = (await call(api.baseUrl, 'GET', '/openapi.json')).json;
    for (const path of ['/v1/webhook-endpoints', '/v1/webhook-endpoints/{id}', '/v1/webhook-endpoints/{id}/rotate-secret', '/v1/webhook-endpoints/{id}/deliveries', '/v1/webhook-deliveries/{id}/retry']) {
      expect(spec.paths[path], path).toBeDefined();
    }
  });
});
