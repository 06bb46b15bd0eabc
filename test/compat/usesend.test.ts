import { UseSend } from 'usesend-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { DEFAULT_SCOPES } from '../../src/auth/scopes.ts';
import { call, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';
import { startDnsServer, type TestDnsServer } from '../domains/dns-server.ts';

/**
 * useSend's own SDK (usesend-js, pinned) against the running engine: its base URL and one of our
 * API keys are all that change. Mail is checked in a real SMTP sink, domains in a real DNS server.
 */
let database: TestDatabase;
let engine: TestEngine;
let sink: SmtpSink;
let dns: TestDnsServer;
let usesend: UseSend;
let other: UseSend;
let tenantToken: string;

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await startSmtpSink();
  dns = await startDnsServer();
  engine = await startTestEngine(database.db, database.url, { smtpUrl: sink.url, env: { DNS_SERVERS: dns.address, RETURN_PATH_MX: 'mx.send-engine.test', SPF_IP4: '127.0.0.1' } });
  const tenant = await tenantWithToken(database.db);
  tenantToken = tenant.token;
  const key = await createApiKey(database.db, tenant.tenantId, [...DEFAULT_SCOPES, 'analytics.search.recipients', 'lists.manage'], { environment: 'live' });
  usesend = new UseSend(key.secret, engine.baseUrl);
  const stranger = await tenantWithToken(database.db, undefined, 'other tenant');
  other = new UseSend((await createApiKey(database.db, stranger.tenantId, [...DEFAULT_SCOPES, 'lists.manage'], { environment: 'live' })).secret, engine.baseUrl);
});
afterAll(async () => {
  await engine?.close();
  await sink?.close();
  await dns?.close();
  await database?.drop();
});

let seq = 0;
const unique = (local: string) => `${local}-${++seq}@example.com`;
const arrived = (address: string) => until(() => sink.messages.find((m) => m.envelopeTo.includes(address)), 10_000, `mail to ${address}`);
const addresses = (a: { value: Array<{ address?: string }> } | Array<unknown> | undefined) => (a && !Array.isArray(a) ? a.value.map((v) => v.address) : []);
const count = async (table: string) => Number((await database.db.query(`SELECT count(*) FROM ${table}`)).rows[0].count);
/** usesend-js hands back useSend's error body whole as `error`. */
const errorOf = (e: unknown) => ((e as { error?: unknown }).error ?? e) as { code: string; message: string; reason: string };

