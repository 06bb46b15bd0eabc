import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';
import { startSmtpSink, type SinkMessage, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';

let database: TestDatabase;
let engine: TestEngine;
let sink: SmtpSink;
let token: string;
let tenantId: string;
let otherToken: string;

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await startSmtpSink();
  engine = await startTestEngine(database.db, database.url, { smtpUrl: sink.url });
  ({ token, tenantId } = await tenantWithToken(database.db));
  ({ token: otherToken } = await tenantWithToken(database.db, undefined, 'other tenant'));
});
afterAll(async () => {
  await engine.close();
  await sink.close();
  await database.drop();
});

let seq = 0;
const unique = (local: string) => `${local}-${++seq}@example.com`;
function body(overrides: Record<string, unknown> = {}) {
  return {
    message_type: 'transactional',
    from: 'sender@acme.test',
    to: [unique('to')],
    subject: 'Your receipt',
    html: '<p>Thanks</p>',
    text: 'Thanks',
    tags: { campaign_id: 'c1', site_id: 's1', list_id: 'l1', segment: 'all' },
    idempotency_key: `tx-${seq}-${Date.now()}`,
    ...overrides,
  };
}
const send = (b: unknown, headers: Record<string, string> = {}, t = token) => call(engine.baseUrl, 'POST', '/v1/send-jobs', { token: t, body: b, headers });
const count = async (table: string) => Number((await database.db.query(`SELECT count(*) FROM ${table}`)).rows[0].count);
const received = (address: string) => sink.messages.filter((m) => m.envelopeTo.includes(address));
const arrived = (address: string, timeoutMs = 10_000) => until(() => received(address)[0], timeoutMs, `mail to ${address}`);
const rows = async (jobId: string) =>
  (await database.db.query('SELECT id, recipient, status, next_attempt_at FROM messages WHERE proxy_job_id = $1 ORDER BY recipient', [jobId])).rows;
const headerLines = (m: SinkMessage) => m.raw.toString('latin1').split(/\r\n\r\n/)[0];

describe('cc, bcc and reply-to', () => {
  it('sends one copy per To, Cc and Bcc address: To and Cc shown, Bcc in no header, each tracked and suppressed on its own', async () => {
    const [to, cc, bcc, suppressed] = [unique('to'), unique('cc'), unique('bcc'), unique('cc-suppressed')];
    await database.db.query(`INSERT INTO suppressions (tenant_id, email, reason, source) VALUES ($1, $2, 'bounce', 'test')`, [tenantId, suppressed]);
    const res = await send(body({ to: [to], cc: [cc, suppressed], bcc: [bcc], reply_to: ['support@acme.test'] }));
    expect(res.status, res.text).toBe(200);
    const copies = await Promise.all([to, cc, bcc].map((a) => arrived(a)));
    for (const copy of copies) {
      expect(copy.envelopeTo).toHaveLength(1);
      expect(copy.parsed.to && !Array.isArray(copy.parsed.to) ? copy.parsed.to.value.map((v) => v.address) : []).toEqual([to]);
      expect(copy.parsed.cc && !Array.isArray(copy.parsed.cc) ? copy.parsed.cc.value.map((v) => v.address) : []).toEqual([cc, suppressed]);
      expect(copy.parsed.replyTo?.value.map((v) => v.address)).toEqual(['support@acme.test']);
      expect(headerLines(copy)).not.toMatch(/^bcc:/im);
      expect(headerLines(copy)).not.toContain(bcc);
    }
    expect(copies[2].envelopeTo).toEqual([bcc]);
    expect(new Set(copies.map((c) => c.messageId)).size).toBe(3);
    const statuses = Object.fromEntries((await rows(res.json.job_id)).map((r) => [r.recipient, r.status]));
    expect(statuses[suppressed]).toBe('suppressed');
    expect(received(suppressed)).toEqual([]);
  });

  it('without cc or bcc, each To recipient sees only their own address (the contract\'s private sends)', async () => {
    const [a, b] = [unique('a'), unique('b')];
    expect((await send(body({ to: [a, b] }))).status).toBe(200);
    const [ma, mb] = await Promise.all([arrived(a), arrived(b)]);
    expect(ma.parsed.to && !Array.isArray(ma.parsed.to) && ma.parsed.to.text).toBe(a);
    expect(mb.parsed.to && !Array.isArray(mb.parsed.to) && mb.parsed.to.text).toBe(b);
  });

  it('refuses reply_to given twice (field and header)', async () => {
    const res = await send(body({ reply_to: ['a@acme.test'], headers: { 'Reply-To': 'b@acme.test' } }));
    expect([res.status, res.json.error]).toEqual([422, 'validation_error']);
  });
});

