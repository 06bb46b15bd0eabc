import { Resend } from 'resend';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { DEFAULT_SCOPES } from '../../src/auth/scopes.ts';
import { webhookHeaders } from '../../src/webhooks/signing.ts';
import { call, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';
import { startDnsServer, type TestDnsServer } from '../domains/dns-server.ts';

/** The real `resend` SDK against a running engine (API + dispatcher into a real SMTP sink). */
let database: TestDatabase;
let engine: TestEngine;
let sink: SmtpSink;
let dns: TestDnsServer;
let resend: Resend;
let prefixed: Resend;
let token: string;
let tenantId: string;
let key: string;

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await startSmtpSink();
  dns = await startDnsServer();
  engine = await startTestEngine(database.db, database.url, { smtpUrl: sink.url, env: { DNS_SERVERS: dns.address } });
  ({ token, tenantId } = await tenantWithToken(database.db));
  key = (await createApiKey(database.db, tenantId, DEFAULT_SCOPES, { environment: 'live' })).secret;
  // Resend's paths at our root, and the same layer under its own prefix.
  resend = new Resend(key, { baseUrl: engine.baseUrl });
  prefixed = new Resend(key, { baseUrl: `${engine.baseUrl}/compat/resend` });
});
afterAll(async () => {
  await engine?.close();
  await sink?.close();
  await dns?.close();
  await database?.drop();
});

let seq = 0;
const unique = (local: string) => `${local}-${++seq}@example.com`;
const received = (address: string) => sink.messages.filter((m) => m.envelopeTo.includes(address));
const arrived = (address: string) => until(() => received(address)[0], 10_000, `mail to ${address}`);
const addressesOf = (field: unknown) => (field && !Array.isArray(field) ? (field as { value: Array<{ address: string }> }).value.map((v) => v.address) : []);
const statuses = async (id: string) =>
  (await database.db.query<{ recipient: string; status: string; next_attempt_at: Date }>(
    'SELECT recipient, status, next_attempt_at FROM messages WHERE proxy_job_id = (SELECT proxy_job_id FROM messages WHERE id = $1) ORDER BY id', [id],
  )).rows;
const messageCount = async () => Number((await database.db.query('SELECT count(*) FROM messages WHERE tenant_id = $1', [tenantId])).rows[0].count);

