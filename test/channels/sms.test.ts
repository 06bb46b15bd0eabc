import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChannelTransports } from '../../src/channels/index.ts';
import type { ChannelTransports } from '../../src/channels/types.ts';
import { claimMessages, releaseMessages } from '../../src/outbox/claim.ts';
import { Dispatcher } from '../../src/dispatch/dispatcher.ts';
import { createLogger } from '../../src/log.ts';
import type { Transport } from '../../src/transports/transport.ts';
import { createEndpoint } from '../../src/webhooks/endpoints.ts';
import { secretBoxFor } from '../../src/webhooks/secret-box.ts';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { until } from '../helpers/wait.ts';
import { startSmsc, type Smsc } from './smsc.ts';

const ADMIN_TOKEN = 'admin-token-0123456789abcdef0123456789';
const WEBHOOK_TOKEN = 'sms-webhook-token-0123456789';

let database: TestDatabase;
let smsc: Smsc;
let api: TestApp;
let a: { tenantId: string; token: string };
let b: { tenantId: string; token: string };
let channels: ChannelTransports = {};
let dispatcher: Dispatcher | undefined;

const noEmail: Transport = { name: 'none', send: async () => { throw new Error('no email here'); }, close: async () => {} };

beforeAll(async () => {
  database = await createTestDatabase();
  smsc = await startSmsc();
  api = await startTestApp(database.db, database.url, {
    SMS_PROVIDER_URL: smsc.url, SMS_WEBHOOK_TOKEN: WEBHOOK_TOKEN, ADMIN_TOKEN, DISPATCH_POLL_MS: '50', SEND_RETRY_BASE_MS: '50',
    SMS_OTP_VALIDITY_SECONDS: '120',
  });
  a = await tenantWithToken(database.db, undefined, 'tenant a');
  b = await tenantWithToken(database.db, undefined, 'tenant b');
}, 30_000);
afterAll(async () => {
  await dispatcher?.stop();
  await Promise.all(Object.values(channels).map((c) => c.close()));
  await api?.close();
  await smsc?.close();
  await database?.drop();
});

const send = (who: { token: string }, body: Record<string, unknown>) => call(api.baseUrl, 'POST', '/v1/sms/send', { token: who.token, body });
const get = (who: { token: string }, path: string) => call(api.baseUrl, 'GET', path, { token: who.token });
const review = (id: string, body: unknown, token = ADMIN_TOKEN) => call(api.baseUrl, 'POST', `/v1/sms/sender-id-requests/${id}/review`, { token, body });

async function approve(who: { token: string }, senderId: string) {
  const asked = await call(api.baseUrl, 'POST', '/v1/sms/sender-id-requests', { token: who.token, body: { senderId, purpose: 'logins' } });
  expect(asked.status).toBe(201);
  expect((await review(asked.json.id, { decision: 'approve', note: 'ok' })).status).toBe(200);
}

async function settled(who: { token: string }, id: string, status: string) {
  return until(async () => {
    const res = await get(who, `/v1/sms/${id}`);
    return res.json.status === status ? res.json : undefined;
  }, 10_000, `SMS ${id} ${status}`);
}

describe('sender ids', () => {
  it('a send from an unapproved sender id answers 422 and queues nothing', async () => {
    const res = await send(a, { to: '+33612345678', body: 'hi', senderId: 'ACME', flow: 'STANDARD' });
    expect(res.status).toBe(422);
    expect(res.json.error).toBe('sender_id_not_approved');
    expect((await database.db.query(`SELECT 1 FROM messages WHERE channel = 'sms'`)).rowCount).toBe(0);
  });

  it('the tenant asks, only the operator (ADMIN_TOKEN, not a tenant token) reviews, and the approved id is listed', async () => {
    const asked = await call(api.baseUrl, 'POST', '/v1/sms/sender-id-requests', { token: a.token, body: { senderId: 'ACME' } });
    expect(asked.status).toBe(201);
    expect(asked.json.status).toBe('pending');
    const again = await call(api.baseUrl, 'POST', '/v1/sms/sender-id-requests', { token: a.token, body: { senderId: 'ACME' } });
    expect(again.json.error).toBe('sender_id_already_requested');

    const byTenant = await review(asked.json.id, { decision: 'approve' }, a.token);
    expect(byTenant.status).toBe(401);
    const wrong = await review(asked.json.id, { decision: 'approve' }, `${ADMIN_TOKEN}x`);
    expect(wrong.status).toBe(401);
    const ok = await review(asked.json.id, { decision: 'approve', note: 'brand checked' });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ status: 'approved', review_note: 'brand checked' });
    expect((await review(asked.json.id, { decision: 'reject' })).json.error).toBe('sender_id_already_reviewed');

    const listed = await get(a, '/v1/sms/sender-ids');
    expect(listed.json.data.map((s: { sender_id: string; status: string }) => [s.sender_id, s.status])).toEqual([['ACME', 'approved']]);
    // Another tenant sees none of it, and cannot send from ACME.
    expect((await get(b, '/v1/sms/sender-ids')).json.data).toEqual([]);
    const fromB = await send(b, { to: '+33612345678', body: 'hi', senderId: 'ACME', flow: 'STANDARD' });
    expect(fromB.json.error).toBe('sender_id_not_approved');
  });

  it('rejects malformed numbers with the reason', async () => {
    const res = await send(a, { to: '0612345678', body: 'hi', senderId: 'ACME', flow: 'STANDARD' });
    expect(res.status).toBe(422);
    expect(res.json.error).toBe('invalid_phone_number');
  });
});