describe('emails', () => {
  it('sends with to, cc, bcc, replyTo and an attachment: the copies arrive as addressed', async () => {
    const [to, cc, bcc] = [unique('to'), unique('cc'), unique('bcc')];
    const { data, error } = await usesend.emails.send({
      to, cc: [cc], bcc, replyTo: 'support@acme.test', from: 'hello@acme.test', subject: 'Receipt', html: '<p>Thanks</p>', text: 'Thanks',
      attachments: [{ filename: 'receipt.txt', content: Buffer.from('total: 10 EUR').toString('base64') }],
    });
    expect(error).toBeNull();
    expect(data!.emailId!).toMatch(/^[0-9a-f-]{36}$/);
    const copies = await Promise.all([to, cc, bcc].map(arrived));
    for (const copy of copies) {
      expect(addresses(copy.parsed.to)).toEqual([to]);
      expect(addresses(copy.parsed.cc)).toEqual([cc]);
      expect(copy.parsed.replyTo?.value.map((v) => v.address)).toEqual(['support@acme.test']);
      expect(copy.parsed.subject).toBe('Receipt');
      expect(copy.parsed.attachments.map((a) => [a.filename, a.content.toString()])).toEqual([['receipt.txt', 'total: 10 EUR']]);
      expect(copy.raw.toString('latin1').split('\r\n\r\n')[0]).not.toContain(bcc);
    }
    expect(copies[2].envelopeTo).toEqual([bcc]);

    // The id is the native send's job id: its messages carry it.
    const { rows } = await database.db.query('SELECT recipient FROM messages WHERE proxy_job_id = $1 ORDER BY id', [data!.emailId!]);
    expect(rows.map((r) => r.recipient)).toEqual([to, cc, bcc]);
  });

  it('Idempotency-Key: the same body answers the same emailId and sends once; another body is 409 NOT_UNIQUE', async () => {
    const to = unique('idem');
    const email = { to, from: 'hello@acme.test', subject: 'Once', text: 'once' };
    const first = await usesend.emails.send(email, { idempotencyKey: `order-${seq}` });
    const again = await usesend.emails.send(email, { idempotencyKey: `order-${seq}` });
    expect(again.data!.emailId!).toBe(first.data!.emailId!);
    const changed = await usesend.emails.send({ ...email, subject: 'Twice' }, { idempotencyKey: `order-${seq}` });
    expect(changed.data).toBeNull();
    expect(errorOf(changed.error)).toMatchObject({ code: 'NOT_UNIQUE', reason: 'idempotency_conflict' });
    await arrived(to);
    expect(await count(`messages WHERE recipient = '${to}'`)).toBe(1);
  });

  it('refuses what it cannot do or what is invalid, naming the field, and writes nothing', async () => {
    const before = await count('messages');
    const noSubject = await usesend.emails.send({ to: unique('x'), from: 'hello@acme.test', html: '<p>x</p>' } as never);
    expect(errorOf(noSubject.error)).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('subject') });
    const inReply = await usesend.emails.send({ to: unique('x'), from: 'hello@acme.test', subject: 's', text: 't', inReplyToId: 'abc' });
    expect(errorOf(inReply.error)).toMatchObject({ code: 'BAD_REQUEST', reason: 'unsupported_field', message: expect.stringContaining('inReplyToId') });
    const unknown = await usesend.emails.send({ to: unique('x'), from: 'hello@acme.test', subject: 's', text: 't', trackOpens: true } as never);
    expect(errorOf(unknown.error)).toMatchObject({ code: 'BAD_REQUEST', message: 'trackOpens is not supported by this engine' });
    const badAddress = await usesend.emails.send({ to: ['ok@example.com', 'not-an-address'], from: 'hello@acme.test', subject: 's', text: 't' });
    expect(errorOf(badAddress.error)).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('to.1') });
    const unknownTemplate = await usesend.emails.send({ to: unique('x'), from: 'hello@acme.test', templateId: 'no-such-template' });
    expect(errorOf(unknownTemplate.error)).toMatchObject({ code: 'NOT_FOUND' });
    expect(await count('messages')).toBe(before);
  });

  it('answers 401 UNAUTHORIZED with a wrong key, and the X-Request-Id header on errors', async () => {
    const res = await new UseSend('se_live_wrong', engine.baseUrl).emails.send({ to: 'a@example.com', from: 'hello@acme.test', subject: 's', text: 't' });
    expect(errorOf(res.error)).toMatchObject({ code: 'UNAUTHORIZED' });
    const raw = await call(engine.baseUrl, 'GET', '/api/v1/emails/nope', { token: tenantToken });
    expect(raw.status).toBe(404);
    expect(raw.json).toMatchObject({ error: { code: 'NOT_FOUND' }, request_id: raw.headers.get('x-request-id') });
  });

  it('sends a stored template with variables', async () => {
    const template = await call(engine.baseUrl, 'POST', '/v1/templates', { token: tenantToken, body: { name: 'Welcome', subject: 'Welcome {{ name }}', html: '<p>Hi {{ name }}</p>' } });
    expect(template.status).toBe(201);
    const to = unique('tpl');
    const { data } = await usesend.emails.send({ to, from: 'hello@acme.test', templateId: template.json.id, variables: { name: 'Ada' } });
    expect(data?.emailId).toBeTruthy();
    expect((await arrived(to)).parsed.subject).toBe('Welcome Ada');
  });

  it('batch: every email sent; one refused item refuses the batch and queues nothing', async () => {
    const [a, b] = [unique('batch-a'), unique('batch-b')];
    const { data, error } = await usesend.emails.batch([
      { to: a, from: 'hello@acme.test', subject: 'A', text: 'a' },
      { to: b, from: 'hello@acme.test', subject: 'B', text: 'b' },
    ]);
    expect(error).toBeNull();
    expect(data).toHaveLength(2);
    expect((await arrived(a)).parsed.subject).toBe('A');
    expect((await arrived(b)).parsed.subject).toBe('B');

    const before = await count('messages');
    const refused = await usesend.emails.batch([
      { to: unique('batch-c'), from: 'hello@acme.test', subject: 'C', text: 'c' },
      { to: unique('batch-d'), from: 'hello@acme.test', templateId: 'missing-template' },
    ]);
    expect(refused.data).toBeNull();
    expect(errorOf(refused.error).code).toBe('NOT_FOUND');
    expect(await count('messages')).toBe(before);
  });

  it('get: the email with its recipients, status and events; another tenant gets 404', async () => {
    const to = unique('get');
    const { data } = await usesend.emails.send({ to, cc: unique('get-cc'), from: 'hello@acme.test', subject: 'Tracked', html: '<p>x</p>' });
    await arrived(to);
    const got = await until(async () => {
      const r = await usesend.emails.get(data!.emailId!);
      return r.data && (r.data as { latestStatus?: string }).latestStatus === 'SENT' ? r.data : undefined;
    }, 10_000, 'SENT');
    expect(got).toMatchObject({ id: data!.emailId!, to: [to], from: 'hello@acme.test', subject: 'Tracked', html: '<p>x</p>', text: null });
    expect(got.emailEvents.map((e: { status: string }) => e.status)).toEqual(expect.arrayContaining(['QUEUED', 'SENT']));
    const stranger = await other.emails.get(data!.emailId!);
    expect(errorOf(stranger.error)).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('list: newest first with the total count (GET /api/v1/emails; the SDK has no call for it)', async () => {
    const res = await call(engine.baseUrl, 'GET', '/api/v1/emails?page=1&limit=2', { token: tenantToken });
    expect(res.status).toBe(200);
    expect(res.json.data).toHaveLength(2);
    expect(res.json.count).toBeGreaterThan(2);
    expect(Date.parse(res.json.data[0].createdAt)).toBeGreaterThanOrEqual(Date.parse(res.json.data[1].createdAt));
    const refused = await call(engine.baseUrl, 'GET', '/api/v1/emails?domainId=1', { token: tenantToken });
    expect(refused.status).toBe(400);
    expect(refused.json.error).toMatchObject({ code: 'BAD_REQUEST', reason: 'unsupported_field' });
  });

  it('scheduled: SCHEDULED, moved with update, CANCELLED with cancel (twice: 409 CONFLICT), never sent', async () => {
    const to = unique('sched');
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const { data } = await usesend.emails.send({ to, from: 'hello@acme.test', subject: 'Later', text: 'later', scheduledAt: at });
    const id = data!.emailId!;
    expect((await usesend.emails.get(id)).data).toMatchObject({ latestStatus: 'SCHEDULED', scheduledAt: at });
    const later = new Date(Date.now() + 7_200_000).toISOString();
    expect((await usesend.emails.update(id, { scheduledAt: later })).data).toEqual({ emailId: id });
    const { rows } = await database.db.query('SELECT next_attempt_at FROM messages WHERE proxy_job_id = $1', [id]);
    expect(rows[0].next_attempt_at.toISOString()).toBe(later);
    expect((await usesend.emails.cancel(id)).data).toEqual({ emailId: id });
    expect((await usesend.emails.get(id)).data).toMatchObject({ latestStatus: 'CANCELLED' });
    expect(errorOf((await usesend.emails.cancel(id)).error)).toMatchObject({ code: 'CONFLICT', reason: 'already_cancelled' });
    expect(errorOf((await usesend.emails.update(id, { scheduledAt: later })).error)).toMatchObject({ code: 'CONFLICT' });
    expect(errorOf((await other.emails.cancel(id)).error)).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('answers under /compat/usesend as well', async () => {
    const prefixed = new UseSend((await createApiKey(database.db, (await tenantWithToken(database.db)).tenantId, DEFAULT_SCOPES, { environment: 'live' })).secret, `${engine.baseUrl}/compat/usesend`);
    const to = unique('prefixed');
    const { data, error } = await prefixed.emails.send({ to, from: 'hello@acme.test', subject: 'Prefixed', text: 'x' });
    expect(error).toBeNull();
    expect(data!.emailId!).toBeTruthy();
    await arrived(to);
  });
});

describe('domains', () => {
  let id: string;
  const name = 'mail.usesend.test';

  it('create answers the records to publish; get and list show it; another tenant gets 404', async () => {
    const { data, error } = await usesend.domains.create({ name, region: 'us-east-1' });
    expect(error).toBeNull();
    expect(data).toMatchObject({ name, status: 'NOT_STARTED', region: 'us-east-1', publicKey: expect.stringMatching(/^MIIB/) });
    expect(data!.dnsRecords.map((r) => r.type)).toEqual(expect.arrayContaining(['TXT', 'MX']));
    id = String(data!.id);
    expect((await usesend.domains.get(id as never)).data).toMatchObject({ id, name });
    expect((await usesend.domains.list()).data!.map((d) => d.id)).toContain(id);
    expect(errorOf((await other.domains.get(id as never)).error)).toMatchObject({ code: 'NOT_FOUND' });
    const sendOnly = new UseSend((await createApiKey(database.db, (await tenantWithToken(database.db)).tenantId, ['send'], { environment: 'live' })).secret, engine.baseUrl);
    expect(errorOf((await sendOnly.domains.list()).error)).toMatchObject({ code: 'FORBIDDEN', message: 'missing scope: domains.manage' });
    const invalid = await usesend.domains.create({ name: 'not a domain', region: 'us-east-1' });
    expect(errorOf(invalid.error).code).toBe('UNPROCESSABLE_CONTENT');
  });

  it('verify checks DNS: SUCCESS once the records are published', async () => {
    const before = await usesend.domains.verify(id as never);
    expect(before.error).toBeNull();
    expect((await usesend.domains.get(id as never)).data!.status).not.toBe('SUCCESS');
    const { data } = await usesend.domains.get(id as never);
    for (const r of data!.dnsRecords) {
      if (r.type === 'MX') dns.add(r.name, { type: 'MX', value: r.value, priority: Number(r.priority ?? 10) });
      else dns.add(r.name, { type: r.type as 'TXT', value: r.value });
    }
    const after = await usesend.domains.verify(id as never);
    expect(after.data!.message).toContain('verified');
    expect((await usesend.domains.get(id as never)).data).toMatchObject({ status: 'SUCCESS', dkimStatus: 'SUCCESS' });
  });

  it('delete removes it; then 404', async () => {
    expect((await other.domains.delete(id as never)).error).toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect((await usesend.domains.delete(id as never)).data).toMatchObject({ id, success: true });
    expect(errorOf((await usesend.domains.get(id as never)).error)).toMatchObject({ code: 'NOT_FOUND' });
    expect(errorOf((await usesend.domains.verify(id as never)).error)).toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('contact books and contacts', () => {
  let bookId: string;

  it('contact books: create, get, list, update, delete; what a list cannot hold is refused; another tenant gets 404', async () => {
    const { data, error } = await usesend.contactBooks.create({ name: 'Newsletter', doubleOptInEnabled: false });
    expect(error).toBeNull();
    expect(data).toMatchObject({ name: 'Newsletter', doubleOptInEnabled: false });
    bookId = data!.id;
    // The book is a list of the native API.
    expect((await call(engine.baseUrl, 'GET', `/v1/lists/${bookId}`, { token: tenantToken })).json).toMatchObject({ id: bookId, name: 'Newsletter', owner: 'api' });
    expect((await usesend.contactBooks.get(bookId)).data).toMatchObject({ id: bookId, _count: { contacts: 0 } });
    expect((await usesend.contactBooks.list()).data!.map((b) => b.id)).toContain(bookId);
    expect((await usesend.contactBooks.update(bookId, { name: 'Weekly' })).data).toMatchObject({ id: bookId, name: 'Weekly' });
    expect(errorOf((await usesend.contactBooks.create({ name: 'x', emoji: '📙' })).error)).toMatchObject({ code: 'BAD_REQUEST', reason: 'unsupported_field', message: expect.stringContaining('emoji') });
    expect(errorOf((await usesend.contactBooks.create({} as never)).error)).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('name') });
    expect(errorOf((await other.contactBooks.get(bookId)).error)).toMatchObject({ code: 'NOT_FOUND' });
    expect(errorOf((await other.contactBooks.update(bookId, { name: 'mine' })).error)).toMatchObject({ code: 'NOT_FOUND' });
    expect(errorOf((await other.contactBooks.delete(bookId)).error)).toMatchObject({ code: 'NOT_FOUND' });
    const doomed = (await usesend.contactBooks.create({ name: 'Doomed' })).data!.id;
    expect((await usesend.contactBooks.delete(doomed)).data).toMatchObject({ id: doomed, success: true });
    expect(errorOf((await usesend.contactBooks.get(doomed)).error)).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('contacts: create, get, list, update, upsert, delete', async () => {
    const email = unique('contact');
    const created = await usesend.contacts.create(bookId, { email, firstName: 'Ada', properties: { plan: 'pro' } });
    expect(created.error).toBeNull();
    const contactId = created.data!.contactId!;
    expect(errorOf((await usesend.contacts.create(bookId, { email })).error)).toMatchObject({ code: 'CONFLICT', reason: 'contact_exists' });
    expect((await usesend.contacts.get(bookId, contactId)).data).toMatchObject({ id: contactId, email, firstName: 'Ada', subscribed: true, properties: { plan: 'pro' }, contactBookId: bookId });
    const listed = await call(engine.baseUrl, 'GET', `/api/v1/contactBooks/${bookId}/contacts?emails=${encodeURIComponent(email)}`, { token: tenantToken });
    expect(listed.json.map((c: { id: string }) => c.id)).toEqual([contactId]);
    expect((await call(engine.baseUrl, 'GET', `/api/v1/contactBooks/${bookId}/contacts?ids=${contactId}`, { token: tenantToken })).json.error).toMatchObject({ code: 'BAD_REQUEST', reason: 'unsupported_field' });
    expect((await usesend.contacts.update(bookId, contactId, { lastName: 'Lovelace' })).data).toEqual({ contactId });
    expect((await usesend.contacts.get(bookId, contactId)).data).toMatchObject({ firstName: 'Ada', lastName: 'Lovelace' });
    expect((await usesend.contacts.upsert(bookId, contactId, { email, subscribed: false })).data).toEqual({ contactId });
    expect((await usesend.contacts.get(bookId, contactId)).data).toMatchObject({ subscribed: false });
    const newcomer = unique('upserted');
    const upserted = await usesend.contacts.upsert(bookId, 'new', { email: newcomer });
    expect((await usesend.contacts.get(bookId, upserted.data!.contactId)).data).toMatchObject({ email: newcomer, subscribed: true });
    expect(errorOf((await other.contacts.get(bookId, contactId)).error)).toMatchObject({ code: 'NOT_FOUND' });
    expect(errorOf((await other.contacts.update(bookId, contactId, { firstName: 'x' })).error)).toMatchObject({ code: 'NOT_FOUND' });
    expect(errorOf((await usesend.contacts.upsert(bookId, contactId, { email: 'not-an-address' })).error)).toMatchObject({ code: 'BAD_REQUEST' });
    expect(errorOf((await other.contacts.delete(bookId, upserted.data!.contactId)).error)).toMatchObject({ code: 'NOT_FOUND' });
    expect((await usesend.contacts.delete(bookId, upserted.data!.contactId)).data).toEqual({ success: true });
    expect(errorOf((await usesend.contacts.get(bookId, upserted.data!.contactId)).error)).toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('campaigns', () => {
  it('create + sendNow sends to the contact book\'s subscribed contacts; get and list show it', async () => {
    const book = (await usesend.contactBooks.create({ name: 'Launch' })).data!.id;
    const [a, b, gone] = [unique('camp-a'), unique('camp-b'), unique('camp-gone')];
    for (const email of [a, b]) await usesend.contacts.create(book, { email });
    await usesend.contacts.create(book, { email: gone, subscribed: false });
    const { data, error } = await usesend.campaigns.create({ name: 'Launch day', from: 'news@acme.test', subject: 'We launched', html: '<p>Hello</p>', contactBookId: book, sendNow: true });
    expect(error).toBeNull();
    expect(data).toMatchObject({ name: 'Launch day', contactBookId: book, status: expect.stringMatching(/SCHEDULED|RUNNING/) });
    expect((await arrived(a)).parsed.subject).toBe('We launched');
    expect((await arrived(b)).parsed.subject).toBe('We launched');
    const done = await until(async () => {
      const r = await usesend.campaigns.get(data!.id);
      return r.data?.status === 'SENT' ? r.data : undefined;
    }, 15_000, 'SENT');
    expect(done).toMatchObject({ total: 2 });
    expect(sink.messages.some((m) => m.envelopeTo.includes(gone))).toBe(false);
    const listed = await usesend.campaigns.getAll({ status: 'SENT' });
    expect(listed.data!.campaigns.map((c) => c.id)).toContain(data!.id);
    expect(errorOf((await other.campaigns.get(data!.id)).error)).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('schedule, pause and resume; refused fields and wrong states answer useSend errors', async () => {
    const book = (await usesend.contactBooks.create({ name: 'Later' })).data!.id;
    await usesend.contacts.create(book, { email: unique('later') });
    const draft = (await usesend.campaigns.create({ name: 'Later', from: 'news@acme.test', subject: 'Soon', html: '<p>x</p>', contactBookId: book })).data!;
    expect(draft.status).toBe('DRAFT');
    expect(errorOf((await usesend.campaigns.pause(draft.id)).error)).toMatchObject({ code: 'CONFLICT', reason: 'campaign_not_pausable' });
    const at = new Date(Date.now() + 3_600_000).toISOString();
    expect((await usesend.campaigns.schedule(draft.id, { scheduledAt: at })).data).toEqual({ success: true });
    expect((await usesend.campaigns.get(draft.id)).data).toMatchObject({ status: 'SCHEDULED', scheduledAt: at });
    expect((await usesend.campaigns.pause(draft.id)).data).toEqual({ success: true });
    expect((await usesend.campaigns.get(draft.id)).data!.status).toBe('PAUSED');
    expect((await usesend.campaigns.resume(draft.id)).data).toEqual({ success: true });
    expect((await usesend.campaigns.get(draft.id)).data!.status).toBe('SCHEDULED');
    expect(errorOf((await usesend.campaigns.resume(draft.id)).error)).toMatchObject({ code: 'CONFLICT', reason: 'campaign_not_paused' });
    expect(errorOf((await other.campaigns.schedule(draft.id, {})).error)).toMatchObject({ code: 'NOT_FOUND' });
    expect(errorOf((await other.campaigns.pause(draft.id)).error)).toMatchObject({ code: 'NOT_FOUND' });
    expect(errorOf((await usesend.campaigns.schedule(draft.id, { scheduledAt: at, batchSize: 10 })).error)).toMatchObject({ code: 'BAD_REQUEST', reason: 'unsupported_field' });
    const refused = await usesend.campaigns.create({ name: 'x', from: 'news@acme.test', subject: 's', content: '{"type":"doc"}', contactBookId: book });
    expect(errorOf(refused.error)).toMatchObject({ code: 'BAD_REQUEST', reason: 'unsupported_field', message: expect.stringContaining('content') });
    const unknownBook = await usesend.campaigns.create({ name: 'x', from: 'news@acme.test', subject: 's', html: '<p>x</p>', contactBookId: '01890000-0000-7000-8000-000000000000' });
    expect(errorOf(unknownBook.error)).toMatchObject({ code: 'UNPROCESSABLE_CONTENT', reason: 'unknown_list' });
  });
});
