import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeWebhookSignature, signWebhook } from '../../src/index.ts';
import { retireOldSecret, rotateWebhookSecret } from '../../src/lists/webhook-clients.ts';
import { call, startTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { memberCenter, person } from './helpers.ts';

let database: TestDatabase;
let api: TestApp;
let mc: Awaited<ReturnType<typeof memberCenter>>;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url);
  mc = await memberCenter(database.db, api.baseUrl);
});
afterAll(async () => {
  await api.close();
  await database.drop();
});

const eventBody = (overrides: Record<string, unknown> = {}) => ({
  event_id: randomUUID(),
  event_type: 'subscription.activated',
  tenant_id: mc.tenantId,
  list_id: mc.listId,
  subscriber: person(1),
  occurred_at: new Date().toISOString(),
  ...overrides,
});

async function eventCount() {
  const { rows } = await database.db.query('SELECT count(*)::int AS n FROM subscription_events WHERE tenant_id = $1', [mc.tenantId]);
  return rows[0].n as number;
}

function expectError(res: { status: number; json: any; headers: Headers }, status: number, code?: string) {
  expect(res.status).toBe(status);
  expect(res.json.request_id).toBe(res.headers.get('x-request-id'));
  expect(typeof res.json.message).toBe('string');
  if (code) expect(res.json.error).toBe(code);
}

describe('signWebhook', () => {
  it('is HMAC-SHA256 over "timestamp.nonce.body" with the secret, hex, v1= prefixed', () => {
    // Reference value from OpenSSL: printf '1700000000.abcdefgh.{}' | openssl dgst -sha256 -hmac whsec_test
    expect(computeWebhookSignature('whsec_test', 1700000000, 'abcdefgh', '{}')).toBe('8649a1e1117aa88f2c49b010ee1dc0e3a72a011f1250f8fb51f8f47cb1d322e8');
    expect(computeWebhookSignature('whsec_test', '1700000000', 'abcdefgh', Buffer.from('{}'))).toBe('8649a1e1117aa88f2c49b010ee1dc0e3a72a011f1250f8fb51f8f47cb1d322e8');
    const headers = signWebhook({ clientId: 'c', secret: ['a', 'b'], body: '{}', timestamp: 1700000000, nonce: 'abcdefgh' });
    expect(headers['X-Timestamp']).toBe('1700000000');
    expect(headers['X-Signature']).toBe(
      `v1=${computeWebhookSignature('a', 1700000000, 'abcdefgh', '{}')},v1=${computeWebhookSignature('b', 1700000000, 'abcdefgh', '{}')}`,
    );
  });
});