describe('accepting (no dispatcher yet)', () => {
  it('stores segments and encoding; the same idempotency key replays, another body under it is a 409', async () => {
    const body = { to: '+33612345670', body: 'Ж'.repeat(71), senderId: 'ACME', flow: 'STANDARD', idempotency_key: 'k1' };
    const first = await send(a, body);
    expect(first.status).toBe(202);
    expect(first.json).toMatchObject({ status: 'QUEUED', replayed: false, segments: 2, encoding: 'UCS-2' });
    const replay = await send(a, body);
    expect(replay.json).toMatchObject({ id: first.json.id, replayed: true });
    const conflict = await send(a, { ...body, body: 'other' });
    expect(conflict.status).toBe(409);
    expect(conflict.json.error).toBe('idempotency_conflict');
    // The same key for an email send is another key (namespaced by channel).
    expect((await database.db.query(`SELECT key FROM idempotency_keys WHERE tenant_id = $1`, [a.tenantId])).rows.map((r) => r.key)).toEqual(['sms:k1']);
    expect((await database.db.query(`SELECT count(*)::int AS n FROM messages WHERE channel = 'sms'`)).rows[0].n).toBe(1);
  });

  it('claims OTP before STANDARD, whatever their age', async () => {
    const standard = await send(a, { to: '+33612345671', body: 'news', senderId: 'ACME', flow: 'STANDARD' });
    const otp = await send(a, { to: '+33612345672', body: 'code 123456', senderId: 'ACME', flow: 'OTP' });
    const [claimed] = await claimMessages(database.db, 'order-test', 1, 60);
    expect(claimed.id).toBe(otp.json.id);
    expect(claimed.channel).toBe('sms');
    expect(claimed.content).toMatchObject({ body: 'code 123456', senderId: 'ACME', flow: 'OTP', segments: 1 });
    await releaseMessages(database.db, 'order-test', [claimed.id]);
    expect(standard.status).toBe(202);
    const row = (await database.db.query(`SELECT expires_at - created_at AS validity FROM messages WHERE id = $1`, [otp.json.id])).rows[0];
    expect(row.validity.minutes).toBe(2);
  });

  it('an OTP not sent within its validity expires instead of going out', async () => {
    const otp = await send(a, { to: '+33612345673', body: 'code 999999', senderId: 'ACME', flow: 'OTP' });
    await database.db.query(`UPDATE messages SET expires_at = now() - interval '1 second' WHERE id = $1`, [otp.json.id]);
    expectedLater.expiredOtp = otp.json.id;
  });
});

const expectedLater: Record<string, string> = {};

