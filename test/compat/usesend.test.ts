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
  const key = await createApiKey(database.db, tenant.tenantId, [...DEFAULT_SCOPES, 'analytics.search.recipients'], { environment: 'live' });
  usesend = new UseSend(key.secret, engine.baseUrl);
  const stranger = await tenantWithToken(database.db, undefined, 'other tenant');
  other = new UseSend((await createApiKey(database.db, stranger.tenantId, DEFAULT_SCOPES, { environment: 'live' })).secret, engine.baseUrl);
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
