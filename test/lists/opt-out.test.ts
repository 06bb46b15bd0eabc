import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCOPES } from '../../src/auth/scopes.ts';
import { issueToken } from '../../src/auth/jwt.ts';
import { call, TEST_JWT_SECRET, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';
import { startSmtpSink, type SinkMessage, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';
import { postSigned, WEBHOOK_SECRET } from '../events/helpers.ts';
import { memberCenter, type Member } from './helpers.ts';

/**
 * The issue's scenario, end to end over real HTTP and a real SMTP sink: a member who opts out at
 * the engine is not re-activated by the Member Center's next full sync (which still lists them
 * active), gets nothing from the next send, and only a later subscription.activated brings them
 * back. The same with a complaint, which takes the address off every list of the tenant.
 */

let database: TestDatabase;
let sink: SmtpSink;
let engine: TestEngine;

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await startSmtpSink();
  engine = await startTestEngine(database.db, database.url, { smtpUrl: sink.url, env: { SES_WEBHOOK_SECRET: WEBHOOK_SECRET } });
});
afterAll(async () => {
  await engine?.close();
  await sink?.close();
  await database?.drop();
});

type MemberCenter = Awaited<ReturnType<typeof memberCenter>>;

const at = (ms = 0) => new Date(Date.now() + ms);

/** Sends one list send job and waits until it finishes; returns the job and the messages it delivered. */
async function sendToList(mc: MemberCenter, listId: string, subject: string): Promise<{ job: any; got: SinkMessage[] }> {
  const created = await call(engine.baseUrl, 'POST', '/api/send-jobs', { token: mc.token, body: { list_id: listId, subject, body_text: 'Hello' } });
  expect(created.status).toBe(200);
  const job = await until(async () => {
    const res = await call(engine.baseUrl, 'GET', `/api/send-jobs/${created.json.send_job_id}`, { token: mc.token });
    return ['completed', 'failed', 'cancelled'].includes(res.json.status) ? res.json : undefined;
  }, 20_000, `send job "${subject}"`);
  const got = await until(() => {
    const mine = sink.messages.filter((m) => m.parsed.subject === subject);
    return mine.length >= job.counts.sent ? mine : undefined;
  }, 10_000, `the sink to hold "${subject}"`);
  return { job, got };
}

const recipients = (got: SinkMessage[]) => got.map((m) => m.envelopeTo[0]).sort();

/** The one-click URL of a received message, pointed at this test's server. */
function oneClickUrl(message: SinkMessage): string {
  const head = message.raw.toString().split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, ' ');
  const url = head.match(/^List-Unsubscribe: <(https?:\/\/[^>]+)>\r?$/m)![1];
  return url.replace(engine.config.tracking.baseUrl, engine.baseUrl);
}

async function sync(mc: MemberCenter, listId: string, members: Member[], occurredAt: Date) {
  const res = await mc.batch(randomUUID(), 1, 1, members, occurredAt, { list_id: listId });
  expect(res.status).toBe(200);
  expect(res.json.sync_state).toBe('completed');
  return res.json;
}

async function membership(mc: MemberCenter, listId: string, subscriberId: string) {
  const { rows } = await database.db.query(
    'SELECT status, reason, opted_out_at, opt_out_source FROM list_members WHERE tenant_id = $1 AND list_id = $2 AND subscriber_id = $3',
    [mc.tenantId, listId, subscriberId],
  );
  return rows[0];
}

async function outbound(tenantId: string) {
  const { rows } = await database.db.query('SELECT type, payload FROM outbound_events WHERE tenant_id = $1 ORDER BY created_at, id', [tenantId]);
  return rows;
}

function member(name: string, domain: string): Member {
  return { id: randomUUID(), email: `${name}@${domain}`, status: 'active' };
}

