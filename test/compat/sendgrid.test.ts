import sgClient from '@sendgrid/client';
import sgMail from '@sendgrid/mail';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { DEFAULT_SCOPES } from '../../src/auth/scopes.ts';
import { call, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';
import { startSmtpSink, type SinkMessage, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';

/**
 * SendGrid's own SDK (@sendgrid/mail over @sendgrid/client, pinned) against the running engine:
 * only the base URL and the key change. Mail is checked in a real SMTP sink.
 */
type MailService = typeof sgMail;
const { MailService } = sgMail as unknown as { MailService: new () => MailService };
const { Client } = sgClient as unknown as { Client: new () => typeof sgClient };

let database: TestDatabase;
let engine: TestEngine;
let sink: SmtpSink;
let mail: MailService;
let tenantToken: string;
let tenantId: string;

/** A MailService of the SDK pointed at the engine (setApiKey resets the base URL, so it comes first). */
function sendGridAt(baseUrl: string, key: string): MailService {
  const client = new Client();
  client.setApiKey(key);
  client.setDefaultRequest('baseUrl', baseUrl);
  const service = new MailService();
  service.setClient(client);
  return service;
}

beforeAll(async () => {
  // The SDK warns that our keys do not start with "SG.": expected, and quiet here.
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  database = await createTestDatabase();
  sink = await startSmtpSink();
  engine = await startTestEngine(database.db, database.url, { smtpUrl: sink.url });
  ({ token: tenantToken, tenantId } = await tenantWithToken(database.db));
  mail = sendGridAt(engine.baseUrl, (await createApiKey(database.db, tenantId, DEFAULT_SCOPES, { environment: 'live' })).secret);
});
afterAll(async () => {
  await engine?.close();
  await sink?.close();
  await database?.drop();
  vi.restoreAllMocks();
});

let seq = 0;
const unique = (local: string) => `${local}-${++seq}@example.com`;
const arrived = (address: string) => until(() => sink.messages.find((m) => m.envelopeTo.includes(address)), 10_000, `mail to ${address}`);
const addresses = (a: SinkMessage['parsed']['to']) => (a && !Array.isArray(a) ? a.value.map((v) => v.address) : []);
const count = async (table: string) => Number((await database.db.query(`SELECT count(*) FROM ${table}`)).rows[0].count);

/** The SDK rejects with a ResponseError carrying SendGrid's body. */
async function refusal(promise: Promise<unknown>) {
  const err = await promise.then(() => { throw new Error('expected a refusal'); }, (e: unknown) => e as { code: number; response: { body: { errors: Array<{ message: string; field: string | null; reason: string }> }; headers: Record<string, string> } });
  return { status: err.code, error: err.response.body.errors[0], headers: err.response.headers, body: err.response.body };
}

describe('POST /v3/mail/send', () => {
  it('sends each personalization with its own recipients and substitutions; reply_to, attachments; 202 with X-Message-Id', async () => {
    const [a, aCc, aBcc, b] = [unique('a'), unique('a-cc'), unique('a-bcc'), unique('b')];
    const [response] = await mail.send({
      from: 'billing@acme.test',
      replyTo: 'support@acme.test',
      // The SDK wraps substitution keys in {{ }} (its substitutionWrappers) on the wire.
      subject: 'Invoice for {{name}}',
      text: 'Hello {{name}}, see attached.',
      html: '<p>Hello {{name}}</p>',
      personalizations: [
        { to: [{ email: a }], cc: [{ email: aCc }], bcc: [{ email: aBcc }], substitutions: { name: 'Ada' } },
        { to: [{ email: b }], substitutions: { name: 'Bob' } },
      ],
      attachments: [{ content: Buffer.from('invoice 42').toString('base64'), filename: 'invoice.txt', type: 'text/plain', disposition: 'attachment' }],
      categories: ['billing'],
    });
    expect(response.statusCode).toBe(202);
    const messageId = response.headers['x-message-id'] as string;
    expect(messageId).toMatch(/^[0-9a-f-]{36}$/);

    const copies = await Promise.all([a, aCc, aBcc].map(arrived));
    for (const copy of copies) {
      expect(addresses(copy.parsed.to)).toEqual([a]);
      expect(addresses(copy.parsed.cc)).toEqual([aCc]);
      expect(copy.parsed.subject).toBe('Invoice for Ada');
      expect(copy.parsed.text?.trim()).toBe('Hello Ada, see attached.');
      expect(copy.parsed.replyTo?.value.map((v) => v.address)).toEqual(['support@acme.test']);
      expect(copy.parsed.attachments.map((x) => [x.filename, x.content.toString()])).toEqual([['invoice.txt', 'invoice 42']]);
      expect(copy.raw.toString('latin1').split('\r\n\r\n')[0]).not.toContain(aBcc);
    }
    const toB = await arrived(b);
    expect(addresses(toB.parsed.to)).toEqual([b]);
    expect(toB.parsed.subject).toBe('Invoice for Bob');
    expect(toB.parsed.html).toContain('Hello Bob');

    // X-Message-Id is the first personalization's send; categories are its tags.
    const { rows } = await database.db.query('SELECT recipient, tags FROM messages WHERE proxy_job_id = $1 ORDER BY id', [messageId]);
    expect(rows.map((r) => r.recipient)).toEqual([a, aCc, aBcc]);
    expect(rows[0].tags).toMatchObject({ api: 'sendgrid', categories: ['billing'] });
  });

  it('template_id with dynamic_template_data renders the stored template per personalization', async () => {
    const template = await call(engine.baseUrl, 'POST', '/v1/templates', { token: tenantToken, body: { name: 'Order', slug: 'd-order', subject: 'Order {{ order }}', html: '<p>{{ name }}</p>' } });
    expect(template.status).toBe(201);
    const [a, b] = [unique('tpl-a'), unique('tpl-b')];
    const [response] = await mail.send({
      from: 'shop@acme.test',
      templateId: 'd-order',
      personalizations: [{ to: a, dynamicTemplateData: { order: 1, name: 'Ada' } }, { to: b, dynamicTemplateData: { order: 2, name: 'Bob' } }],
    });
    expect(response.statusCode).toBe(202);
    expect((await arrived(a)).parsed.subject).toBe('Order 1');
    expect((await arrived(b)).parsed.subject).toBe('Order 2');
  });

  it('send_at schedules the send', async () => {
    const at = Math.floor(Date.now() / 1000) + 3600;
    const [response] = await mail.send({ from: 'news@acme.test', to: unique('later'), subject: 'Later', text: 'later', sendAt: at });
    const { rows } = await database.db.query('SELECT status, next_attempt_at FROM messages WHERE proxy_job_id = $1', [response.headers['x-message-id']]);
    expect(rows[0]).toMatchObject({ status: 'queued', next_attempt_at: new Date(at * 1000) });
  });

  it('refuses what the engine cannot do, naming the field, and queues nothing', async () => {
    const before = await count('messages');
    const base = { from: 'billing@acme.test', to: unique('x'), subject: 's', text: 't' };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ trackingSettings: { ganalytics: { enable: true } } }, 'tracking_settings.ganalytics'],
      [{ asm: { groupId: 1 } }, 'asm'],
      [{ batchId: 'abc' }, 'batch_id'],
      [{ ipPoolName: 'pool' }, 'ip_pool_name'],
      [{ mailSettings: { sandboxMode: { enable: true } } }, 'mail_settings.sandbox_mode'],
      [{ from: { email: 'billing@acme.test', name: 'Acme Billing' } }, 'from.name'],
      [{ attachments: [{ content: 'aGk=', filename: 'logo.png', disposition: 'inline', content_id: 'logo' }] }, 'attachments.0.content_id'],
    ];
    for (const [extra, field] of cases) {
      const r = await refusal(mail.send({ ...base, ...extra } as never));
      expect(r.status, field).toBe(400);
      expect(r.error, field).toMatchObject({ field, reason: 'unsupported_field', message: expect.stringContaining(field) });
    }
    // Switched-off settings ask for nothing and are accepted.
    const [ok] = await mail.send({ ...base, trackingSettings: { clickTracking: { enable: false } } } as never);
    expect(ok.statusCode).toBe(202);
    expect(await count('messages')).toBe(before + 1);
  });

  it('invalid requests: 400 with SendGrid\'s errors naming the field; one bad personalization queues none', async () => {
    const before = await count('messages');
    const noSubject = await refusal(mail.send({ from: 'a@acme.test', to: unique('x'), text: 't' } as never));
    expect(noSubject).toMatchObject({ status: 400, error: { field: 'subject' } });
    const badAddress = await refusal(mail.send({ from: 'a@acme.test', personalizations: [{ to: [{ email: 'nope' }] }], subject: 's', text: 't' } as never));
    expect(badAddress).toMatchObject({ status: 400, error: { field: 'personalizations.0.to.0.email' } });
    const secondBad = await refusal(mail.send({
      from: 'a@acme.test', templateId: 'no-such-template',
      personalizations: [{ to: unique('first') }, { to: unique('second') }],
    } as never));
    expect(secondBad).toMatchObject({ status: 400, error: { field: 'template_id' } });
    const reserved = await refusal(mail.send({ from: 'a@acme.test', to: unique('x'), subject: 's', text: 't', headers: { 'X-Send-Engine-Message-Id': 'x' } } as never));
    expect(reserved).toMatchObject({ status: 400, error: { field: 'headers', reason: 'reserved_header' } });
    expect(await count('messages')).toBe(before);
  });

  it('401 with a wrong key, X-Request-Id kept; 404 in SendGrid\'s shape for another /v3/mail path', async () => {
    const r = await refusal(sendGridAt(engine.baseUrl, 'se_live_wrong').send({ from: 'a@acme.test', to: 'b@example.com', subject: 's', text: 't' }));
    expect(r.status).toBe(401);
    expect(r.error.field).toBe('authorization');
    expect(r.body).toMatchObject({ request_id: r.headers['x-request-id'] });
    const missing = await call(engine.baseUrl, 'POST', '/v3/mail/batch', { token: tenantToken, body: {} });
    expect(missing.status).toBe(404);
    expect(missing.json.errors[0].message).toContain('/v3/mail/send');
  });

  it('answers under /compat/sendgrid too', async () => {
    const to = unique('prefixed');
    const key = (await createApiKey(database.db, tenantId, ['send'], { environment: 'live' })).secret;
    const [response] = await sendGridAt(`${engine.baseUrl}/compat/sendgrid`, key).send({ from: 'a@acme.test', to, subject: 'Prefixed', text: 'x' });
    expect(response.statusCode).toBe(202);
    expect((await arrived(to)).parsed.subject).toBe('Prefixed');
  });
});