describe('sending through the SMSC', () => {
  beforeAll(async () => {
    const logger = createLogger('silent');
    channels = createChannelTransports(api.config, database.db, logger);
    dispatcher = new Dispatcher(database.db, database.url, noEmail, api.config.dispatch, logger, undefined, undefined, channels);
    await dispatcher.start();
  });

  it('submit_sm with registered_delivery; the deliver_sm receipt makes it DELIVERED; timeline and a long text via message_payload', async () => {
    const res = await send(a, { to: '+33612345674', body: 'Your order shipped', senderId: 'ACME', flow: 'STANDARD' });
    const done = await settled(a, res.json.id, 'DELIVERED');
    const submit = smsc.submitted.find((s) => s.destination === '33612345674')!;
    expect(submit).toMatchObject({ source: 'ACME', registeredDelivery: 1, text: 'Your order shipped', viaPayload: false });
    expect(done).toMatchObject({ engineStatus: 'delivered', externalId: submit.messageId, segments: 1, encoding: 'GSM-7', attempts: 1 });
    const timeline = await get(a, `/v1/sms/${res.json.id}/timeline`);
    expect(timeline.json.events.map((e: { type: string }) => e.type)).toEqual(['accepted', 'send', 'delivery']);

    // The long UCS-2 message accepted earlier went out whole in message_payload.
    const long = smsc.submitted.find((s) => s.destination === '33612345670')!;
    expect(long).toMatchObject({ viaPayload: true, text: 'Ж'.repeat(71) });
  });

  it('the expired OTP ended expired (FAILED) and was never submitted', async () => {
    const done = await settled(a, expectedLater.expiredOtp, 'FAILED');
    expect(done.engineStatus).toBe('expired');
    expect(smsc.submitted.some((s) => s.destination === '33612345673')).toBe(false);
  });

  it('ESME_RTHROTTLED is retried with backoff inside the send: one attempt, delivered', async () => {
    smsc.throttleNext(2);
    const before = smsc.throttled;
    const res = await send(a, { to: '+33612345675', body: 'throttled', senderId: 'ACME', flow: 'STANDARD' });
    const done = await settled(a, res.json.id, 'DELIVERED');
    expect(smsc.throttled - before).toBe(2);
    expect(done.attempts).toBe(1);
  });

  it('a lost bind is restored by reconnecting, and sends go on', async () => {
    const binds = smsc.binds;
    smsc.dropSessions();
    await until(() => smsc.binds > binds, 10_000, 'rebind');
    const res = await send(a, { to: '+33612345676', body: 'after rebind', senderId: 'ACME', flow: 'STANDARD' });
    await settled(a, res.json.id, 'DELIVERED');
  });

  it('a failed receipt (UNDELIV) and a refused destination end FAILED with the reason; the refusal is not retried', async () => {
    smsc.receiptFor.set('33612345677', 'UNDELIV');
    const undeliv = await send(a, { to: '+33612345677', body: 'x', senderId: 'ACME', flow: 'STANDARD' });
    expect((await settled(a, undeliv.json.id, 'FAILED')).error).toMatch(/UNDELIV/);
    smsc.refuseDestination.add('33612345678');
    const refused = await send(a, { to: '+33612345678', body: 'x', senderId: 'ACME', flow: 'STANDARD' });
    const done = await settled(a, refused.json.id, 'FAILED');
    expect(done.error).toMatch(/0x0b/);
    expect(done.attempts).toBe(1);
  });

  it('DLR callback: token checked in constant time; a receipt for a message drives it', async () => {
    smsc.receiptFor.set('33612345679', 'none');
    const res = await send(a, { to: '+33612345679', body: 'dlr by http', senderId: 'ACME', flow: 'STANDARD' });
    const sent = await settled(a, res.json.id, 'SENT');
    const bad = await call(api.baseUrl, 'POST', `/v1/webhooks/sms/dlr?token=nope`, { body: { id: sent.externalId, status: 'DELIVRD' } });
    expect(bad.status).toBe(401);
    const unknown = await call(api.baseUrl, 'POST', `/v1/webhooks/sms/dlr?token=${WEBHOOK_TOKEN}`, { body: { id: sent.externalId, status: 'WHATEVER' } });
    expect(unknown.json.error).toBe('unknown_status');
    const ok = await call(api.baseUrl, 'POST', `/v1/webhooks/sms/dlr?token=${WEBHOOK_TOKEN}`, { body: { id: sent.externalId, status: 'DELIVRD' } });
    expect(ok.json).toEqual({ received: 1 });
    expect((await get(a, `/v1/sms/${res.json.id}`)).json.status).toBe('DELIVERED');
  });

  it('STOP opts a handset out of this tenant only when that sender had sent to it; START opts back in', async () => {
    const box = secretBoxFor(api.config);
    await createEndpoint(database.db, box, a.tenantId, { url: 'https://hooks.acme.test/in', event_types: ['sms.opt_out', 'sms.sent', 'sms.delivered', 'sms.failed'] }, true);
    const phone = '+33612345680';
    // No SMS from ACME to this handset yet: nothing recorded.
    const early = await call(api.baseUrl, 'POST', `/v1/webhooks/sms/inbound-opt-out?token=${WEBHOOK_TOKEN}`, { body: { from: phone, to: 'ACME', text: 'STOP' } });
    expect(early.json).toEqual({ action: 'opt_out', accounts: 0 });
    const first = await send(a, { to: phone, body: 'hello', senderId: 'ACME', flow: 'STANDARD' });
    await settled(a, first.json.id, 'DELIVERED');

    const stop = await call(api.baseUrl, 'POST', `/v1/webhooks/sms/inbound-opt-out?token=${WEBHOOK_TOKEN}`, { body: { from: phone, to: 'ACME', text: ' stop ' } });
    expect(stop.json).toEqual({ action: 'opt_out', accounts: 1 });
    const submits = smsc.submitted.length;
    const blocked = await send(a, { to: phone, body: 'promo', senderId: 'ACME', flow: 'STANDARD' });
    const done = await settled(a, blocked.json.id, 'FAILED');
    expect(done.engineStatus).toBe('suppressed');
    expect(done.error).toMatch(/opted_out/);
    expect(smsc.submitted.length).toBe(submits);

    // START over SMPP (a mobile-originated deliver_sm) opts back in.
    smsc.sendInbound('33612345680', 'ACME', 'START');
    await until(async () => (await database.db.query('SELECT 1 FROM sms_opt_outs WHERE phone = $1', [phone])).rowCount === 0, 5000, 'opt-in');
    const again = await send(a, { to: phone, body: 'welcome back', senderId: 'ACME', flow: 'STANDARD' });
    await settled(a, again.json.id, 'DELIVERED');

    const events = await until(async () => {
      const { rows } = await database.db.query(`SELECT type, payload FROM outbound_events WHERE tenant_id = $1 ORDER BY created_at, id`, [a.tenantId]);
      return rows.filter((r) => r.type === 'sms.delivered').length >= 2 ? rows : undefined;
    }, 5000, 'outbound events');
    const types = events.map((e) => e.type);
    expect(types).toContain('sms.sent');
    expect(types).toContain('sms.failed');
    expect(events.filter((e) => e.type === 'sms.opt_out').map((e) => e.payload.action)).toEqual(['opt_out', 'opt_in']);
    expect(events.find((e) => e.type === 'sms.delivered')!.payload).toMatchObject({ channel: 'sms', recipient: phone });
    expect(types.some((t) => t.startsWith('message.'))).toBe(false);
  });

  it('lists by flow, state and free text, pages of at most 100; another tenant sees none of it (404)', async () => {
    const otp = await get(a, '/v1/sms?flow=OTP&pageSize=10');
    expect(otp.json.data.every((m: { flow: string }) => m.flow === 'OTP')).toBe(true);
    expect(otp.json.total).toBe(2);
    const delivered = await get(a, '/v1/sms?status=DELIVERED&page=1&pageSize=50');
    expect(delivered.json.data.length).toBeGreaterThan(2);
    expect(delivered.json.data.every((m: { status: string }) => m.status === 'DELIVERED')).toBe(true);
    const search = await get(a, '/v1/sms?query=2345674');
    expect(search.json.data.map((m: { to: string }) => m.to)).toEqual(['+33612345674']);
    const byBody = await get(a, '/v1/sms?query=order%20shipped');
    expect(byBody.json.total).toBe(1);
    expect((await get(a, '/v1/sms?pageSize=101')).status).toBe(422);

    const id = search.json.data[0].id;
    expect((await get(b, `/v1/sms/${id}`)).status).toBe(404);
    expect((await get(b, `/v1/sms/${id}/timeline`)).status).toBe(404);
    expect((await get(b, '/v1/sms')).json).toMatchObject({ data: [], total: null });
  });

  it('deliverability by channel: sent, delivered, failed (UNDELIV + refused, as bounced), opted out or expired (as suppressed)', async () => {
    const report = await get(a, '/v1/reports/deliverability?channel=sms&group_by=month');
    expect(report.status).toBe(200);
    const [month] = report.json.data;
    const counts = (await database.db.query(
      `SELECT count(*) FILTER (WHERE e.type = 'send')::int AS sent, count(*) FILTER (WHERE e.type = 'delivery')::int AS delivered
         FROM message_events e JOIN messages m ON m.id = e.message_id WHERE m.tenant_id = $1 AND m.channel = 'sms'`, [a.tenantId])).rows[0];
    expect(month).toMatchObject({ sent: counts.sent, delivered: counts.delivered, bounced: 2, suppressed: 2, complained: 0 });
    expect(month.sent).toBeGreaterThan(5);
    expect((await get(b, '/v1/reports/deliverability?channel=sms')).json.data).toEqual([]);
    expect((await get(a, '/v1/reports/engagement?channel=sms')).status).toBe(422);
  });

  it('scopes: a key without send:sms cannot send', async () => {
    const readOnly = await tenantWithToken(database.db, ['read:sms'], 'reader');
    const res = await send(readOnly, { to: '+33612345674', body: 'x', senderId: 'ACME', flow: 'STANDARD' });
    expect(res.status).toBe(403);
    expect(res.json.error).toBe('permission_denied');
  });
});
