import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let database: TestDatabase;
let api: TestApp;
let token: string;
let tenantId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url);
  ({ token, tenantId } = await tenantWithToken(database.db));
});
afterAll(async () => {
  await api.close();
  await database.drop();
});

let keySeq = 0;
function validBody(overrides: Record<string, unknown> = {}) {
  return {
    message_type: 'transactional',
    from: 'sender@acme.test',
    to: ['alice@example.com'],
    subject: 'Your receipt',
    html: '<p>Thanks</p>',
    text: 'Thanks',
    tags: { campaign_id: 'c1', site_id: 's1', list_id: 'l1', segment: 'all' },
    idempotency_key: `key-${++keySeq}-${Date.now()}`,
    ...overrides,
  };
}

const send = (body: unknown, t = token) => call(api.baseUrl, 'POST', '/v1/send-jobs', { token: t, body });

async function messagesOf(jobId: string) {
  const { rows } = await database.db.query(
    'SELECT id, tenant_id, recipient, status, tags, headers FROM messages WHERE proxy_job_id = $1 ORDER BY recipient',
    [jobId],
  );
  return rows;
}

describe('POST /v1/send-jobs: accepted sends', () => {
  it('answers {job_id, status: queued} and writes one queued message per recipient', async () => {
    const body = validBody({ to: ['alice@example.com', 'bob@example.com'], headers: { 'X-Campaign': 'spring' } });
    const res = await send(body);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ job_id: expect.stringMatching(/^[0-9a-f-]{36}$/), status: 'queued' });
    const messages = await messagesOf(res.json.job_id);
    expect(messages.map((m) => [m.recipient, m.status, m.tenant_id])).toEqual([
      ['alice@example.com', 'queued', tenantId],
      ['bob@example.com', 'queued', tenantId],
    ]);
    expect(messages[0].tags).toEqual(body.tags);
    expect(messages[0].headers).toEqual({ 'X-Campaign': 'spring' });
  });

  it('sends once to an address listed twice in different case', async () => {
    const res = await send(validBody({ to: ['Carol@Example.com', 'carol@example.com'] }));
    expect(res.status).toBe(200);
    expect((await messagesOf(res.json.job_id)).map((m) => m.recipient)).toEqual(['Carol@Example.com']);
  });

  it('marks recipients on the tenant suppression list as suppressed, case-insensitively', async () => {
    await database.db.query(`INSERT INTO suppressions (tenant_id, email, reason, source) VALUES ($1, 'dave@example.com', 'complaint', 'test')`, [tenantId]);
    const res = await send(validBody({ to: ['Dave@Example.com', 'erin@example.com'] }));
    expect(res.status).toBe(200);
    const byRecipient = Object.fromEntries((await messagesOf(res.json.job_id)).map((m) => [m.recipient, m.status]));
    expect(byRecipient).toEqual({ 'Dave@Example.com': 'suppressed', 'erin@example.com': 'queued' });
  });

  it("does not apply another tenant's suppressions", async () => {
    const other = await tenantWithToken(database.db);
    await database.db.query(`INSERT INTO suppressions (tenant_id, email, reason, source) VALUES ($1, 'frank@example.com', 'bounce', 'test')`, [other.tenantId]);
    const res = await send(validBody({ to: ['frank@example.com'] }));
    expect((await messagesOf(res.json.job_id))[0].status).toBe('queued');
  });
});

