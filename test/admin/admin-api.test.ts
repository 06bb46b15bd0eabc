import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '../../src/index.ts';
import { call, startTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

/** The operator's API: tenants, API keys and webhook clients over HTTP, behind ADMIN_TOKEN. */
const ADMIN = 'admin-token-for-tests-0123456789abcdef';
let database: TestDatabase;
let t: TestApp;
let off: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  t = await startTestApp(database.db, database.url, { ADMIN_TOKEN: ADMIN });
  off = await startTestApp(database.db, database.url);
});
afterAll(async () => {
  await t?.close();
  await off?.close();
  await database?.drop();
});

const admin = (method: string, path: string, body?: unknown, token = ADMIN) => call(t.baseUrl, method, path, { token, body });

describe('admin API', () => {
  it('refuses without the operator token, with a wrong one, with a tenant key, and when ADMIN_TOKEN is unset', async () => {
    expect((await call(t.baseUrl, 'GET', '/v1/admin/tenants')).json.error).toBe('unauthorized');
    expect((await admin('GET', '/v1/admin/tenants', undefined, `${ADMIN}x`)).status).toBe(401);
    const created = await admin('POST', '/v1/admin/tenants', { name: 'Acme' });
    const asTenant = await admin('GET', '/v1/admin/tenants', undefined, created.json.token);
    expect(asTenant.status).toBe(401);
    const disabled = await call(off.baseUrl, 'GET', '/v1/admin/tenants', { token: ADMIN });
    expect(disabled.status).toBe(403);
    expect(disabled.json.error).toBe('admin_disabled');
    const before = await database.db.query('SELECT count(*)::int AS n FROM tenants');
    await call(off.baseUrl, 'POST', '/v1/admin/tenants', { token: ADMIN, body: { name: 'nope' } });
    expect((await database.db.query('SELECT count(*)::int AS n FROM tenants')).rows[0].n).toBe(before.rows[0].n);
  });

  it('tenants: create (its key works), list, get, update, pause and resume sending', async () => {
    const created = await admin('POST', '/v1/admin/tenants', { name: 'Beta', max_send_rate: 50 });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: 'Beta', max_send_rate: 50, sending_paused: false });
    const id = created.json.id;
    // The key it answers is a working credential of the new tenant.
    const account = await call(t.baseUrl, 'GET', '/v1/account', { token: created.json.token });
    expect(account.status).toBe(200);
    expect((await admin('GET', `/v1/admin/tenants/${id}`)).json.name).toBe('Beta');
    expect((await admin('PATCH', `/v1/admin/tenants/${id}`, { name: 'Beta 2', max_send_rate: null })).json).toMatchObject({ name: 'Beta 2', max_send_rate: null });
    const paused = await admin('POST', `/v1/admin/tenants/${id}/pause-sending`, { reason: 'abuse report' });
    expect(paused.json).toMatchObject({ sending_paused: true, sending_pause_reason: 'operator: abuse report' });
    expect((await admin('POST', `/v1/admin/tenants/${id}/resume-sending`)).json.sending_paused).toBe(false);
    const page = await admin('GET', '/v1/admin/tenants?limit=1');
    expect(page.json.data).toHaveLength(1);
    expect(page.json.pagination.has_more).toBe(true);
    const unknown = await admin('GET', '/v1/admin/tenants/01890000-0000-7000-8000-000000000000');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toBe('not_found');
  });

  it('API keys: create with scopes, list without secrets, rotate, revoke; another tenant\'s key is 404', async () => {
    const a = (await admin('POST', '/v1/admin/tenants', { name: 'Keys' })).json.id;
    const b = (await admin('POST', '/v1/admin/tenants', { name: 'Other' })).json.id;
    const key = await admin('POST', `/v1/admin/tenants/${a}/api-keys`, { scopes: ['messages.view'], environment: 'test', name: 'ci' });
    expect(key.status).toBe(201);
    expect(key.json).toMatchObject({ scopes: ['messages.view'], environment: 'test' });
    expect(key.json.secret).toMatch(/^se_test_/);
    const bad = await admin('POST', `/v1/admin/tenants/${a}/api-keys`, { scopes: ['root'] });
    expect(bad.status).toBe(422);
    const listed = await admin('GET', `/v1/admin/tenants/${a}/api-keys`);
    expect(listed.text).not.toContain(key.json.secret);
    expect(listed.json.data.map((k: any) => k.key_id)).toContain(key.json.key_id);

    expect((await admin('POST', `/v1/admin/tenants/${b}/api-keys/${key.json.key_id}/rotate`)).status).toBe(404);
    expect((await admin('POST', `/v1/admin/tenants/${b}/api-keys/${key.json.key_id}/revoke`)).status).toBe(404);
    const rotated = await admin('POST', `/v1/admin/tenants/${a}/api-keys/${key.json.key_id}/rotate`);
    expect(rotated.json.old_key_expires_at).toBeTruthy();
    expect(rotated.json.secret).not.toBe(key.json.secret);
    expect((await admin('POST', `/v1/admin/tenants/${a}/api-keys/${rotated.json.key_id}/revoke`)).status).toBe(204);
    const after = await admin('GET', `/v1/admin/tenants/${a}/api-keys`);
    expect(after.json.data.find((k: any) => k.key_id === rotated.json.key_id).revoked_at).not.toBeNull();
    const r = await call(t.baseUrl, 'GET', '/v1/messages', { token: rotated.json.secret });
    expect(r.status).toBe(401);
  });

  it('webhook clients: register (signs a real webhook), list, rotate, retire; another tenant\'s client is 404', async () => {
    const a = (await admin('POST', '/v1/admin/tenants', { name: 'MC' })).json.id;
    const b = (await admin('POST', '/v1/admin/tenants', { name: 'MC2' })).json.id;
    const client = await admin('POST', `/v1/admin/tenants/${a}/webhook-clients`);
    expect(client.status).toBe(201);
    const event = JSON.stringify({
      event_id: crypto.randomUUID(), event_type: 'subscription.activated', tenant_id: a, list_id: crypto.randomUUID(),
      subscriber: { id: crypto.randomUUID(), email: 'x@mc.test', status: 'active' }, occurred_at: new Date().toISOString(),
    });
    const signed = await call(t.baseUrl, 'POST', '/webhooks/subscriptions', { rawBody: event, headers: { ...signWebhook({ clientId: client.json.client_id, secret: client.json.secret, body: event }) } });
    expect(signed.status).toBe(200);
    expect((await admin('POST', `/v1/admin/tenants/${b}/webhook-clients/${client.json.client_id}/rotate`)).status).toBe(404);
    const rotated = await admin('POST', `/v1/admin/tenants/${a}/webhook-clients/${client.json.client_id}/rotate`);
    expect(rotated.json.secret).not.toBe(client.json.secret);
    expect((await admin('GET', `/v1/admin/tenants/${a}/webhook-clients`)).json.data[0]).toMatchObject({ client_id: client.json.client_id, rotating: true });
    expect((await admin('POST', `/v1/admin/tenants/${a}/webhook-clients/${client.json.client_id}/retire`)).status).toBe(204);
    const listed = await admin('GET', `/v1/admin/tenants/${a}/webhook-clients`);
    expect(listed.json.data[0].rotating).toBe(false);
    expect(listed.text).not.toContain('whsec_');
  });
});
