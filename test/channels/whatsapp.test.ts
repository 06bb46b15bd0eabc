import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChannelTransports } from '../../src/channels/index.ts';
import type { ChannelTransports } from '../../src/channels/types.ts';
import { Dispatcher } from '../../src/dispatch/dispatcher.ts';
import { createLogger } from '../../src/log.ts';
import type { Transport } from '../../src/transports/transport.ts';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { until } from '../helpers/wait.ts';
import { hmacHex, startGraphEmulator, type Emulator } from './emulators.ts';

const APP_SECRET = 'meta-app-secret-0123456789abcdef';
const VERIFY = 'verify-token-0123';

let database: TestDatabase;
let graph: Emulator;
let api: TestApp;
let a: { tenantId: string; token: string };
let b: { tenantId: string; token: string };
let channels: ChannelTransports = {};
let dispatcher: Dispatcher;
const noEmail: Transport = { name: 'none', send: async () => { throw new Error('no email here'); }, close: async () => {} };

beforeAll(async () => {
  database = await createTestDatabase();
  graph = await startGraphEmulator();
  api = await startTestApp(database.db, database.url, {
    WHATSAPP_GRAPH_BASE_URL: `${graph.url}/v21.0`, WHATSAPP_APP_SECRET: APP_SECRET, WHATSAPP_VERIFY_TOKEN: VERIFY,
    WHATSAPP_PHONE_NUMBER_ID: '100200300', WHATSAPP_ACCESS_TOKEN: 'platform-token', PROVIDER_ALLOW_PRIVATE: 'true',
    DISPATCH_POLL_MS: '50', SEND_RETRY_BASE_MS: '50',
  });
  a = await tenantWithToken(database.db, undefined, 'a');
  b = await tenantWithToken(database.db, undefined, 'b');
  const logger = createLogger('silent');
  channels = createChannelTransports(api.config, database.db, logger);
  dispatcher = new Dispatcher(database.db, database.url, noEmail, api.config.dispatch, logger, undefined, undefined, channels);
  await dispatcher.start();
}, 30_000);
afterAll(async () => {
  await dispatcher?.stop();
  await Promise.all(Object.values(channels).map((c) => c.close()));
  await api?.close();
  await graph?.close();
  await database?.drop();
});

const send = (who: { token: string }, body: unknown) => call(api.baseUrl, 'POST', '/v1/whatsapp/send', { token: who.token, body });
const state = (who: { token: string }, id: string, want: string) =>
  until(async () => {
    const res = await call(api.baseUrl, 'GET', `/v1/whatsapp/${id}`, { token: who.token });
    return res.json.status === want ? res.json : undefined;
  }, 10_000, `${id} ${want}`);
const notify = (payload: unknown, secret = APP_SECRET) => {
  const raw = JSON.stringify(payload);
  return call(api.baseUrl, 'POST', '/v1/webhooks/whatsapp', { rawBody: raw, headers: { 'x-hub-signature-256': `sha256=${hmacHex(secret, raw)}` } });
};
const change = (phoneNumberId: string, value: Record<string, unknown>) => ({
  object: 'whatsapp_business_account',
  entry: [{ id: 'waba', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { phone_number_id: phoneNumberId }, ...value } }] }],
});

describe('the account line', () => {
  it('stores the token encrypted, never shows it, clears with null; a number held by another tenant is a 409', async () => {
    const before = await call(api.baseUrl, 'GET', '/v1/account/whatsapp-cloud-line', { token: a.token });
    expect(before.json).toEqual({ whatsappPhoneNumberId: null, hasAccessToken: false, usesPlatformDefault: true, platformLineConfigured: true });
    const set = await call(api.baseUrl, 'PATCH', '/v1/account/whatsapp-cloud-line', { token: a.token, body: { whatsappPhoneNumberId: '555000111', whatsappAccessToken: 'tenant-a-token' } });
    expect(set.json).toMatchObject({ whatsappPhoneNumberId: '555000111', hasAccessToken: true, usesPlatformDefault: false });
    const stored = (await database.db.query('SELECT access_token_enc FROM whatsapp_lines WHERE tenant_id = $1', [a.tenantId])).rows[0].access_token_enc;
    expect(stored).toMatch(/^v1\./);
    expect(stored).not.toContain('tenant-a-token');

    const taken = await call(api.baseUrl, 'PATCH', '/v1/account/whatsapp-cloud-line', { token: b.token, body: { whatsappPhoneNumberId: '555000111' } });
    expect(taken.status).toBe(409);
    expect(taken.json.error).toBe('WHATSAPP_PHONE_NUMBER_ID_IN_USE');
    const cleared = await call(api.baseUrl, 'PATCH', '/v1/account/whatsapp-cloud-line', { token: b.token, body: { whatsappAccessToken: null } });
    expect(cleared.json).toMatchObject({ whatsappPhoneNumberId: null, hasAccessToken: false, usesPlatformDefault: true });
  });
});