describe('POST /v1/send-jobs: validation', () => {
  // The reason (`error`) is asserted too: a 422 for another cause would not prove the rule.
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['missing from', { from: undefined }, 'validation_error'],
    ['missing html', { html: undefined }, 'validation_error'],
    ['missing text', { text: undefined }, 'validation_error'],
    ['missing tags', { tags: undefined }, 'validation_error'],
    ['missing idempotency_key', { idempotency_key: undefined }, 'validation_error'],
    ['empty idempotency_key', { idempotency_key: '' }, 'validation_error'],
    ['empty to', { to: [] }, 'validation_error'],
    ['to as a string', { to: 'alice@example.com' }, 'validation_error'],
    ['invalid recipient', { to: ['not-an-address'] }, 'validation_error'],
    ['invalid from', { from: 'nobody' }, 'validation_error'],
    ['empty subject', { subject: '' }, 'validation_error'],
    ['subject with CRLF', { subject: 'Hi\r\nBcc: victim@example.com' }, 'invalid_header_value'],
    ['subject with ESC', { subject: 'Hi \x1b[31mred' }, 'invalid_header_value'],
    ['unknown message_type', { message_type: 'marketing' }, 'validation_error'],
    ['tags not an object', { tags: 'spring' }, 'validation_error'],
    ['tags missing segment', { tags: { campaign_id: 'c', site_id: 's', list_id: 'l' } }, 'validation_error'],
    ['header value with CRLF', { headers: { 'X-Note': 'a\r\nBcc: victim@example.com' } }, 'invalid_header_value'],
    ['header value with a lone LF', { headers: { 'X-Note': 'a\nb' } }, 'invalid_header_value'],
    ['header value with VT (\\x0b)', { headers: { 'X-Note': 'a\x0bb' } }, 'invalid_header_value'],
    ['header value with ESC (\\x1b)', { headers: { 'X-Note': 'a\x1b[2Jb' } }, 'invalid_header_value'],
    ['header value with DEL (\\x7f)', { headers: { 'X-Note': 'a\x7fb' } }, 'invalid_header_value'],
    ['header value over 998 characters', { headers: { 'X-Note': 'a'.repeat(999) } }, 'invalid_header_value'],
    ['header name with a space', { headers: { 'X Note': 'a' } }, 'invalid_header_name'],
    ['reserved header Subject', { headers: { Subject: 'other' } }, 'reserved_header'],
    ['reserved header bcc (any case)', { headers: { bcc: 'victim@example.com' } }, 'reserved_header'],
    ['reserved header List-Unsubscribe', { headers: { 'List-Unsubscribe': '<https://evil.test>' } }, 'reserved_header'],
    ['trace header Authentication-Results', { headers: { 'Authentication-Results': 'mx.example; dkim=pass; spf=pass' } }, 'trace_header'],
    ['trace header ARC-Authentication-Results', { headers: { 'ARC-Authentication-Results': 'i=1; mx.example; dmarc=pass' } }, 'trace_header'],
    ['trace header ARC-Seal', { headers: { 'arc-seal': 'i=1; a=rsa-sha256; cv=none' } }, 'trace_header'],
    ['trace header Received-SPF', { headers: { 'Received-SPF': 'pass' } }, 'trace_header'],
    ['trace header Received', { headers: { Received: 'from mx.example' } }, 'trace_header'],
    ['trace header Resent-From', { headers: { 'Resent-From': 'ceo@acme.test' } }, 'trace_header'],
    ['trace header Resent-Message-ID', { headers: { 'RESENT-MESSAGE-ID': '<x@y>' } }, 'trace_header'],
    ['trace header DKIM-Signature', { headers: { 'DKIM-Signature': 'v=1; d=bank.example' } }, 'trace_header'],
    ['trace header Return-Path', { headers: { 'Return-Path': '<bounce@evil.test>' } }, 'trace_header'],
    ['newsletter without list_unsubscribe', { message_type: 'newsletter' }, 'validation_error'],
    ['list_unsubscribe over http', { message_type: 'newsletter', list_unsubscribe: { url: 'http://acme.test/u' } }, 'validation_error'],
    ['list_unsubscribe mailto not an address', { list_unsubscribe: { url: 'https://acme.test/u', mailto: 'nope' } }, 'validation_error'],
    ['both bodies empty', { html: '', text: '' }, 'validation_error'],
  ];
  it.each(cases)('%s -> 422 with the error body and its reason', async (_name, overrides, error) => {
    const body = validBody(overrides);
    for (const [k, v] of Object.entries(overrides)) if (v === undefined) delete (body as Record<string, unknown>)[k];
    const res = await send(body);
    expect(res.status).toBe(422);
    expect(res.json).toMatchObject({ error, message: expect.any(String), request_id: res.headers.get('x-request-id') });
    const { rows } = await database.db.query('SELECT count(*)::int AS n FROM idempotency_keys WHERE key = $1', [body.idempotency_key]);
    expect(rows[0].n).toBe(0);
  });

  it('malformed JSON -> 400 with the error body, never 500', async () => {
    const res = await call(api.baseUrl, 'POST', '/v1/send-jobs', { token, rawBody: '{"message_type": "transac' });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ error: 'bad_request', request_id: expect.any(String) });
  });

  it('a tenant_id other than the credential\'s -> 403', async () => {
    const other = await tenantWithToken(database.db);
    const res = await send(validBody({ tenant_id: other.tenantId }));
    expect(res.status).toBe(403);
    expect(res.json.error).toBe('forbidden');
    expect((await send(validBody({ tenant_id: tenantId }))).status).toBe(200);
  });
});

describe('POST /v1/send-jobs: idempotency', () => {
  it('the same key and body answer the original job_id and queue nothing new', async () => {
    const body = validBody({ to: ['gina@example.com'] });
    const first = await send(body);
    const reordered = Object.fromEntries(Object.entries(body).reverse());
    const second = await send(reordered);
    expect(second.status).toBe(200);
    expect(second.json.job_id).toBe(first.json.job_id);
    const { rows } = await database.db.query(`SELECT count(*)::int AS n FROM messages WHERE tenant_id = $1 AND recipient = 'gina@example.com'`, [tenantId]);
    expect(rows[0].n).toBe(1);
  });

  it('the same key with a different body -> 409', async () => {
    const body = validBody();
    expect((await send(body)).status).toBe(200);
    const res = await send({ ...body, subject: 'Changed' });
    expect(res.status).toBe(409);
    expect(res.json).toMatchObject({ error: 'idempotency_conflict', request_id: expect.any(String) });
  });

  it('keys are per tenant: another tenant may use the same key', async () => {
    const other = await tenantWithToken(database.db);
    const body = validBody();
    const mine = await send(body);
    const theirs = await send(body, other.token);
    expect(theirs.status).toBe(200);
    expect(theirs.json.job_id).not.toBe(mine.json.job_id);
  });

  it('an expired key is taken over by a new request', async () => {
    const body = validBody();
    const first = await send(body);
    await database.db.query(`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = $1`, [body.idempotency_key]);
    const second = await send({ ...body, subject: 'A day later' });
    expect(second.status).toBe(200);
    expect(second.json.job_id).not.toBe(first.json.job_id);
  });

  it('concurrent duplicates create exactly one job and one message per recipient', async () => {
    const body = validBody({ to: ['henry@example.com', 'iris@example.com'] });
    const results = await Promise.all(Array.from({ length: 12 }, () => send(body)));
    expect(results.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(new Set(results.map((r) => r.json.job_id)).size).toBe(1);
    const { rows } = await database.db.query('SELECT count(*)::int AS n FROM messages WHERE proxy_job_id = $1', [results[0].json.job_id]);
    expect(rows[0].n).toBe(2);
    const jobs = await database.db.query('SELECT count(*)::int AS n FROM proxy_jobs WHERE idempotency_key = $1', [body.idempotency_key]);
    expect(jobs.rows[0].n).toBe(1);
  });

  it('concurrent different bodies under one key: one wins, the others get 409', async () => {
    const base = validBody();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => send({ ...base, subject: `Variant ${i}` })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(7);
  });
});