describe('an opt-out at the engine is final against full syncs', () => {
  it('one-click: the next full sync keeps the member unsubscribed (counted), the next send skips them, only a later activation brings them back', async () => {
    const mc = await memberCenter(database.db, engine.baseUrl);
    const domain = 'oneclick.test';
    const [ann, ben, cat] = ['ann', 'ben', 'cat'].map((n) => member(n, domain));

    // 1. Full sync with everyone active.
    expect(await sync(mc, mc.listId, [ann, ben, cat], at(-60_000))).toMatchObject({ kept_unsubscribed: 0 });

    // 2. A list send: everyone receives it.
    const first = await sendToList(mc, mc.listId, 'Issue 1');
    expect(recipients(first.got)).toEqual([`ann@${domain}`, `ben@${domain}`, `cat@${domain}`]);

    // 3. Ben uses the one-click unsubscribe of the message he received (RFC 8058 POST).
    const bens = first.got.find((m) => m.envelopeTo[0] === ben.email)!;
    const click = await fetch(oneClickUrl(bens), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(click.status).toBe(200);
    const optedOut = await membership(mc, mc.listId, ben.id);
    expect(optedOut).toMatchObject({ status: 'unsubscribed', reason: 'one_click', opt_out_source: 'one_click' });
    const events = await outbound(mc.tenantId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'subscription.unsubscribed',
      payload: { list_id: mc.listId, subscriber_id: ben.id, email: ben.email, source: 'one_click', message_id: bens.messageId },
    });
    expect(Date.parse(events[0].payload.occurred_at)).toBe(optedOut.opted_out_at.getTime());

    // 4. The Member Center, not knowing yet, sends a full sync (later than the opt-out) with Ben active.
    const resync = await sync(mc, mc.listId, [ann, ben, cat], at(1_000));
    expect(resync.kept_unsubscribed).toBe(1);
    expect((await membership(mc, mc.listId, ben.id)).status).toBe('unsubscribed');
    const list = await mc.getList();
    expect(list.status).toBe(200);
    expect(list.json.members).toMatchObject({ total: 3, active: 2, unsubscribed: 1 });
    expect(list.json.last_sync).toMatchObject({ sync_id: expect.any(String), state: 'completed', kept_unsubscribed: 1 });

    // 5. The next send: Ben gets nothing, the others do.
    const second = await sendToList(mc, mc.listId, 'Issue 2');
    expect(recipients(second.got)).toEqual([`ann@${domain}`, `cat@${domain}`]);
    expect(second.job.counts).toMatchObject({ total: 2, sent: 2 });

    // 6. Neither an activation older than the opt-out nor a later preferences.updated restating
    //    him as active undoes it...
    const older = await mc.event('subscription.activated', ben, new Date(optedOut.opted_out_at.getTime() - 1));
    expect(older.json).toEqual({ status: 'accepted', applied: false });
    await mc.event('preferences.updated', { ...ben, preferences: { topic: 'news' } }, at(2_000));
    expect(await membership(mc, mc.listId, ben.id)).toMatchObject({ status: 'unsubscribed', opt_out_source: 'one_click' });
    expect(recipients((await sendToList(mc, mc.listId, 'Issue 3')).got)).toEqual([`ann@${domain}`, `cat@${domain}`]);

    // 7. ...an explicit re-subscription after it does: the next send reaches him again.
    const later = await mc.event('subscription.activated', ben, at(3_000));
    expect(later.json).toEqual({ status: 'accepted', applied: true });
    expect(await membership(mc, mc.listId, ben.id)).toMatchObject({ status: 'active', opted_out_at: null, opt_out_source: null });
    expect(recipients((await sendToList(mc, mc.listId, 'Issue 4')).got)).toEqual([`ann@${domain}`, `ben@${domain}`, `cat@${domain}`]);

    // A sync after the re-activation counts nothing kept; only the one opt-out was ever queued.
    expect((await sync(mc, mc.listId, [ann, ben, cat], at(4_000))).kept_unsubscribed).toBe(0);
    expect(await outbound(mc.tenantId)).toHaveLength(1);
  });

  it('the visible link: GET only shows the page; its form POST opts out with source "link", and a sync keeps it', async () => {
    const mc = await memberCenter(database.db, engine.baseUrl);
    const domain = 'link.test';
    const [dee, eli] = ['dee', 'eli'].map((n) => member(n, domain));
    await sync(mc, mc.listId, [dee, eli], at(-60_000));
    const { got } = await sendToList(mc, mc.listId, 'Link issue 1');
    const url = oneClickUrl(got.find((m) => m.envelopeTo[0] === dee.email)!);

    // A link scanner's GET changes nothing.
    const pageRes = await fetch(url);
    expect(pageRes.status).toBe(200);
    const html = await pageRes.text();
    expect((await membership(mc, mc.listId, dee.id)).status).toBe('active');
    // The browser submits the page's form: POST to the form's action, relative to the page.
    const action = new URL(html.match(/<form method="post" action="([^"]+)"/)![1].replace(/&amp;/g, '&'), url).toString();
    const confirm = await fetch(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }, body: 'List-Unsubscribe=One-Click' });
    expect(confirm.status).toBe(200);
    expect(await confirm.text()).toMatch(/You are unsubscribed/);
    expect(await membership(mc, mc.listId, dee.id)).toMatchObject({ status: 'unsubscribed', opt_out_source: 'link' });
    const [event] = await outbound(mc.tenantId);
    expect(event.payload).toMatchObject({ list_id: mc.listId, subscriber_id: dee.id, source: 'link' });

    expect((await sync(mc, mc.listId, [dee, eli], at(1_000))).kept_unsubscribed).toBe(1);
    expect(recipients((await sendToList(mc, mc.listId, 'Link issue 2')).got)).toEqual([`eli@${domain}`]);
  });
});