// A minimal PDF and PNG: enough bytes for their magic numbers.
const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n', 'latin1'), randomBytes(64)]);
const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), randomBytes(100)]);
const ELF = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), randomBytes(120)]);

describe('attachments', () => {
  it('arrive byte-identical with the sniffed content type, stored once for every copy', async () => {
    const [to, cc] = [unique('att'), unique('att-cc')];
    const blob = randomBytes(3000);
    const res = await send(body({
      to: [to], cc: [cc],
      attachments: [
        { filename: 'invoice.pdf', content: PDF.toString('base64'), content_type: 'application/octet-stream' },
        { filename: 'logo.png', content: PNG.toString('base64') },
        { filename: 'data.bin', content: blob.toString('base64'), content_type: 'application/x-custom' },
      ],
    }));
    expect(res.status, res.text).toBe(200);
    expect((await database.db.query('SELECT count(*) FROM proxy_job_attachments WHERE proxy_job_id = $1', [res.json.job_id])).rows[0].count).toBe(3);
    for (const address of [to, cc]) {
      const m = await arrived(address);
      expect(m.parsed.attachments.map((a) => [a.filename, a.contentType])).toEqual([
        ['invoice.pdf', 'application/pdf'], ['logo.png', 'image/png'], ['data.bin', 'application/x-custom'],
      ]);
      expect(m.parsed.attachments[0].content.equals(PDF)).toBe(true);
      expect(m.parsed.attachments[1].content.equals(PNG)).toBe(true);
      expect(m.parsed.attachments[2].content.equals(blob)).toBe(true);
    }
  });

  it('refuses executables by their bytes, declared type or name with 422 attachment_type_refused, writing nothing', async () => {
    const before = await Promise.all(['proxy_jobs', 'messages', 'proxy_job_attachments', 'idempotency_keys'].map(count));
    const cases = [
      { filename: 'report.pdf', content: ELF.toString('base64'), content_type: 'application/pdf' },
      { filename: 'setup.pdf', content: Buffer.concat([Buffer.from('MZ'), randomBytes(200)]).toString('base64') },
      { filename: 'notes.txt', content: Buffer.from('echo hi').toString('base64'), content_type: 'application/x-msdownload' },
      { filename: 'run.bat', content: Buffer.from('echo hi').toString('base64'), content_type: 'text/plain' },
    ];
    for (const attachment of cases) {
      const res = await send(body({ attachments: [{ filename: 'ok.txt', content: Buffer.from('fine').toString('base64') }, attachment] }));
      expect([attachment.filename, res.status, res.json.error]).toEqual([attachment.filename, 422, 'attachment_type_refused']);
      expect(res.json.message).toContain('attachments[1]');
    }
    const notBase64 = await send(body({ attachments: [{ filename: 'a.txt', content: 'not base64!' }] }));
    expect([notBase64.status, notBase64.json.error]).toEqual([422, 'invalid_attachment']);
    const tooBig = await send(body({ attachments: [{ filename: 'big.bin', content: Buffer.alloc(5 * 1024 * 1024 + 1).toString('base64') }] }));
    expect([tooBig.status, tooBig.json.error]).toEqual([422, 'attachment_too_large']);
    expect(await Promise.all(['proxy_jobs', 'messages', 'proxy_job_attachments', 'idempotency_keys'].map(count))).toEqual(before);
  });
});

describe('stored template sends', () => {
  it('renders subject, html and text from the current version with the variables, and records template id and version', async () => {
    const t = await call(engine.baseUrl, 'POST', '/v1/templates', {
      token, body: { name: 'Shipped', subject: 'Order {{ order.id }} shipped', html: '<p>Hi {{ name }}, order {{ order.id }} is on its way.</p>' },
    });
    const to = unique('tpl');
    const { subject, html, text, ...rest } = body({ to: [to] });
    void subject; void html; void text;
    const res = await send({ ...rest, template_id: t.json.slug, variables: { name: 'Ada', order: { id: 'A-7' } } });
    expect(res.status, res.text).toBe(200);
    const m = await arrived(to);
    expect(m.parsed.subject).toBe('Order A-7 shipped');
    expect(m.parsed.html).toContain('<p>Hi Ada, order A-7 is on its way.</p>');
    expect(m.parsed.text?.trim()).toBe('Hi Ada, order A-7 is on its way.');
    const job = (await database.db.query('SELECT template_id, template_version FROM proxy_jobs WHERE id = $1', [res.json.job_id])).rows[0];
    expect(job).toEqual({ template_id: t.json.id, template_version: 1 });

    const both = await send({ ...body(), template_id: t.json.id });
    expect([both.status, both.json.error]).toEqual([422, 'validation_error']);
    const strict = await send({ ...rest, idempotency_key: `strict-${seq}`, template_id: t.json.id, variables: { order: { id: 1 } }, strict_variables: true });
    expect([strict.status, strict.json.error]).toEqual([422, 'missing_variable']);
    const missing = await send({ ...rest, idempotency_key: `missing-${seq}`, template_id: 'no-such-template' });
    expect([missing.status, missing.json.error]).toEqual([404, 'not_found']);
    const noContent = await send({ ...rest, idempotency_key: `none-${seq}` });
    expect([noContent.status, noContent.json.error]).toEqual([422, 'validation_error']);
    const foreign = await send({ ...rest, idempotency_key: `foreign-${seq}`, template_id: t.json.id }, {}, otherToken);
    expect([foreign.status, foreign.json.error]).toEqual([404, 'not_found']);
  });
});