describe('emails', () => {
  it('sends with to, cc, bcc, reply_to, tags and an attachment; the id is our message id', async () => {
    const [to, cc, bcc] = [unique('to'), unique('cc'), unique('bcc')];
    const { data, error } = await resend.emails.send({
      from: 'billing@acme.test', to: [to], cc, bcc: [bcc], replyTo: 'support@acme.test', subject: 'Your invoice',
      html: '<p>Invoice attached</p>', text: 'Invoice attached', tags: [{ name: 'kind', value: 'invoice' }],
      attachments: [{ filename: 'invoice.txt', content: Buffer.from('total: 42').toString('base64') }],
    });
    expect(error).toBeNull();
    const copies = await Promise.all([to, cc, bcc].map(arrived));
    for (const copy of copies) {
      expect(addressesOf(copy.parsed.to)).toEqual([to]);
      expect(addressesOf(copy.parsed.cc)).toEqual([cc]);
      expect(addressesOf(copy.parsed.replyTo)).toEqual(['support@acme.test']);
      expect(copy.parsed.subject).toBe('Your invoice');
      expect(copy.parsed.attachments.map((a) => [a.filename, a.content.toString()])).toEqual([['invoice.txt', 'total: 42']]);
    }
    expect(copies[2].envelopeTo).toEqual([bcc]);
    // The id is the To recipient's message in the native API.
    const native = await call(engine.baseUrl, 'GET', `/v1/messages/${data!.id}`, { token });
    expect(native.status, native.text).toBe(200);
    expect(native.json.subject).toBe('Your invoice');
    expect(copies[0].messageId).toBe(data!.id);

    const got = await resend.emails.get(data!.id);
    expect(got.error).toBeNull();
    expect(got.data).toMatchObject({ object: 'email', id: data!.id, from: 'billing@acme.test', to: [to], cc: [cc], bcc: [bcc], reply_to: ['support@acme.test'], subject: 'Your invoice' });
    expect(got.data!.tags).toEqual([{ name: 'kind', value: 'invoice' }]);
    await until(async () => (await resend.emails.get(data!.id)).data?.last_event === 'sent', 5000, 'last_event sent');
  });

  it('answers the same id for a replayed Idempotency-Key and refuses the key with another body', async () => {
    const to = unique('idem');
    const email = { from: 'billing@acme.test', to, subject: 'Once', text: 'only once' };
    const first = await resend.emails.send(email, { idempotencyKey: `k-${seq}` });
    const again = await resend.emails.send(email, { idempotencyKey: `k-${seq - 0}` });
    expect(first.error).toBeNull();
    expect(again.data!.id).toBe(first.data!.id);
    const other = await resend.emails.send({ ...email, text: 'changed' }, { idempotencyKey: `k-${seq}` });
    expect(other.error).toMatchObject({ statusCode: 409, name: 'invalid_idempotent_request' });
    await arrived(to);
    await new Promise((r) => setTimeout(r, 300));
    expect(received(to)).toHaveLength(1);
  });

  it('refuses what it cannot do, naming the field, and sends nothing', async () => {
    const before = await messageCount();
    const named = await resend.emails.send({ from: 'Acme <billing@acme.test>', to: unique('x'), subject: 'x', text: 'x' });
    expect(named.error).toMatchObject({ statusCode: 422, name: 'invalid_parameter' });
    expect(named.error!.message).toMatch(/^from: display names/);
    const topic = await resend.emails.send({ from: 'billing@acme.test', to: unique('x'), subject: 'x', text: 'x', topicId: 't1' });
    expect(topic.error).toMatchObject({ statusCode: 422, name: 'invalid_parameter' });
    expect(topic.error!.message).toMatch(/^topic_id: not supported/);
    const remote = await resend.emails.send({ from: 'billing@acme.test', to: unique('x'), subject: 'x', text: 'x', attachments: [{ filename: 'a.pdf', path: 'https://acme.test/a.pdf' }] });
    expect(remote.error!.message).toMatch(/^attachments\[0\]\.path/);
    const invalid = await resend.emails.send({ from: 'billing@acme.test', to: unique('x'), subject: 'x', text: 'x', scheduledAt: 'in 1 min' });
    expect(invalid.error).toMatchObject({ statusCode: 422, name: 'validation_error' });
    expect(await messageCount()).toBe(before);
  });

  it('answers Resend errors for a bad key, a missing scope and another tenant\'s id', async () => {
    const bad = await new Resend('se_live_not-a-key', { baseUrl: engine.baseUrl }).emails.send({ from: 'billing@acme.test', to: unique('x'), subject: 'x', text: 'x' });
    expect(bad.error).toMatchObject({ statusCode: 401, name: 'invalid_api_key' });
    const readOnly = (await createApiKey(database.db, tenantId, ['messages.view'], { environment: 'live' })).secret;
    const denied = await new Resend(readOnly, { baseUrl: engine.baseUrl }).emails.send({ from: 'billing@acme.test', to: unique('x'), subject: 'x', text: 'x' });
    expect(denied.error).toMatchObject({ statusCode: 403, name: 'restricted_api_key', message: 'missing scope: send' });

    const mine = await resend.emails.send({ from: 'billing@acme.test', to: unique('mine'), subject: 'x', text: 'x' });
    const other = await tenantWithToken(database.db, DEFAULT_SCOPES, 'other');
    const otherKey = (await createApiKey(database.db, other.tenantId, DEFAULT_SCOPES, { environment: 'live' })).secret;
    const stranger = await new Resend(otherKey, { baseUrl: engine.baseUrl }).emails.get(mine.data!.id);
    expect(stranger.error).toMatchObject({ statusCode: 404, name: 'not_found' });
    expect((await resend.emails.get('01890000-0000-7000-8000-000000000000')).error).toMatchObject({ statusCode: 404, name: 'not_found' });
  });

  it('moves and cancels a scheduled email (every copy of the send)', async () => {
    const [to, cc] = [unique('later'), unique('later-cc')];
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const { data } = await resend.emails.send({ from: 'billing@acme.test', to, cc, subject: 'Later', text: 'later', scheduledAt: at });
    expect((await resend.emails.get(data!.id)).data).toMatchObject({ last_event: 'scheduled', scheduled_at: at });
    const later = new Date(Date.now() + 7_200_000).toISOString();
    const moved = await resend.emails.update({ id: data!.id, scheduledAt: later });
    expect(moved).toMatchObject({ data: { object: 'email', id: data!.id }, error: null });
    expect((await statuses(data!.id)).map((r) => r.next_attempt_at.toISOString())).toEqual([later, later]);
    const cancelled = await prefixed.emails.cancel(data!.id);
    expect(cancelled.error).toBeNull();
    expect((await statuses(data!.id)).map((r) => r.status)).toEqual(['cancelled', 'cancelled']);
    expect((await resend.emails.get(data!.id)).data!.last_event).toBe('canceled');
    const twice = await resend.emails.cancel(data!.id);
    expect(twice.error).toMatchObject({ statusCode: 409, message: 'message was already cancelled' });
    const sent = await resend.emails.send({ from: 'billing@acme.test', to: unique('now'), subject: 'Now', text: 'now' });
    expect((await resend.emails.update({ id: sent.data!.id, scheduledAt: later })).error).toMatchObject({ statusCode: 409 });
  });
});