describe('POST /api/lists/{id}/members/{subscriber_id}/unsubscribe', () => {
  it('needs lists.manage, answers 404 for another tenant or a non-member, opts out with source "api", idempotently', async () => {
    const mc = await memberCenter(database.db, engine.baseUrl);
    const fay = member('fay', 'api.test');
    const gus = member('gus', 'api.test');
    await sync(mc, mc.listId, [fay, gus], at(-60_000));
    const manager = await issueToken(TEST_JWT_SECRET, { tenantId: mc.tenantId, scopes: [...DEFAULT_SCOPES, 'lists.manage'], ttl: '1h' });
    const path = (listId: string, subscriberId: string) => `/api/lists/${listId}/members/${subscriberId}/unsubscribe`;

    const denied = await call(engine.baseUrl, 'POST', path(mc.listId, fay.id), { token: mc.token });
    expect(denied.status).toBe(403);
    expect(denied.json).toMatchObject({ error: 'permission_denied', request_id: expect.any(String) });
    const other = await tenantWithToken(database.db, [...DEFAULT_SCOPES, 'lists.manage']);
    const foreign = await call(engine.baseUrl, 'POST', path(mc.listId, fay.id), { token: other.token });
    expect(foreign.status).toBe(404);
    expect(foreign.json).toMatchObject({ error: 'not_found', request_id: expect.any(String) });
    expect((await call(engine.baseUrl, 'POST', path(mc.listId, randomUUID()), { token: manager })).json.error).toBe('not_found');
    expect((await call(engine.baseUrl, 'POST', path(mc.listId, 'not-a-uuid'), { token: manager })).status).toBe(422);
    // None of the refusals wrote anything.
    expect((await membership(mc, mc.listId, fay.id)).status).toBe('active');
    expect(await outbound(mc.tenantId)).toHaveLength(0);

    const res = await call(engine.baseUrl, 'POST', path(mc.listId.toUpperCase(), fay.id), { token: manager });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      list_id: mc.listId,
      subscriber_id: fay.id,
      status: 'unsubscribed',
      changed: true,
      opted_out_at: expect.any(String),
      opt_out_source: 'api',
    });
    const again = await call(engine.baseUrl, 'POST', path(mc.listId, fay.id), { token: manager });
    expect(again.json).toMatchObject({ status: 'unsubscribed', changed: false, opted_out_at: res.json.opted_out_at, opt_out_source: 'api' });
    const events = await outbound(mc.tenantId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'subscription.unsubscribed', payload: { list_id: mc.listId, subscriber_id: fay.id, email: fay.email, source: 'api' } });
    expect(Date.parse(events[0].payload.occurred_at)).toBe(Date.parse(res.json.opted_out_at));
    expect(events[0].payload).not.toHaveProperty('message_id');

    expect((await sync(mc, mc.listId, [fay, gus], at(1_000))).kept_unsubscribed).toBe(1);
    expect((await membership(mc, mc.listId, fay.id)).status).toBe('unsubscribed');
    const page = await call(engine.baseUrl, 'GET', '/openapi.json');
    expect(page.json.paths['/api/lists/{id}/members/{subscriber_id}/unsubscribe']?.post).toBeDefined();
  });
});