describe('scheduled_at, reschedule and cancel', () => {
  it('defers the send until it is due', async () => {
    const to = unique('later');
    const at = new Date(Date.now() + 1500);
    const res = await send(body({ to: [to], scheduled_at: at.toISOString() }));
    expect(res.status).toBe(200);
    const [row] = await rows(res.json.job_id);
    expect([row.status, row.next_attempt_at.toISOString()]).toEqual(['queued', at.toISOString()]);
    const m = await arrived(to);
    expect(m.receivedAt).toBeGreaterThanOrEqual(at.getTime());
  });

  it('a cancel before it is due means nothing arrives; cancel and reschedule refuse what is not scheduled', async () => {
    const to = unique('cancelled');
    const res = await send(body({ to: [to], scheduled_at: new Date(Date.now() + 1500).toISOString() }));
    const [row] = await rows(res.json.job_id);
    const foreign = await call(engine.baseUrl, 'POST', `/v1/messages/${row.id}/cancel`, { token: otherToken });
    expect([foreign.status, foreign.json.error]).toEqual([404, 'not_found']);
    const cancel = await call(engine.baseUrl, 'POST', `/v1/messages/${row.id}/cancel`, { token });
    expect(cancel.status).toBe(200);
    expect(cancel.json).toMatchObject({ id: row.id, status: 'cancelled' });
    const again = await call(engine.baseUrl, 'POST', `/v1/messages/${row.id}/cancel`, { token });
    expect([again.status, again.json.error]).toEqual([409, 'already_cancelled']);
    // A later send's arrival proves the dispatcher ran past the cancelled message's time.
    const marker = unique('marker');
    await send(body({ to: [marker], scheduled_at: new Date(Date.now() + 2500).toISOString() }));
    await arrived(marker);
    expect(received(to)).toEqual([]);
    expect((await rows(res.json.job_id))[0].status).toBe('cancelled');

    const now = await send(body());
    const [sentRow] = await rows(now.json.job_id);
    await until(async () => (await rows(now.json.job_id))[0].status === 'sent', 10_000, 'sent');
    const late = await call(engine.baseUrl, 'POST', `/v1/messages/${sentRow.id}/cancel`, { token });
    expect([late.status, late.json.error]).toEqual([409, 'already_sent']);
    const move = await call(engine.baseUrl, 'PATCH', `/v1/messages/${sentRow.id}`, { token, body: { scheduled_at: new Date(Date.now() + 60_000).toISOString() } });
    expect([move.status, move.json.error]).toEqual([409, 'already_sent']);
  });

  it('PATCH moves a scheduled message: sooner sends sooner, beyond 30 days is refused', async () => {
    const to = unique('moved');
    const res = await send(body({ to: [to], scheduled_at: new Date(Date.now() + 3_600_000).toISOString() }));
    const [row] = await rows(res.json.job_id);
    const tooFar = await call(engine.baseUrl, 'PATCH', `/v1/messages/${row.id}`, { token, body: { scheduled_at: new Date(Date.now() + 31 * 86_400_000).toISOString() } });
    expect([tooFar.status, tooFar.json.error]).toEqual([422, 'scheduled_too_far']);
    const foreign = await call(engine.baseUrl, 'PATCH', `/v1/messages/${row.id}`, { token: otherToken, body: { scheduled_at: new Date().toISOString() } });
    expect([foreign.status, foreign.json.error]).toEqual([404, 'not_found']);
    const soon = new Date(Date.now() + 300);
    const moved = await call(engine.baseUrl, 'PATCH', `/v1/messages/${row.id}`, { token, body: { scheduled_at: soon.toISOString() } });
    expect(moved.json).toEqual({ id: row.id, status: 'queued', scheduled_at: soon.toISOString() });
    await arrived(to);
  });

  it('refuses scheduled_at more than 30 days ahead', async () => {
    const res = await send(body({ scheduled_at: new Date(Date.now() + 31 * 86_400_000).toISOString() }));
    expect([res.status, res.json.error]).toEqual([422, 'scheduled_too_far']);
  });
});

