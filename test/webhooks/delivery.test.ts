import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTransaction } from '../../src/db/pool.ts';
import { recordOutcomes } from '../../src/outbox/outcomes.ts';
import { applyEvents, type EventRules } from '../../src/events/ingest.ts';
import { normalizeContractEvent, normalizeSesMessage } from '../../src/events/normalize.ts';
import { newId } from '../../src/ids.ts';
import { removeSuppression } from '../../src/observability/suppressions.ts';
import { recordEngagement } from '../../src/tracking/record.ts';
import { unsubscribeUrl } from '../../src/tracking/links.ts';
import { WEBHOOK_EVENT_TYPES } from '../../src/webhooks/event-types.ts';
import { claimDeliveries } from '../../src/webhooks/queue.ts';
import type { WebhookDeliverer } from '../../src/webhooks/worker.ts';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { until } from '../helpers/wait.ts';
import { startDeliverer, startReceiver, type Answer, type Receiver, type Received } from './helpers.ts';

let database: TestDatabase;
let api: TestApp;
let deliverer: WebhookDeliverer;
const receivers: Receiver[] = [];

const RULES: EventRules = { softBounceLimit: 3, softBounceWindowDays: 7, guardrail: { complaintRatePercent: 100, bounceRatePercent: 100, minSent: 1_000_000, windowDays: 7 } };

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url, { WEBHOOK_ALLOW_PRIVATE: 'true', TRACKING_SECRET: 'tracking-secret-for-tests-0123456789abcdef' });
  deliverer = await startDeliverer(database.db, database.url);
});
afterAll(async () => {
  await deliverer?.stop();
  await api?.close();
  for (const r of receivers) await r.close();
  await database?.drop();
});

async function receiver(answer?: (r: Received, n: number) => Answer) {
  const r = await startReceiver(answer);
  receivers.push(r);
  return r;
}

async function endpoint(token: string, url: string, eventTypes?: string[]) {
  const res = await call(api.baseUrl, 'POST', '/v1/webhook-endpoints', { token, body: { url, event_types: eventTypes } });
  expect(res.status).toBe(201);
  return res.json as { id: string; secret: string };
}

/** Standard Webhooks' own verifier (the receiver library, not ours). */
const verify = (secret: string, r: Received) =>
  new Webhook(secret).verify(r.body, { 'webhook-id': String(r.headers['webhook-id']), 'webhook-timestamp': String(r.headers['webhook-timestamp']), 'webhook-signature': String(r.headers['webhook-signature']) });

async function message(tenantId: string, status = 'sending', tags: Record<string, string> = { campaign_id: 'c1', site_id: 's1', list_id: 'l1', segment: 'all' }) {
  const id = newId();
  await database.db.query(
    `INSERT INTO messages (id, tenant_id, recipient, status, tags, leased_by) VALUES ($1, $2, $3, $4, $5, 'w1')`,
    [id, tenantId, `r-${id.slice(-8)}@example.com`, status, JSON.stringify(tags)],
  );
  return { id, recipient: `r-${id.slice(-8)}@example.com` };
}

const sesMessage = (m: { id: string; recipient: string }, eventType: string, body: Record<string, unknown>) =>
  normalizeSesMessage({ eventType, mail: { messageId: `ses-${m.id}`, timestamp: new Date().toISOString(), destination: [m.recipient], headers: [{ name: 'X-Send-Engine-Message-Id', value: m.id }] }, ...body });

const outbound = (tenantId: string, type: string, payload: Record<string, unknown> = {}) =>
  database.db.query('INSERT INTO outbound_events (id, tenant_id, type, payload) VALUES ($1, $2, $3, $4)', [newId(), tenantId, type, JSON.stringify(payload)]);

const delivery = async (endpointId: string) => (await database.db.query('SELECT * FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id', [endpointId])).rows;