describe('batch', () => {
  it('strict (the default): sends every email, or none when one is invalid', async () => {
    const [a, b] = [unique('batch-a'), unique('batch-b')];
    const ok = await resend.batch.send([
      { from: 'billing@acme.test', to: a, subject: 'A', text: 'a' },
      { from: 'billing@acme.test', to: b, subject: 'B', html: '<p>b</p>' },
    ]);
    expect(ok.error).toBeNull();
    expect(ok.data!.data).toHaveLength(2);
    expect((await arrived(b)).parsed.subject).toBe('B');
    const before = await messageCount();
    const bad = await resend.batch.send([
      { from: 'billing@acme.test', to: unique('batch-c'), subject: 'C', text: 'c' },
      { from: 'Acme <billing@acme.test>', to: unique('batch-d'), subject: 'D', text: 'd' },
    ]);
    expect(bad.error).toMatchObject({ statusCode: 422, name: 'invalid_parameter' });
    expect(bad.error!.message).toMatch(/^\[1\] from: display names/);
    // Refused while sending (an unknown template), not by its shape: the first item is rolled back too.
    const late = await resend.batch.send([
      { from: 'billing@acme.test', to: unique('batch-e'), subject: 'E', text: 'e' },
      { from: 'billing@acme.test', to: unique('batch-f'), template: { id: 'no-such-template' } },
    ]);
    expect(late.error).toMatchObject({ statusCode: 404, name: 'not_found' });
    expect(late.error!.message).toMatch(/^\[1\] template no-such-template not found/);
    expect(await messageCount()).toBe(before);
  });

  it('permissive: sends the valid ones and lists the errors by index', async () => {
    const c = unique('perm-c');
    const res = await resend.batch.send(
      [{ from: 'billing@acme.test', to: c, subject: 'C', text: 'c' }, { from: 'billing@acme.test', to: unique('perm-d'), subject: 'D', text: 'd', topicId: 'x' }],
      { batchValidation: 'permissive' },
    );
    expect(res.error).toBeNull();
    expect(res.data!.data).toHaveLength(1);
    expect((res.data as unknown as { errors: unknown[] }).errors).toEqual([{ index: 1, message: 'topic_id: not supported by Send Engine' }]);
    await arrived(c);
  });
});