describe('POST /v1/send-jobs/batch', () => {
  it('validates and accepts each message on its own: one invalid item does not sink the others', async () => {
    const [a, c] = [unique('batch-a'), unique('batch-c')];
    const { subject, ...noSubject } = body();
    void subject;
    const res = await call(engine.baseUrl, 'POST', '/v1/send-jobs/batch', {
      token,
      body: { messages: [body({ to: [a], subject: 'For A' }), noSubject, body({ to: [c], subject: 'For C' }), body({ attachments: [{ filename: 'x.exe', content: 'TVo=' }] })] },
    });
    expect(res.status).toBe(200);
    expect(res.json.data).toEqual([
      { index: 0, status: 'queued', job_id: expect.any(String) },
      { index: 1, status: 'failed', error: { status: 422, error: 'validation_error', message: expect.stringContaining("messages/1 must have required property 'subject'") } },
      { index: 2, status: 'queued', job_id: expect.any(String) },
      { index: 3, status: 'failed', error: { status: 422, error: 'attachment_type_refused', message: expect.any(String) } },
    ]);
    expect((await arrived(a)).parsed.subject).toBe('For A');
    expect((await arrived(c)).parsed.subject).toBe('For C');
  });

  it('refuses more than 100 messages as a whole', async () => {
    const res = await call(engine.baseUrl, 'POST', '/v1/send-jobs/batch', { token, body: { messages: Array.from({ length: 101 }, () => body()) } });
    expect([res.status, res.json.error]).toEqual([422, 'validation_error']);
  });
});

describe('Idempotency-Key header', () => {
  it('replays like the body field: same job, nothing new sent; different body 409; disagreeing key 422', async () => {
    const key = `header-key-${Date.now()}`;
    const { idempotency_key, ...noKey } = body();
    void idempotency_key;
    const first = await send(noKey, { 'Idempotency-Key': key });
    expect(first.status).toBe(200);
    const replay = await send(noKey, { 'Idempotency-Key': key });
    expect(replay.json.job_id).toBe(first.json.job_id);
    const sameInBody = await send({ ...noKey, idempotency_key: key });
    expect(sameInBody.json.job_id).toBe(first.json.job_id);
    expect((await database.db.query('SELECT count(*) FROM proxy_jobs WHERE idempotency_key = $1', [key])).rows[0].count).toBe(1);
    const changed = await send({ ...noKey, subject: 'Other' }, { 'Idempotency-Key': key });
    expect([changed.status, changed.json.error]).toEqual([409, 'idempotency_conflict']);
    const mismatch = await send({ ...noKey, idempotency_key: 'other' }, { 'Idempotency-Key': key });
    expect([mismatch.status, mismatch.json.error]).toEqual([422, 'idempotency_key_mismatch']);
    const none = await send(noKey);
    expect([none.status, none.json.error]).toEqual([422, 'validation_error']);
  });
});

describe('/openapi.json', () => {
  it('serves every new route with its schemas', async () => {
    const doc = (await call(engine.baseUrl, 'GET', '/openapi.json')).json;
    for (const [path, method] of [
      ['/v1/send-jobs/batch', 'post'], ['/v1/messages/{id}', 'patch'], ['/v1/messages/{id}/cancel', 'post'], ['/v1/templates', 'post'], ['/v1/templates', 'get'],
      ['/v1/templates/{id}', 'get'], ['/v1/templates/{id}', 'put'], ['/v1/templates/{id}', 'delete'], ['/v1/templates/{id}/versions', 'get'],
      ['/v1/templates/{id}/versions/{version}', 'get'], ['/v1/templates/{id}/render', 'post'], ['/v1/templates/{id}/test', 'post'],
    ]) {
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    }
    const sendBody = doc.paths['/v1/send-jobs'].post.requestBody.content['application/json'].schema;
    expect(Object.keys(sendBody.properties)).toEqual(expect.arrayContaining(['cc', 'bcc', 'reply_to', 'attachments', 'template_id', 'variables', 'scheduled_at']));
  });
});