describe('sending', () => {
  it('a template message goes to /{phone-number-id}/messages with the tenant\'s token; statuses drive it to READ', async () => {
    const res = await send(a, { to: '+33612345601', type: 'template', template: { name: 'order_update', language: 'en_US', components: [{ type: 'body', parameters: [{ type: 'text', text: 'A-42' }] }] } });
    expect(res.status).toBe(202);
    const sent = await state(a, res.json.id, 'SENT');
    const req = graph.requests.at(-1)!;
    expect(req.path).toBe('/v21.0/555000111/messages');
    expect(req.headers.authorization).toBe('Bearer tenant-a-token');
    expect(JSON.parse(req.body)).toEqual({
      messaging_product: 'whatsapp', recipient_type: 'individual', to: '33612345601', type: 'template',
      template: { name: 'order_update', language: { code: 'en_US' }, components: [{ type: 'body', parameters: [{ type: 'text', text: 'A-42' }] }] },
    });
    const wamid = sent.externalId;
    const ts = String(Math.floor(Date.now() / 1000));
    const delivered = await notify(change('555000111', { statuses: [{ id: wamid, status: 'delivered', timestamp: ts, recipient_id: '33612345601' }] }));
    expect(delivered.json).toEqual({ received: 1 });
    await state(a, res.json.id, 'DELIVERED');
    await notify(change('555000111', { statuses: [{ id: wamid, status: 'read', timestamp: ts, recipient_id: '33612345601' }] }));
    await state(a, res.json.id, 'READ');
    // A late "delivered" does not move it back.
    await notify(change('555000111', { statuses: [{ id: wamid, status: 'delivered', timestamp: ts }] }));
    expect((await call(api.baseUrl, 'GET', `/v1/whatsapp/${res.json.id}`, { token: a.token })).json.status).toBe('READ');
    const timeline = await call(api.baseUrl, 'GET', `/v1/whatsapp/${res.json.id}/timeline`, { token: a.token });
    expect(timeline.json.events.map((e: { type: string }) => e.type)).toEqual(['accepted', 'send', 'delivery', 'read']);
  });

  it('a session text outside the 24 h window answers 422; an inbound message opens the window', async () => {
    const closed = await send(a, { to: '+33612345602', type: 'text', text: 'Hi there' });
    expect(closed.status).toBe(422);
    expect(closed.json.error).toBe('session_window_closed');
    const inbound = await notify(change('555000111', { contacts: [{ wa_id: '33612345602' }], messages: [{ from: '33612345602', id: 'wamid.IN1', timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: 'hello?' } }] }));
    expect(inbound.status).toBe(200);
    const open = await send(a, { to: '+33612345602', type: 'text', text: 'Hi there' });
    expect(open.status).toBe(202);
    await state(a, open.json.id, 'SENT');
    expect(JSON.parse(graph.requests.at(-1)!.body)).toMatchObject({ type: 'text', text: { body: 'Hi there' }, to: '33612345602' });
    // The window is tenant a's (its line), not b's.
    expect((await send(b, { to: '+33612345602', type: 'text', text: 'Hi' })).json.error).toBe('session_window_closed');
  });

  it('a tenant without a line of its own uses the platform default; a failed status ends FAILED with the reason', async () => {
    const res = await send(b, { to: '+33612345603', type: 'template', template: { name: 'hello_world', language: 'en_US' } });
    const sent = await state(b, res.json.id, 'SENT');
    expect(graph.requests.at(-1)!.path).toBe('/v21.0/100200300/messages');
    expect(graph.requests.at(-1)!.headers.authorization).toBe('Bearer platform-token');
    await notify(change('100200300', { statuses: [{ id: sent.externalId, status: 'failed', timestamp: '1', errors: [{ code: 131026, title: 'Message undeliverable' }] }] }));
    const failed = await state(b, res.json.id, 'FAILED');
    expect(failed.error).toMatch(/131026 Message undeliverable/);
    // Tenant isolation.
    expect((await call(api.baseUrl, 'GET', `/v1/whatsapp/${res.json.id}`, { token: a.token })).status).toBe(404);
  });

  it('a rejected template (400) fails at once; a rate limit (130429) is retried', async () => {
    graph.next.push({ status: 400, body: { error: { code: 132001, message: 'Template name does not exist in the translation' } } });
    const bad = await send(a, { to: '+33612345604', type: 'template', template: { name: 'nope', language: 'en_US' } });
    const failed = await state(a, bad.json.id, 'FAILED');
    expect(failed).toMatchObject({ attempts: 1 });
    expect(failed.error).toMatch(/132001/);
    graph.next.push({ status: 400, body: { error: { code: 130429, message: 'Rate limit hit' } } });
    const limited = await send(a, { to: '+33612345605', type: 'template', template: { name: 'hello_world', language: 'en_US' } });
    expect((await state(a, limited.json.id, 'SENT')).attempts).toBe(2);
  });
});

describe('the webhook', () => {
  it('GET echoes hub.challenge only for the verify token', async () => {
    const ok = await call(api.baseUrl, 'GET', `/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${VERIFY}&hub.challenge=12345`);
    expect(ok.status).toBe(200);
    expect(ok.text).toBe('12345');
    const bad = await call(api.baseUrl, 'GET', '/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=12345');
    expect(bad.status).toBe(403);
    expect(bad.json.error).toBe('verification_failed');
  });

  it('a POST not signed with the app secret is refused and changes nothing', async () => {
    const payload = change('555000111', { messages: [{ from: '33612345609', id: 'wamid.X', timestamp: '1', type: 'text' }] });
    const forged = await notify(payload, 'not-the-app-secret-0123456789');
    expect(forged.status).toBe(401);
    expect(forged.json.error).toBe('invalid_signature');
    const unsigned = await call(api.baseUrl, 'POST', '/v1/webhooks/whatsapp', { body: payload });
    expect(unsigned.status).toBe(401);
    expect((await database.db.query(`SELECT 1 FROM whatsapp_sessions WHERE phone = '+33612345609'`)).rowCount).toBe(0);
  });
});