describe('domains', () => {
  it('creates, gets, lists, verifies against DNS and deletes; the id is the native domain id', async () => {
    const created = await resend.domains.create({ name: 'mail.resend-compat.test' });
    expect(created.error).toBeNull();
    expect(created.data).toMatchObject({ name: 'mail.resend-compat.test', status: 'not_started' });
    const records = created.data!.records;
    expect(records.map((r) => r.record)).toEqual(expect.arrayContaining(['DKIM', 'SPF']));
    const native = await call(engine.baseUrl, 'GET', `/v1/domains/${created.data!.id}`, { token });
    expect(native.status).toBe(200);
    for (const r of records) dns.add(r.name, r.type === 'MX' ? { type: 'MX', value: r.value, priority: r.priority ?? 10 } : { type: r.type as 'TXT' | 'CNAME', value: r.value });
    expect((await resend.domains.verify(created.data!.id)).data).toEqual({ object: 'domain', id: created.data!.id });
    expect((await resend.domains.get(created.data!.id)).data).toMatchObject({ object: 'domain', status: 'verified' });
    const list = await prefixed.domains.list();
    expect(list.data).toMatchObject({ object: 'list', has_more: false });
    expect(list.data!.data.map((d) => d.id)).toContain(created.data!.id);
    expect((await resend.domains.remove(created.data!.id)).data).toEqual({ object: 'domain', id: created.data!.id, deleted: true });
    expect((await resend.domains.get(created.data!.id)).error).toMatchObject({ statusCode: 404, name: 'not_found' });
  });

  it('refuses per-domain settings by name, and a duplicate', async () => {
    const region = await resend.domains.create({ name: 'eu.resend-compat.test', region: 'eu-west-1' });
    expect(region.error).toMatchObject({ statusCode: 422, name: 'invalid_parameter' });
    expect(region.error!.message).toMatch(/^region: /);
    await resend.domains.create({ name: 'dup.resend-compat.test' });
    const dup = await resend.domains.create({ name: 'dup.resend-compat.test' });
    expect(dup.error).toMatchObject({ statusCode: 409 });
    expect((await resend.domains.list({ after: 'x' })).error!.message).toMatch(/^after: /);
  });
});

describe('templates', () => {
  it('creates, reads by id and alias, lists, updates, publishes, sends with and removes a template', async () => {
    const created = await resend.templates.create({ name: 'Order shipped', alias: 'order-shipped', subject: 'Order {{ order }} shipped', html: '<p>On its way, {{ name }}</p>' });
    expect(created.error).toBeNull();
    const id = created.data!.id;
    expect((await call(engine.baseUrl, 'GET', `/v1/templates/${id}`, { token })).json).toMatchObject({ slug: 'order-shipped', version: 1 });
    expect((await resend.templates.get('order-shipped')).data).toMatchObject({ object: 'template', id, alias: 'order-shipped', status: 'published', subject: 'Order {{ order }} shipped' });
    expect((await resend.templates.list()).data!.data.map((t) => t.id)).toContain(id);
    expect((await resend.templates.update(id, { subject: 'Order {{ order }} is on its way' })).error).toBeNull();
    expect((await resend.templates.publish(id)).data).toEqual({ object: 'template', id });
    const native = await call(engine.baseUrl, 'GET', `/v1/templates/${id}`, { token });
    expect(native.json).toMatchObject({ version: 2, html: '<p>On its way, {{ name }}</p>' });

    const to = unique('templated');
    const sent = await resend.emails.send({ from: 'shop@acme.test', to, template: { id: 'order-shipped', variables: { order: 'A-7', name: 'Ada' } } });
    expect(sent.error).toBeNull();
    const mail = await arrived(to);
    expect(mail.parsed.subject).toBe('Order A-7 is on its way');
    expect(mail.parsed.html).toContain('On its way, Ada');

    expect((await resend.templates.remove(id)).data).toEqual({ object: 'template', id, deleted: true });
    expect((await resend.templates.get(id)).error).toMatchObject({ statusCode: 404, name: 'not_found' });
  });

  it('refuses a template sender or declared variables by name', async () => {
    const from = await resend.templates.create({ name: 'With sender', subject: 'x', html: '<p>x</p>', from: 'shop@acme.test' });
    expect(from.error).toMatchObject({ statusCode: 422, name: 'invalid_parameter' });
    expect(from.error!.message).toMatch(/^from: /);
    const vars = await resend.templates.create({ name: 'With variables', subject: 'x', html: '<p>{{ a }}</p>', variables: [{ key: 'a', type: 'string' }] });
    expect(vars.error!.message).toMatch(/^variables: /);
  });
});