describe('a complaint', () => {
  it('unsubscribes the address from every list of the tenant, queues one event per list, and the next syncs keep it', async () => {
    const mc = await memberCenter(database.db, engine.baseUrl);
    const domain = 'complaint.test';
    const [hal, ivy, jon] = ['hal', 'ivy', 'jon'].map((n) => member(n, domain));
    const listA = mc.listId;
    const listB = randomUUID();
    await sync(mc, listA, [hal, ivy], at(-60_000));
    await sync(mc, listB, [hal, jon], at(-60_000));
    // Another tenant with the same address stays untouched.
    const bystander = await memberCenter(database.db, engine.baseUrl);
    await sync(bystander, bystander.listId, [{ ...hal, id: randomUUID() }], at(-60_000));

    const { got } = await sendToList(mc, listA, 'Complaint issue 1');
    expect(recipients(got)).toEqual([`hal@${domain}`, `ivy@${domain}`]);
    const hals = got.find((m) => m.envelopeTo[0] === hal.email)!;

    // SES reports Hal's complaint (the contract's signed SES event).
    const complaint = await postSigned(engine.baseUrl, { event_type: 'complaint', message_id: hals.messageId, tenant_id: mc.tenantId, email: hal.email, occurred_at: new Date().toISOString() });
    expect(complaint).toMatchObject({ status: 200, json: { status: 'processed' } });

    for (const listId of [listA, listB]) {
      expect(await membership(mc, listId, hal.id)).toMatchObject({ status: 'unsubscribed', reason: 'complaint', opt_out_source: 'complaint' });
    }
    expect((await membership(mc, listA, ivy.id)).status).toBe('active');
    const events = await outbound(mc.tenantId);
    expect(events.map((e) => [e.type, e.payload.source, e.payload.subscriber_id, e.payload.message_id])).toEqual([
      ['subscription.unsubscribed', 'complaint', hal.id, hals.messageId],
      ['subscription.unsubscribed', 'complaint', hal.id, hals.messageId],
    ]);
    expect(events.map((e) => e.payload.list_id).sort()).toEqual([listA, listB].sort());
    expect(await outbound(bystander.tenantId)).toHaveLength(0);
    expect((await membership(bystander, bystander.listId, (await bystander.members()).keys().next().value!)).status).toBe('active');

    // A repeat of the same complaint changes nothing more.
    await postSigned(engine.baseUrl, { event_type: 'complaint', message_id: hals.messageId, tenant_id: mc.tenantId, email: hal.email, occurred_at: new Date().toISOString() });
    expect(await outbound(mc.tenantId)).toHaveLength(2);

    // The Member Center's next syncs list Hal as active on both lists: he stays unsubscribed.
    expect((await sync(mc, listA, [hal, ivy], at(1_000))).kept_unsubscribed).toBe(1);
    expect((await sync(mc, listB, [hal, jon], at(1_000))).kept_unsubscribed).toBe(1);
    expect((await mc.getList(listB)).json.last_sync.kept_unsubscribed).toBe(1);

    // The next sends, on both lists, do not even count him as a recipient (not merely suppressed).
    const again = await sendToList(mc, listA, 'Complaint issue 2');
    expect(recipients(again.got)).toEqual([`ivy@${domain}`]);
    expect(again.job.counts).toMatchObject({ total: 1, sent: 1, suppressed: 0 });
    const other = await sendToList(mc, listB, 'Complaint issue 2b');
    expect(recipients(other.got)).toEqual([`jon@${domain}`]);
    expect(other.job.counts).toMatchObject({ total: 1, sent: 1, suppressed: 0 });
  });
});