describe('outbound webhooks', () => {
  it('delivers every event family to a subscribed endpoint, signed (verified by standardwebhooks), and nothing to the unsubscribed or another tenant', async () => {
    const { tenantId, token } = await tenantWithToken(database.db);
    const all = await receiver();
    const optOuts = await receiver();
    const stranger = await receiver();
    const allEp = await endpoint(token, all.url);
    await endpoint(token, optOuts.url, ['subscription.unsubscribed']);
    await endpoint((await tenantWithToken(database.db)).token, stranger.url);

    // message.sent / message.failed: the dispatcher's write-back.
    const sent = await message(tenantId);
    const failed = await message(tenantId);
    await recordOutcomes(database.db, 'w1', [
      { id: sent.id, attempt: 1, kind: 'sent', providerMessageId: 'p-1' },
      { id: failed.id, attempt: 1, kind: 'failed', error: '550 mailbox unavailable' },
    ]);
    // Provider feedback: delivered, bounced (hard, with diagnostic), complained, delayed.
    const bounced = await message(tenantId, 'sent');
    const complained = await message(tenantId, 'sent');
    const delayed = await message(tenantId, 'sent');
    const bounce = sesMessage(bounced, 'Bounce', { bounce: { bounceType: 'Permanent', bounceSubType: 'General', timestamp: new Date().toISOString(), feedbackId: 'fb-1', bouncedRecipients: [{ emailAddress: bounced.recipient, diagnosticCode: 'smtp; 550 5.1.1 user unknown' }] } });
    const delay = sesMessage(delayed, 'DeliveryDelay', { deliveryDelay: { timestamp: new Date().toISOString(), delayType: 'MailboxFull', delayedRecipients: [{ emailAddress: delayed.recipient, diagnosticCode: '452 mailbox full' }] } });
    if (bounce.kind !== 'events' || delay.kind !== 'events') throw new Error('unexpected normalization');
    const now = new Date().toISOString();
    await applyEvents(database.db, [
      normalizeContractEvent({ event_type: 'delivery', message_id: sent.id, tenant_id: tenantId, email: sent.recipient, occurred_at: now }),
      ...bounce.events,
      normalizeContractEvent({ event_type: 'complaint', message_id: complained.id, tenant_id: tenantId, email: complained.recipient, occurred_at: now }),
      ...delay.events,
    ], RULES);
    // Engagement through tracking.
    await recordEngagement(database.db, sent.id, 'open', {});
    await recordEngagement(database.db, sent.id, 'click', { url: 'https://acme.example/offer' });
    // message.suppressed: refused at submit (no timeline row).
    await message(tenantId, 'suppressed');
    // suppression.deleted through the API's function (suppression.created came with the bounce).
    await removeSuppression(database.db, tenantId, bounced.recipient, {}, { id: 'test' });
    // send_job.* on status changes.
    const listId = newId();
    await database.db.query('INSERT INTO lists (tenant_id, id) VALUES ($1, $2)', [tenantId, listId]);
    const campaign = newId();
    await database.db.query('INSERT INTO campaigns (id, tenant_id) VALUES ($1, $2)', [campaign, tenantId]);
    for (const final of ['completed', 'failed', 'cancelled']) {
      const job = newId();
      await database.db.query(
        `INSERT INTO send_jobs (id, tenant_id, list_id, campaign_id, name, from_address, template, scheduled_at, status)
         VALUES ($1, $2, $3, $4, 'june', 'news@acme.test', '{}', now(), 'pending')`,
        [job, tenantId, listId, campaign],
      );
      await database.db.query(`UPDATE send_jobs SET status = 'running', started_at = now() WHERE id = $1`, [job]);
      await database.db.query(`UPDATE send_jobs SET status = $2, finished_at = now() WHERE id = $1`, [job, final]);
    }
    // subscription.unsubscribed: the recipient's one-click POST.
    const subscriberId = newId();
    await database.db.query(`INSERT INTO subscribers (tenant_id, id, email, status, updated_at) VALUES ($1, $2, 'member@example.com', 'active', now() - interval '1 day')`, [tenantId, subscriberId]);
    await database.db.query(
      `INSERT INTO list_members (tenant_id, list_id, subscriber_id, status, reason, source_id, status_at) VALUES ($1, $2, $3, 'active', 'subscription.activated', $4, now() - interval '1 day')`,
      [tenantId, listId, subscriberId, newId()],
    );
    const link = unsubscribeUrl({ baseUrl: api.baseUrl, secret: api.config.tracking.secret }, { tenantId, listId, subscriberId, messageId: sent.id });
    const oneClick = await fetch(link, { method: 'POST', body: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(oneClick.status).toBe(200);

    // sms.* and whatsapp.* come from text-channel messages: test/channels/sms.test.ts and whatsapp.test.ts.
    const emailFamilies = WEBHOOK_EVENT_TYPES.filter((t) => !t.startsWith('sms.') && !t.startsWith('whatsapp.'));
    await all.waitFor((r) => emailFamilies.every((t) => r.some((x) => x.json.type === t)), 'every event type');
    await optOuts.waitFor((r) => r.length >= 1, 'the opt-out');

    for (const r of all.received) {
      expect(verify(allEp.secret, r)).toMatchObject({ id: r.headers['webhook-id'], tenant_id: tenantId });
      expect(r.json.id).toBe(r.headers['webhook-id']);
    }
    const byType = (t: string) => all.received.filter((r) => r.json.type === t).map((r) => r.json.data);
    expect(byType('message.sent')[0]).toMatchObject({ message_id: sent.id, recipient: sent.recipient, tags: { campaign_id: 'c1' }, list_id: 'l1' });
    expect(byType('message.bounced')[0]).toMatchObject({ message_id: bounced.id, bounce_type: 'hard', diagnostic: 'smtp; 550 5.1.1 user unknown' });
    expect(byType('message.clicked')[0]).toMatchObject({ message_id: sent.id, url: 'https://acme.example/offer' });
    expect(byType('message.failed')[0]).toMatchObject({ message_id: failed.id, diagnostic: '550 mailbox unavailable' });
    expect(byType('message.delivery_delayed')[0]).toMatchObject({ message_id: delayed.id, diagnostic: '452 mailbox full' });
    expect(byType('suppression.created').map((d) => d.email).sort()).toEqual([bounced.recipient, complained.recipient].sort());
    expect(byType('suppression.deleted')).toMatchObject([{ email: bounced.recipient }]);
    expect(byType('send_job.started')).toHaveLength(3);
    expect(byType('send_job.completed')[0]).toMatchObject({ list_id: listId, name: 'june', status: 'completed' });
    expect(byType('subscription.unsubscribed')).toMatchObject([{ list_id: listId, subscriber_id: subscriberId, email: 'member@example.com', source: 'one_click', message_id: sent.id }]);

    expect(optOuts.received.map((r) => r.json.type)).toEqual(['subscription.unsubscribed']);
    expect(stranger.received).toHaveLength(0);
    // Every delivery of an event done: outbound_events.delivered_at is set.
    await until(async () => (await database.db.query(`SELECT count(*)::int AS n FROM outbound_events WHERE tenant_id = $1 AND type = 'subscription.unsubscribed' AND delivered_at IS NOT NULL`, [tenantId])).rows[0].n === 1, 5000, 'delivered_at');
  });

  it('queues nothing for tenants without endpoints, and nothing from a rolled-back transaction', async () => {
    const { tenantId, token } = await tenantWithToken(database.db);
    const m = await message(tenantId);
    await recordOutcomes(database.db, 'w1', [{ id: m.id, attempt: 1, kind: 'sent', providerMessageId: 'p' }]);
    expect((await database.db.query('SELECT count(*)::int AS n FROM outbound_events WHERE tenant_id = $1', [tenantId])).rows[0].n).toBe(0);

    const r = await receiver();
    const ep = await endpoint(token, r.url);
    await expect(
      withTransaction(database.db, async (client) => {
        await client.query('INSERT INTO outbound_events (id, tenant_id, type, payload) VALUES ($1, $2, $3, $4)', [newId(), tenantId, 'subscription.unsubscribed', '{}']);
        await client.query(`INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at) VALUES ($1, $2, $3, 'delivery', now())`, [newId(), tenantId, m.id]);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await delivery(ep.id)).toHaveLength(0);
    // The same change committed is delivered: the check above would have seen it.
    await outbound(tenantId, 'subscription.unsubscribed', { marker: 1 });
    await r.waitFor((x) => x.length === 1, 'the committed event');
    expect(r.received[0].json.data).toEqual({ marker: 1 });
  });

  it('retries after a 500 with the same webhook-id, then succeeds; the deliveries API shows it', async () => {
    const { tenantId, token } = await tenantWithToken(database.db);
    const r = await receiver((_req, n) => (n === 1 ? { status: 500, body: 'boom' } : { status: 200, body: 'thanks' }));
    const ep = await endpoint(token, r.url);
    await outbound(tenantId, 'suppression.created', { email: 'x@example.com' });
    await r.waitFor((x) => x.length === 2, 'the retry', 20_000);
    expect(r.received[1].headers['webhook-id']).toBe(r.received[0].headers['webhook-id']);
    expect(r.received[1].at - r.received[0].at).toBeGreaterThan(4000);
    const page = await until(async () => {
      const res = await call(api.baseUrl, 'GET', `/v1/webhook-endpoints/${ep.id}/deliveries`, { token });
      return res.json.data[0]?.status === 'succeeded' && res.json;
    }, 5000, 'succeeded');
    expect(page.data[0]).toMatchObject({ event_type: 'suppression.created', attempts: 2, response_status: 200, response_excerpt: 'thanks', next_attempt_at: null, error: null });
    expect(typeof page.data[0].latency_ms).toBe('number');
    // Another tenant cannot see or retry it.
    const other = (await tenantWithToken(database.db)).token;
    expect((await call(api.baseUrl, 'POST', `/v1/webhook-deliveries/${page.data[0].id}/retry`, { token: other })).status).toBe(404);
    // Its owner can redeliver it now.
    const retried = await call(api.baseUrl, 'POST', `/v1/webhook-deliveries/${page.data[0].id}/retry`, { token });
    expect(retried.status).toBe(202);
    expect(retried.json.status).toBe('pending');
    await r.waitFor((x) => x.length === 3, 'the manual redelivery');
  });

  it('honours Retry-After on 429', async () => {
    const { tenantId, token } = await tenantWithToken(database.db);
    const r = await receiver((_req, n) => (n === 1 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 204 }));
    const ep = await endpoint(token, r.url);
    await outbound(tenantId, 'suppression.deleted', {});
    const pending = await until(async () => {
      const [d] = await delivery(ep.id);
      return d?.response_status === 429 && d;
    }, 5000, 'the 429 recorded');
    expect(pending.status).toBe('pending');
    const wait = pending.next_attempt_at.getTime() - pending.last_attempt_at.getTime();
    // Retry-After (2 s), not the schedule's first step (5 s ± 10 %).
    expect(wait).toBeGreaterThan(1500);
    expect(wait).toBeLessThan(3000);
    await r.waitFor((x) => x.length === 2, 'the retry');
  });

  it('disables an endpoint that answers 410, and one failing for five days, saying why', async () => {
    const { tenantId, token } = await tenantWithToken(database.db);
    const gone = await receiver(() => ({ status: 410 }));
    const goneEp = await endpoint(token, gone.url, ['message.sent']);
    const failing = await receiver(() => ({ status: 500 }));
    const failingEp = await endpoint(token, failing.url, ['message.opened']);
    await database.db.query(`UPDATE webhook_endpoints SET failing_since = now() - interval '5 days 1 hour' WHERE id = $1`, [failingEp.id]);
    await outbound(tenantId, 'message.sent', {});
    await outbound(tenantId, 'message.opened', {});
    const state = async (id: string) => (await call(api.baseUrl, 'GET', `/v1/webhook-endpoints/${id}`, { token })).json;
    await until(async () => (await state(goneEp.id)).status === 'disabled', 5000, '410 disables');
    expect((await state(goneEp.id)).disabled_reason).toBe('the endpoint answered 410 Gone');
    expect((await delivery(goneEp.id))[0].status).toBe('failed');
    await until(async () => (await state(failingEp.id)).status === 'disabled', 5000, 'five days of failures disable');
    expect((await state(failingEp.id)).disabled_reason).toMatch(/^every delivery attempt failed since .* \(5 days\)$/);
    // Nothing more is queued for a disabled endpoint, and a retry is refused until it is enabled.
    await outbound(tenantId, 'message.sent', {});
    expect(await delivery(goneEp.id)).toHaveLength(1);
    const retry = await call(api.baseUrl, 'POST', `/v1/webhook-deliveries/${(await delivery(goneEp.id))[0].id}/retry`, { token });
    expect(retry.status).toBe(409);
    expect(retry.json.error).toBe('endpoint_disabled');
    expect(gone.received).toHaveLength(1);
  });

  it('signs with both secrets during a rotation: the old one and the new one each verify', async () => {
    const { tenantId, token } = await tenantWithToken(database.db);
    const r = await receiver();
    const ep = await endpoint(token, r.url);
    const rotated = (await call(api.baseUrl, 'POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`, { token })).json;
    await outbound(tenantId, 'subscription.unsubscribed', { n: 1 });
    const [got] = await r.waitFor((x) => x.length === 1, 'the event');
    expect(String(got.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verify(ep.secret, got)).toMatchObject({ data: { n: 1 } });
    expect(verify(rotated.secret, got)).toMatchObject({ data: { n: 1 } });
    expect(() => verify(`whsec_${Buffer.alloc(32, 7).toString('base64')}`, got)).toThrow();
    // After the grace period only the new secret signs.
    await database.db.query(`UPDATE webhook_endpoints SET old_secret_expires_at = now() - interval '1 second' WHERE id = $1`, [ep.id]);
    await outbound(tenantId, 'subscription.unsubscribed', { n: 2 });
    const later = (await r.waitFor((x) => x.length === 2, 'the second event'))[1];
    expect(verify(rotated.secret, later)).toMatchObject({ data: { n: 2 } });
    expect(() => verify(ep.secret, later)).toThrow();
  });

  it("a stalled endpoint holds only its own lane: another tenant's event is delivered while it hangs", async () => {
    const hung: Array<() => void> = [];
    // Answers nothing until released: every request to it stays in flight.
    const stalled = await import('node:http').then(({ default: http }) => {
      const server = http.createServer((req, res) => {
        req.resume();
        hung.push(() => res.end('late'));
      });
      return new Promise<{ url: string; close(): Promise<void> }>((resolve) =>
        server.listen(0, '127.0.0.1', () =>
          resolve({
            url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`,
            close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
          }),
        ),
      );
    });
    const a = await tenantWithToken(database.db);
    const b = await tenantWithToken(database.db);
    const aEp = await endpoint(a.token, stalled.url);
    const fast = await receiver();
    await endpoint(b.token, fast.url);
    await database.db.query(
      `INSERT INTO outbound_events (id, tenant_id, type, payload) SELECT gen_random_uuid(), $1, 'message.delivered', '{}' FROM generate_series(1, 300)`,
      [a.tenantId],
    );
    await until(() => hung.length >= 16, 5000, 'the stalled endpoint to hold its lane');
    await outbound(b.tenantId, 'subscription.unsubscribed', { other: 'tenant' });
    const [got] = await fast.waitFor((x) => x.length === 1, "the other tenant's event");
    expect(got.json.data).toEqual({ other: 'tenant' });
    // Meanwhile the stalled endpoint has answered nothing and holds no more than its bound.
    expect(hung.length).toBe(16);
    expect((await delivery(aEp.id)).filter((d) => d.status === 'succeeded')).toHaveLength(0);
    hung.splice(0).forEach((release) => release());
    await until(async () => (await delivery(aEp.id)).filter((d) => d.status === 'succeeded').length >= 16, 5000, 'released requests recorded');
    await call(api.baseUrl, 'PATCH', `/v1/webhook-endpoints/${aEp.id}`, { token: a.token, body: { status: 'disabled' } });
    const drain = setInterval(() => hung.splice(0).forEach((release) => release()), 20);
    await until(async () => (await database.db.query(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'delivering'`, [aEp.id])).rows[0].n === 0, 10_000, 'in-flight requests settled');
    clearInterval(drain);
    await stalled.close();
  });

  it('redelivers what a crashed worker claimed once its lease expires', async () => {
    await deliverer.stop();
    const { tenantId, token } = await tenantWithToken(database.db);
    const r = await receiver();
    const ep = await endpoint(token, r.url);
    await outbound(tenantId, 'send_job.completed', { crash: true });
    // A worker claims it and dies before sending.
    const claimed = await claimDeliveries(database.db, 'dead-worker', { limit: 10, perEndpoint: 10, leaseSeconds: 1, skipEndpoints: [], after: '00000000-0000-0000-0000-000000000000' });
    expect(claimed.map((c) => c.endpointId)).toEqual([ep.id]);
    expect((await delivery(ep.id))[0]).toMatchObject({ status: 'delivering', leased_by: 'dead-worker' });
    deliverer = await startDeliverer(database.db, database.url);
    const [got] = await r.waitFor((x) => x.length === 1, 'the redelivery');
    expect(got.json.data).toEqual({ crash: true });
    await until(async () => (await delivery(ep.id))[0].status === 'succeeded', 5000, 'recorded');
    expect((await delivery(ep.id))[0].attempts).toBe(2);
  });
});