describe('audiences, contacts and broadcasts', () => {
  it('creates an audience (our list), adds, reads, updates and removes contacts, and sends a broadcast to the subscribed ones', async () => {
    const manager = new Resend((await createApiKey(database.db, tenantId, [...DEFAULT_SCOPES, 'lists.manage'], { environment: 'live' })).secret, { baseUrl: engine.baseUrl });
    const audience = await manager.audiences.create({ name: 'Newsletter' });
    expect(audience.error).toBeNull();
    const listId = audience.data!.id;
    expect((await call(engine.baseUrl, 'GET', `/v1/lists/${listId}`, { token })).json).toMatchObject({ id: listId, name: 'Newsletter', owner: 'api' });
    expect((await manager.audiences.get(listId)).data).toMatchObject({ id: listId, name: 'Newsletter' });
    expect((await manager.audiences.list()).data!.data.map((a) => a.id)).toContain(listId);

    const [ada, bob, cy] = [unique('ada'), unique('bob'), unique('cy')];
    const created = await manager.contacts.create({ audienceId: listId, email: ada, firstName: 'Ada' });
    expect(created.error).toBeNull();
    await manager.contacts.create({ audienceId: listId, email: bob, firstName: 'Bob' });
    await manager.contacts.create({ audienceId: listId, email: cy });
    const dup = await manager.contacts.create({ audienceId: listId, email: ada });
    expect(dup.error).toMatchObject({ statusCode: 409 });
    expect((await manager.contacts.get({ audienceId: listId, email: ada })).data).toMatchObject({ id: created.data!.id, first_name: 'Ada', unsubscribed: false });
    expect((await manager.contacts.update({ audienceId: listId, email: bob, unsubscribed: true })).error).toBeNull();
    expect((await manager.contacts.get({ audienceId: listId, email: bob })).data).toMatchObject({ unsubscribed: true });
    expect((await manager.contacts.remove({ audienceId: listId, email: cy })).error).toBeNull();
    expect((await manager.contacts.get({ audienceId: listId, email: cy })).error).toMatchObject({ statusCode: 404, name: 'not_found' });
    const listed = await manager.contacts.list({ audienceId: listId });
    expect(listed.data!.data.map((c) => c.email).sort()).toEqual([ada, bob].sort());
    // Contacts without an audience have no counterpart here: refused, naming what to give.
    const global = await manager.contacts.create({ email: unique('nolist') });
    expect(global.error).toMatchObject({ statusCode: 422, name: 'invalid_parameter' });
    expect(global.error!.message).toMatch(/^audienceId: /);

    const broadcast = await manager.broadcasts.create({ audienceId: listId, name: 'Launch', from: 'news@acme.test', subject: 'Hello {{ contact.first_name }}', html: '<p>Launch day</p>', text: 'Launch day' });
    expect(broadcast.error).toBeNull();
    const campaignId = broadcast.data!.id;
    expect((await call(engine.baseUrl, 'GET', `/v1/campaigns/${campaignId}`, { token })).json).toMatchObject({ id: campaignId, status: 'draft', list_id: listId });
    expect((await manager.broadcasts.get(campaignId)).data).toMatchObject({ status: 'draft', name: 'Launch' });
    expect((await manager.broadcasts.send(campaignId)).data).toEqual({ id: campaignId });
    const mail = await arrived(ada);
    expect(mail.parsed.subject).toBe('Hello Ada');
    expect(mail.raw.toString('latin1').split('\r\n\r\n')[0]).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click/im);
    await until(async () => (await manager.broadcasts.get(campaignId)).data?.status === 'sent', 15_000, 'broadcast sent');
    expect(received(bob)).toEqual([]);
    expect((await manager.broadcasts.send(campaignId)).error).toMatchObject({ statusCode: 409 });
    expect((await manager.audiences.remove(listId)).data).toMatchObject({ id: listId, deleted: true });
  });

  it('refuses what broadcasts and contacts cannot carry, and needs lists.manage to write', async () => {
    const readOnly = await resend.audiences.create({ name: 'Nope' });
    expect(readOnly.error).toMatchObject({ statusCode: 403, name: 'restricted_api_key', message: 'missing scope: lists.manage' });
    const noAudience = await resend.broadcasts.create({ from: 'news@acme.test', subject: 'x', html: '<p>x</p>' } as never);
    expect(noAudience.error!.message).toMatch(/^segment_id: /);
    const preview = await resend.broadcasts.create({ audienceId: '01890000-0000-7000-8000-000000000000', from: 'news@acme.test', subject: 'x', html: '<p>x</p>', previewText: 'p' });
    expect(preview.error).toMatchObject({ statusCode: 422, name: 'invalid_parameter' });
    expect(preview.error!.message).toMatch(/^preview_text: /);
  });

  it('schedules a broadcast at creation (send: true) and cancels it', async () => {
    const manager = new Resend((await createApiKey(database.db, tenantId, [...DEFAULT_SCOPES, 'lists.manage'], { environment: 'live' })).secret, { baseUrl: `${engine.baseUrl}/compat/resend` });
    const audience = await manager.audiences.create({ name: 'Later' });
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const b = await manager.broadcasts.create({ audienceId: audience.data!.id, from: 'news@acme.test', subject: 'Later', text: 'later', send: true, scheduledAt: at });
    expect(b.error).toBeNull();
    expect((await manager.broadcasts.get(b.data!.id)).data).toMatchObject({ status: 'queued', scheduled_at: at });
    expect((await manager.broadcasts.cancel(b.data!.id)).data).toEqual({ object: 'broadcast', id: b.data!.id });
    expect((await manager.broadcasts.get(b.data!.id)).data!.status).toBe('canceled');
    expect((await manager.broadcasts.get('01890000-0000-7000-8000-000000000000')).error).toMatchObject({ statusCode: 404, name: 'not_found' });
  });
});

