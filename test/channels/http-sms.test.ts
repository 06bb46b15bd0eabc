import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChannelTransports } from '../../src/channels/index.ts';
import type { ChannelTransports } from '../../src/channels/types.ts';
import { Dispatcher } from '../../src/dispatch/dispatcher.ts';
import { createLogger } from '../../src/log.ts';
import type { Transport } from '../../src/transports/transport.ts';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { until } from '../helpers/wait.ts';
import { hmacHex, startTwilioEmulator, type Emulator } from './emulators.ts';

const ADMIN_TOKEN = 'admin-token-0123456789abcdef0123456789';
const SIGNING = 'provider-signing-secret-0123456789';

let database: TestDatabase;
let provider: Emulator;
let api: TestApp;
let tenant: { tenantId: string; token: string };
let channels: ChannelTransports = {};
let dispatcher: Dispatcher;
const noEmail: Transport = { name: 'none', send: async () => { throw new Error('no email here'); }, close: async () => {} };

beforeAll(async () => {
  database = await createTestDatabase();
  provider = await startTwilioEmulator();
  const base = new URL(provider.url);
  api = await startTestApp(database.db, database.url, {
    SMS_PROVIDER_URL: `http://AC123:authtoken@${base.host}`, SMS_PROVIDER_WEBHOOK_SECRET: SIGNING, PROVIDER_ALLOW_PRIVATE: 'true',
    ADMIN_TOKEN, SMS_WEBHOOK_TOKEN: SIGNING, DISPATCH_POLL_MS: '50', SEND_RETRY_BASE_MS: '50', SEND_MAX_ATTEMPTS: '3',
  });
  tenant = await tenantWithToken(database.db);
  const asked = await call(api.baseUrl, 'POST', '/v1/sms/sender-id-requests', { token: tenant.token, body: { senderId: '+33700000001' } });
  await call(api.baseUrl, 'POST', `/v1/sms/sender-id-requests/${asked.json.id}/review`, { token: ADMIN_TOKEN, body: { decision: 'approve' } });
  const logger = createLogger('silent');
  channels = createChannelTransports(api.config, database.db, logger);
  dispatcher = new Dispatcher(database.db, database.url, noEmail, api.config.dispatch, logger, undefined, undefined, channels);
  await dispatcher.start();
}, 30_000);
afterAll(async () => {
  await dispatcher?.stop();
  await Promise.all(Object.values(channels).map((c) => c.close()));
  await api?.close();
  await provider?.close();
  await database?.drop();
});

const send = (to: string, body = 'hello') => call(api.baseUrl, 'POST', '/v1/sms/send', { token: tenant.token, body: { to, body, senderId: '+33700000001', flow: 'STANDARD' } });
const status = async (id: string, want: string) =>
  until(async () => {
    const res = await call(api.baseUrl, 'GET', `/v1/sms/${id}`, { token: tenant.token });
    return res.json.status === want ? res.json : undefined;
  }, 10_000, `${id} ${want}`);

describe('HTTP SMS provider (Twilio-shaped)', () => {
  it('POSTs form-encoded To/From/Body with Basic auth and a status callback; the sid becomes the external id', async () => {
    const res = await send('+33612340001', 'Code: 4242');
    const sent = await status(res.json.id, 'SENT');
    const req = provider.requests.at(-1)!;
    expect(req.path).toBe('/2010-04-01/Accounts/AC123/Messages.json');
    expect(req.headers.authorization).toBe(`Basic ${Buffer.from('AC123:authtoken').toString('base64')}`);
    const form = new URLSearchParams(req.body);
    expect(Object.fromEntries(form)).toMatchObject({ To: '+33612340001', From: '+33700000001', Body: 'Code: 4242' });
    expect(form.get('StatusCallback')).toBe(`${api.config.tracking.baseUrl}/v1/webhooks/sms/provider`);
    expect(sent.externalId).toMatch(/^SM/);
  });

  it('a signed status callback drives the message; a wrong signature is refused and changes nothing', async () => {
    const res = await send('+33612340002');
    const sent = await status(res.json.id, 'SENT');
    const body = JSON.stringify({ MessageSid: sent.externalId, MessageStatus: 'delivered' });
    const forged = await call(api.baseUrl, 'POST', '/v1/webhooks/sms/provider', { rawBody: body, headers: { 'x-signature': `sha256=${hmacHex('wrong-secret-0123456789', body)}` } });
    expect(forged.status).toBe(401);
    expect(forged.json.error).toBe('invalid_signature');
    expect((await call(api.baseUrl, 'GET', `/v1/sms/${res.json.id}`, { token: tenant.token })).json.status).toBe('SENT');
    const ok = await call(api.baseUrl, 'POST', '/v1/webhooks/sms/provider', { rawBody: body, headers: { 'x-signature': `sha256=${hmacHex(SIGNING, body)}` } });
    expect(ok.json).toEqual({ received: 1 });
    await status(res.json.id, 'DELIVERED');
  });

  it('429 and 5xx are retried; a 400 (invalid number) fails at once with the provider\'s code', async () => {
    provider.next.push({ status: 429, body: { code: 20429, message: 'Too Many Requests' } }, { status: 503, body: {} });
    const retried = await send('+33612340003');
    const sent = await status(retried.json.id, 'SENT');
    expect(sent.attempts).toBe(3);

    provider.next.push({ status: 400, body: { code: 21211, message: "The 'To' number is not a valid phone number." } });
    const refused = await send('+33612340004');
    const failed = await status(refused.json.id, 'FAILED');
    expect(failed.attempts).toBe(1);
    expect(failed.error).toMatch(/400 code 21211/);
  });

  it('a STOP to a numeric sender matches with or without its +', async () => {
    const stop = await call(api.baseUrl, 'POST', `/v1/webhooks/sms/inbound-opt-out?token=${SIGNING}`, { body: { from: '33612340001', to: '33700000001', text: 'UNSUBSCRIBE' } });
    expect(stop.json).toEqual({ action: 'opt_out', accounts: 1 });
    const row = (await database.db.query('SELECT phone, keyword FROM sms_opt_outs WHERE tenant_id = $1', [tenant.tenantId])).rows;
    expect(row).toEqual([{ phone: '+33612340001', keyword: 'UNSUBSCRIBE' }]);
  });
});