describe('webhook signature verification', () => {
  it('accepts a correctly signed event', async () => {
    const res = await mc.post('/webhooks/subscriptions', eventBody());
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 'accepted', applied: true });
  });

  it('verifies the raw bytes, not re-serialised JSON', async () => {
    // Odd whitespace and key order: a verifier that re-serialised the parsed body would fail.
    const body = eventBody();
    const raw = `{ "occurred_at" : "${body.occurred_at}",\n  "event_type":"subscription.activated", "event_id": "${body.event_id}", "tenant_id":"${mc.tenantId}", "list_id":"${mc.listId}", "subscriber": ${JSON.stringify(body.subscriber, null, 3)} }`;
    const res = await mc.post('/webhooks/subscriptions', undefined, { raw });
    expect(res.status).toBe(200);
  });

  it('refuses a tampered body with 401 and records nothing', async () => {
    const before = await eventCount();
    const raw = JSON.stringify(eventBody());
    const headers = signWebhook({ clientId: mc.client.clientId, secret: mc.client.secret, body: raw });
    const tampered = raw.replace('subscription.activated', 'subscription.unsubscribed');
    const res = await call(api.baseUrl, 'POST', '/webhooks/subscriptions', { rawBody: tampered, headers: { ...headers } });
    expectError(res, 401, 'invalid_signature');
    expect(await eventCount()).toBe(before);
  });

  it('refuses a wrong secret, an unknown client and missing headers with 401', async () => {
    expectError(await mc.post('/webhooks/subscriptions', eventBody(), { secret: 'whsec_not-the-secret' }), 401, 'invalid_signature');
    const raw = JSON.stringify(eventBody());
    const unknown = signWebhook({ clientId: randomUUID(), secret: mc.client.secret, body: raw });
    expectError(await call(api.baseUrl, 'POST', '/webhooks/subscriptions', { rawBody: raw, headers: { ...unknown } }), 401, 'invalid_signature');
    const { 'X-Signature': _omit, ...unsigned } = signWebhook({ clientId: mc.client.clientId, secret: mc.client.secret, body: raw });
    expectError(await call(api.baseUrl, 'POST', '/webhooks/subscriptions', { rawBody: raw, headers: unsigned }), 401, 'missing_signature');
    expectError(await call(api.baseUrl, 'POST', '/webhooks/subscriptions', { rawBody: raw }), 401, 'missing_signature');
    const garbage = { ...signWebhook({ clientId: mc.client.clientId, secret: mc.client.secret, body: raw }), 'X-Signature': 'v1=zz' };
    expectError(await call(api.baseUrl, 'POST', '/webhooks/subscriptions', { rawBody: raw, headers: garbage }), 401, 'invalid_signature');
  });

  it('refuses stale and future timestamps (±300 s) with 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    expectError(await mc.post('/webhooks/subscriptions', eventBody(), { timestamp: now - 301 }), 401, 'stale_timestamp');
    expectError(await mc.post('/webhooks/subscriptions', eventBody(), { timestamp: now + 301 }), 401, 'stale_timestamp');
    expect((await mc.post('/webhooks/subscriptions', eventBody(), { timestamp: now - 290 })).status).toBe(200);
    expect((await mc.post('/webhooks/subscriptions', eventBody(), { timestamp: now + 290 })).status).toBe(200);
  });

  it('refuses a replayed nonce with 401, even with a fresh signature over another body', async () => {
    const nonce = `nonce-${randomUUID()}`;
    expect((await mc.post('/webhooks/subscriptions', eventBody(), { nonce })).status).toBe(200);
    expectError(await mc.post('/webhooks/subscriptions', eventBody(), { nonce }), 401, 'replayed_nonce');
    // The exact same request replayed byte for byte.
    const raw = JSON.stringify(eventBody());
    const headers = signWebhook({ clientId: mc.client.clientId, secret: mc.client.secret, body: raw });
    expect((await call(api.baseUrl, 'POST', '/webhooks/subscriptions', { rawBody: raw, headers: { ...headers } })).status).toBe(200);
    expectError(await call(api.baseUrl, 'POST', '/webhooks/subscriptions', { rawBody: raw, headers: { ...headers } }), 401, 'replayed_nonce');
  });

  it('accepts either secret during a rotation and only the new one after retiring', async () => {
    const oldSecret = mc.client.secret;
    const rotated = await rotateWebhookSecret(database.db, mc.client.clientId);
    expect(rotated.secret).not.toBe(oldSecret);
    expect((await mc.post('/webhooks/subscriptions', eventBody(), { secret: oldSecret })).status).toBe(200);
    expect((await mc.post('/webhooks/subscriptions', eventBody(), { secret: rotated.secret })).status).toBe(200);
    // A signer sending both signatures (comma-separated) is accepted too.
    expect((await mc.post('/webhooks/subscriptions', eventBody(), { secret: [rotated.secret, oldSecret] })).status).toBe(200);
    await retireOldSecret(database.db, mc.client.clientId);
    expectError(await mc.post('/webhooks/subscriptions', eventBody(), { secret: oldSecret }), 401, 'invalid_signature');
    expect((await mc.post('/webhooks/subscriptions', eventBody(), { secret: rotated.secret })).status).toBe(200);
    mc.client.secret = rotated.secret;
  });

  it('answers 403 for another tenant in the body, 422 for schema violations (after a good signature)', async () => {
    expectError(await mc.post('/webhooks/subscriptions', eventBody({ tenant_id: randomUUID() })), 403, 'forbidden');
    expectError(await mc.post('/webhooks/lists/full-sync', { sync_id: randomUUID(), batch_no: 1, batch_total: 1, tenant_id: randomUUID(), list_id: mc.listId, subscribers: [], occurred_at: new Date().toISOString() }), 403, 'forbidden');
    expectError(await mc.post('/webhooks/subscriptions', eventBody({ event_type: 'subscription.exploded' })), 422, 'validation_error');
    expectError(await mc.post('/webhooks/subscriptions', eventBody({ subscriber: { id: 'nope', email: 'x@example.com', status: 'active' } })), 422, 'validation_error');
    expectError(await mc.post('/webhooks/subscriptions', eventBody({ occurred_at: 'yesterday' })), 422, 'validation_error');
    expectError(await mc.post('/webhooks/subscriptions', eventBody({ subscriber: { ...person(2), email: 'not an email' } })), 422, 'validation_error');
    expectError(await mc.post('/webhooks/lists/full-sync', { sync_id: randomUUID(), batch_no: 0, batch_total: 1, tenant_id: mc.tenantId, list_id: mc.listId, subscribers: [], occurred_at: new Date().toISOString() }), 422, 'validation_error');
    // An unsigned schema violation is still 401: nobody learns the schema without a secret.
    expectError(await call(api.baseUrl, 'POST', '/webhooks/subscriptions', { body: { nope: true } }), 401, 'missing_signature');
  });

  it('answers a malformed JSON body with a 4xx error body, never 500', async () => {
    const res = await mc.post('/webhooks/subscriptions', undefined, { raw: '{"event_id": ' });
    expect(res.status).toBe(400);
    expect(res.json.request_id).toBeTruthy();
  });

  it('expired nonces are purged and the nonce table does not grow without bound', async () => {
    const { purgeExpiredNonces } = await import('../../src/lists/webhook-clients.ts');
    await database.db.query(`UPDATE webhook_nonces SET expires_at = now() - interval '1 second' WHERE client_id = $1`, [mc.client.clientId]);
    expect(await purgeExpiredNonces(database.db)).toBeGreaterThan(0);
    const { rows } = await database.db.query('SELECT count(*)::int AS n FROM webhook_nonces WHERE client_id = $1', [mc.client.clientId]);
    expect(rows[0].n).toBe(0);
  });

  it('publishes the webhook and list routes in /openapi.json', async () => {
    const res = await call(api.baseUrl, 'GET', '/openapi.json');
    expect(res.status).toBe(200);
    expect(Object.keys(res.json.paths)).toEqual(expect.arrayContaining(['/webhooks/subscriptions', '/webhooks/lists/full-sync', '/api/lists/{id}']));
    const body = res.json.paths['/webhooks/lists/full-sync'].post.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(['sync_id', 'batch_no', 'batch_total', 'tenant_id', 'list_id', 'subscribers', 'occurred_at']);
  });
});