describe('webhooks', () => {
  it('creates, gets, lists, updates and removes an endpoint with Resend event names', async () => {
    const created = await resend.webhooks.create({ endpoint: 'https://hooks.acme.test/resend', events: ['email.delivered', 'email.bounced'] });
    expect(created.error).toBeNull();
    expect(created.data!.signing_secret).toMatch(/^whsec_/);
    const native = await call(engine.baseUrl, 'GET', `/v1/webhook-endpoints/${created.data!.id}`, { token });
    expect(native.json.event_types).toEqual(['message.delivered', 'message.bounced']);
    expect((await resend.webhooks.get(created.data!.id)).data).toMatchObject({ object: 'webhook', endpoint: 'https://hooks.acme.test/resend', status: 'enabled', events: ['email.delivered', 'email.bounced'] });
    expect((await resend.webhooks.list()).data!.data.map((w) => w.id)).toContain(created.data!.id);
    expect((await resend.webhooks.update(created.data!.id, { status: 'disabled', events: ['email.opened'] })).error).toBeNull();
    expect((await resend.webhooks.get(created.data!.id)).data).toMatchObject({ status: 'disabled', events: ['email.opened'] });
    expect((await resend.webhooks.remove(created.data!.id)).data).toEqual({ object: 'webhook', id: created.data!.id, deleted: true });
    expect((await resend.webhooks.get(created.data!.id)).error).toMatchObject({ statusCode: 404, name: 'not_found' });
  });

  it('signs deliveries so that the SDK\'s webhooks.verify accepts them with the secret it was given', async () => {
    const created = await resend.webhooks.create({ endpoint: 'https://hooks.acme.test/verify', events: ['email.sent'] });
    const body = JSON.stringify({ type: 'message.sent', data: { message_id: 'x' } });
    // The headers the delivery worker sends (src/webhooks/worker.ts).
    const h = webhookHeaders([created.data!.signing_secret], 'evt_1', body);
    const headers = { id: h['webhook-id'], timestamp: h['webhook-timestamp'], signature: h['webhook-signature'] };
    expect(resend.webhooks.verify({ payload: body, headers, webhookSecret: created.data!.signing_secret })).toMatchObject({ type: 'message.sent' });
    expect(() => resend.webhooks.verify({ payload: body.replace('x', 'y'), headers, webhookSecret: created.data!.signing_secret })).toThrow();
  });

  it('refuses an event we do not emit, naming it', async () => {
    const res = await resend.webhooks.create({ endpoint: 'https://hooks.acme.test/r2', events: ['email.sent', 'contact.created'] });
    expect(res.error).toMatchObject({ statusCode: 422, name: 'invalid_parameter' });
    expect(res.error!.message).toMatch(/^events\[1\]: "contact.created"/);
  });
});

describe('the root', () => {
  it('serves the layer the credential header names, and never shadows the native routes', async () => {
    const id = '01890000-0000-7000-8000-000000000001';
    const asResend = await call(engine.baseUrl, 'GET', `/webhooks/${id}`, { headers: { authorization: `Bearer ${key}` } });
    expect(asResend.status).toBe(404);
    expect(asResend.json).toMatchObject({ statusCode: 404, name: 'not_found', request_id: asResend.headers.get('x-request-id') });
    const asPostmark = await call(engine.baseUrl, 'GET', `/webhooks/${id}`, { headers: { 'x-postmark-server-token': key } });
    expect(asPostmark.json).toMatchObject({ ErrorCode: 404, request_id: asPostmark.headers.get('x-request-id') });
    // Both layers have GET /templates: each answers its own shape for its own header.
    expect((await call(engine.baseUrl, 'GET', '/templates', { headers: { authorization: `Bearer ${key}` } })).json).toMatchObject({ object: 'list', data: expect.any(Array) });
    expect((await call(engine.baseUrl, 'GET', '/templates', { headers: { 'x-postmark-server-token': key } })).json).toMatchObject({ TotalCount: expect.any(Number), Templates: expect.any(Array) });
    // Native paths under /webhooks keep their own handlers and error body.
    const ses = await call(engine.baseUrl, 'POST', '/webhooks/ses', { body: {}, headers: { authorization: `Bearer ${key}` } });
    expect(ses.json).toMatchObject({ error: expect.any(String), request_id: ses.headers.get('x-request-id') });
    const lists = await call(engine.baseUrl, 'POST', '/webhooks/lists/full-sync', { body: {} });
    expect(lists.json).toMatchObject({ error: expect.any(String) });
    expect((await call(engine.baseUrl, 'GET', '/v1/messages', { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    // A path no layer has is the native 404; under the prefix it is Resend's.
    expect((await call(engine.baseUrl, 'GET', '/nothing-here', { token })).json).toMatchObject({ error: 'not_found' });
    expect((await call(engine.baseUrl, 'GET', '/compat/resend/nothing-here', { token })).json).toMatchObject({ statusCode: 404, name: 'not_found' });
  });
});
