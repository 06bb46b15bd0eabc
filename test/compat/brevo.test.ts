import { BrevoClient, BrevoError } from '@getbrevo/brevo';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { DEFAULT_SCOPES } from '../../src/auth/scopes.ts';
import { createChannelTransports } from '../../src/channels/index.ts';
import type { ChannelTransports } from '../../src/channels/types.ts';
import { Dispatcher } from '../../src/dispatch/dispatcher.ts';
import { JobRenderer } from '../../src/jobs/render.ts';
import { createLogger } from '../../src/log.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { smtpTransport } from '../../src/transports/smtp.ts';
import { startGraphEmulator, startTwilioEmulator, type Emulator } from '../channels/emulators.ts';
import { startDnsServer, type TestDnsServer } from '../domains/dns-server.ts';
import { buildApp } from '../../src/http/app.ts';
import { startOrchestration, type Orchestration } from '../../src/orchestration/boss.ts';
import { call, testConfig, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startSmtpSink, type SinkMessage, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';
import { startDeliverer, startReceiver } from '../webhooks/helpers.ts';

/**
 * The real Brevo SDK (@getbrevo/brevo) against the running engine: base URL `<engine>/v3` (and
 * `/compat/brevo/v3`), our API key in the `api-key` header. Mail is checked in a real SMTP sink;
 * SMS and WhatsApp go to emulators of Twilio's and Meta's APIs through the real dispatcher.
 */
const ADMIN_TOKEN = 'admin-token-0123456789abcdef0123456789';
const SECRETS_KEY = Buffer.alloc(32, 7).toString('base64');
const SENDER_ID = 'ACME';

let database: TestDatabase;
let sink: SmtpSink;
let twilio: Emulator;
let graph: Emulator;
let dns: TestDnsServer;
let api: TestApp;
let orchestration: Orchestration;
let dispatcher: Dispatcher;
let transport: ReturnType<typeof smtpTransport>;
let channels: ChannelTransports = {};
let key: string;
let otherKey: string;
/** A key with only the `send` scope. */
let sendOnlyKey: string;
let tenantId: string;
let brevo: BrevoClient;

const client = (apiKey: string, path = '/v3') => new BrevoClient({ apiKey, baseUrl: `${api.baseUrl}${path}`, maxRetries: 0 });

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await startSmtpSink();
  [twilio, graph, dns] = await Promise.all([startTwilioEmulator(), startGraphEmulator(), startDnsServer()]);
  const config = testConfig(database.url, {
    DEFAULT_FROM_ADDRESS: 'hello@acme.test', DISPATCH_POLL_MS: '50', SEND_RETRY_BASE_MS: '50',
    SECRETS_KEY, WEBHOOK_ALLOW_PRIVATE: 'true', ADMIN_TOKEN, DNS_SERVERS: dns.address, PROVIDER_ALLOW_PRIVATE: 'true',
    SMS_PROVIDER_URL: `http://AC1:tok@${new URL(twilio.url).host}`,
    WHATSAPP_GRAPH_BASE_URL: `${graph.url}/v21.0`, WHATSAPP_PHONE_NUMBER_ID: '100200300', WHATSAPP_ACCESS_TOKEN: 'platform-token',
  });
  const logger = createLogger('silent');
  // Campaigns need the scheduler and its worker (pg-boss), as in `send-engine start`.
  orchestration = await startOrchestration(database.url, database.db, logger, { worker: true, sendJobs: { chunkSize: 100, defaultRatePerSecond: null, checkEverySeconds: 1 } });
  const app = await buildApp({ config, db: database.db, logger, scheduler: orchestration.scheduler });
  api = { app, baseUrl: await app.listen({ port: 0, host: '127.0.0.1' }), config, close: () => app.close() };
  channels = createChannelTransports(api.config, database.db, logger);
  transport = smtpTransport({ url: sink.url, maxConnections: 2 });
  dispatcher = new Dispatcher(database.db, database.url, transport, api.config.dispatch, logger, new JobRenderer(database.db, api.config.tracking), undefined, channels);
  await dispatcher.start();
  tenantId = (await createTenant(database.db, 'acme')).id;
  key = (await createApiKey(database.db, tenantId, [...DEFAULT_SCOPES, 'analytics.search.recipients', 'lists.manage'], { environment: 'live' })).secret;
  otherKey = (await createApiKey(database.db, (await createTenant(database.db, 'other')).id, [...DEFAULT_SCOPES, 'lists.manage'], { environment: 'live' })).secret;
  sendOnlyKey = (await createApiKey(database.db, tenantId, ['send'], { environment: 'live' })).secret;
  brevo = client(key);
}, 60_000);
afterAll(async () => {
  await dispatcher?.stop();
  await transport?.close();
  await Promise.all(Object.values(channels).map((c) => c.close()));
  await api?.close();
  await orchestration?.stop();
  await Promise.all([sink?.close(), twilio?.close(), graph?.close(), dns?.close()]);
  await database?.drop();
});

let seq = 0;
const unique = (local: string) => `${local}-${++seq}@example.com`;
const received = (address: string) => sink.messages.filter((m) => m.envelopeTo.includes(address));
const arrived = (address: string) => until(() => received(address)[0], 10_000, `mail to ${address}`);
const addresses = (field: SinkMessage['parsed']['to']) => (field && !Array.isArray(field) ? field.value.map((v) => v.address) : []);
const rowCount = async () => Number((await database.db.query('SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM templates) + (SELECT count(*) FROM webhook_endpoints) AS n')).rows[0].n);

/** The SDK's error for a call: status and Brevo's body. */
async function failure(promise: Promise<unknown>): Promise<{ status: number; body: { code: string; message: string; error?: string; request_id?: string } }> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(BrevoError);
    const e = err as BrevoError;
    return { status: e.statusCode!, body: e.body as { code: string; message: string } };
  }
  throw new Error('expected the call to fail');
}

describe('POST /v3/smtp/email', () => {
  it('sends one email with cc, bcc, replyTo, an attachment and tags: every copy arrives as addressed', async () => {
    const [to, cc, bcc] = [unique('to'), unique('cc'), unique('bcc')];
    const pdf = Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n');
    const sent = await brevo.transactionalEmails.sendTransacEmail({
      sender: { email: 'billing@acme.test' }, to: [{ email: to }], cc: [{ email: cc }], bcc: [{ email: bcc }], replyTo: { email: 'support@acme.test' },
      subject: 'Your invoice', htmlContent: '<p>Invoice attached</p>', textContent: 'Invoice attached',
      attachment: [{ name: 'invoice.pdf', content: pdf.toString('base64') }], tags: ['invoice'],
    });
    expect(sent.messageId).toMatch(/^<[0-9a-f-]{36}@acme\.test>$/);
    const copies = await Promise.all([to, cc, bcc].map(arrived));
    for (const copy of copies) {
      expect(copy.parsed.from?.value[0].address).toBe('billing@acme.test');
      expect(addresses(copy.parsed.to)).toEqual([to]);
      expect(addresses(copy.parsed.cc)).toEqual([cc]);
      expect(copy.parsed.replyTo?.value.map((v) => v.address)).toEqual(['support@acme.test']);
      expect(copy.raw.toString('latin1')).not.toContain(bcc.split('@')[0] + '@example.com>');
      expect(copy.parsed.attachments.map((a) => [a.filename, a.contentType, a.content.equals(pdf)])).toEqual([['invoice.pdf', 'application/pdf', true]]);
      expect(copy.parsed.subject).toBe('Your invoice');
    }
    expect(copies[2].envelopeTo).toEqual([bcc]);

    // The logs: one per copy, found by messageId; the uuid is our message id, which the native API serves.
    const logs = await brevo.transactionalEmails.getTransacEmailsList({ messageId: sent.messageId });
    expect(logs.count).toBe(3);
    expect(logs.transactionalEmails!.map((e) => e.email).sort()).toEqual([bcc, cc, to].sort());
    expect(logs.transactionalEmails![0]).toMatchObject({ messageId: sent.messageId, subject: 'Your invoice', from: 'billing@acme.test', tags: ['invoice'] });
    const uuid = logs.transactionalEmails!.find((e) => e.email === to)!.uuid;
    const native = await call(api.baseUrl, 'GET', `/v1/messages/${uuid}`, { headers: { authorization: `Bearer ${key}` } });
    expect(native.status).toBe(200);
    expect(native.json.subject).toBe('Your invoice');
    const content = await until(async () => {
      const c = await brevo.transactionalEmails.getTransacEmailContent({ uuid });
      return c.events.some((e) => e.name === 'sent') ? c : undefined;
    }, 10_000, 'sent event');
    expect(content).toMatchObject({ email: to, subject: 'Your invoice', attachmentCount: 1, body: '<p>Invoice attached</p>' });
  });

  it('messageVersions: one send per version, each with its own recipients and content, all or none', async () => {
    const [a, b] = [unique('va'), unique('vb')];
    const sent = await brevo.transactionalEmails.sendTransacEmail({
      sender: { email: 'news@acme.test' }, subject: 'Default subject', htmlContent: '<p>Hi</p>',
      messageVersions: [{ to: [{ email: a }] }, { to: [{ email: b }], subject: 'Version B' }],
    });
    expect(sent.messageIds).toHaveLength(2);
    const [ma, mb] = await Promise.all([arrived(a), arrived(b)]);
    expect([ma.parsed.subject, mb.parsed.subject]).toEqual(['Default subject', 'Version B']);

    // A bad second version refuses the whole request: nothing is queued for the first.
    const before = await rowCount();
    const bad = await failure(brevo.transactionalEmails.sendTransacEmail({
      sender: { email: 'news@acme.test' }, htmlContent: '<p>Hi</p>', subject: 'x',
      messageVersions: [{ to: [{ email: unique('ok') }] }, { to: [{ email: unique('bad') }], subject: 'line\nbreak' }],
    }));
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('invalid_parameter');
    expect(await rowCount()).toBe(before);
  });

  it('templateId + params render our stored template (by its number), `{{ params.x }}` as in Brevo', async () => {
    const created = await brevo.transactionalEmails.createSmtpTemplate({
      templateName: 'Welcome', subject: 'Welcome {{ params.name }}', htmlContent: '<p>Hello {{ params.name }}, code {{ code }}</p>', sender: { email: 'hello@acme.test' },
    });
    expect(Number.isInteger(created.id)).toBe(true);
    const to = unique('tpl');
    await brevo.transactionalEmails.sendTransacEmail({ to: [{ email: to }], templateId: created.id, params: { name: 'Ada', code: 42 } });
    const mail = await arrived(to);
    expect(mail.parsed.subject).toBe('Welcome Ada');
    expect(mail.parsed.html).toContain('Hello Ada, code 42');
    expect(mail.parsed.from?.value[0].address).toBe('hello@acme.test');
    const logs = await brevo.transactionalEmails.getTransacEmailsList({ templateId: created.id });
    expect(logs.transactionalEmails!.map((e) => [e.email, e.templateId])).toEqual([[to, created.id]]);
  });

  it('scheduledAt holds the send until its time', async () => {
    const to = unique('later');
    const at = new Date(Date.now() + 1500);
    await brevo.transactionalEmails.sendTransacEmail({ sender: { email: 'news@acme.test' }, to: [{ email: to }], subject: 'Later', textContent: 'later', scheduledAt: at.toISOString() });
    const mail = await arrived(to);
    expect(mail.receivedAt).toBeGreaterThanOrEqual(at.getTime());
  });

  it('DELETE /v3/smtp/email/{messageId} cancels a scheduled email: no copy goes out; a sent one cannot be', async () => {
    const [to, cc] = [unique('cancel'), unique('cancel-cc')];
    const scheduled = await brevo.transactionalEmails.sendTransacEmail({
      sender: { email: 'news@acme.test' }, to: [{ email: to }], cc: [{ email: cc }], subject: 'Never', textContent: 'x', scheduledAt: new Date(Date.now() + 60_000).toISOString(),
    });
    await brevo.transactionalEmails.deleteScheduledEmailById({ identifier: scheduled.messageId! });
    const statuses = (await database.db.query('SELECT status FROM messages WHERE proxy_job_id = $1', [/[0-9a-f-]{36}/.exec(scheduled.messageId!)![0]])).rows.map((r) => r.status);
    expect(statuses).toEqual(['cancelled', 'cancelled']);
    const again = await failure(brevo.transactionalEmails.deleteScheduledEmailById({ identifier: scheduled.messageId! }));
    expect(again).toMatchObject({ status: 400, body: { code: 'invalid_parameter', error: 'already_cancelled' } });
    const now = await brevo.transactionalEmails.sendTransacEmail({ sender: { email: 'news@acme.test' }, to: [{ email: unique('now') }], subject: 'Now', textContent: 'x' });
    expect(await failure(brevo.transactionalEmails.deleteScheduledEmailById({ identifier: now.messageId! }))).toMatchObject({ status: 400, body: { code: 'invalid_parameter' } });
    expect(await failure(client(otherKey).transactionalEmails.deleteScheduledEmailById({ identifier: scheduled.messageId! }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
  });

  it('refuses what it cannot do, naming the field (Brevo 400), and writes nothing', async () => {
    const before = await rowCount();
    const base = { sender: { email: 'news@acme.test' }, to: [{ email: unique('r') }], subject: 'x', htmlContent: '<p>x</p>' };
    const url = await failure(brevo.transactionalEmails.sendTransacEmail({ ...base, attachment: [{ url: 'https://acme.test/a.pdf', name: 'a.pdf' }] }));
    expect(url).toMatchObject({ status: 400, body: { code: 'invalid_parameter', error: 'not_supported' } });
    expect(url.body.message).toContain('attachment[0].url');
    const name = await failure(brevo.transactionalEmails.sendTransacEmail({ ...base, sender: { email: 'news@acme.test', name: 'Acme' } }));
    expect(name).toMatchObject({ status: 400, body: { code: 'invalid_parameter' } });
    expect(name.body.message).toContain('sender.name');
    const batch = await failure(brevo.transactionalEmails.sendTransacEmail({ ...base, batchId: '5c6cfa04-eed9-42c2-8b5c-6d470d978e9d' }));
    expect(batch.body.message).toContain('batchId');
    const noSubject = await failure(brevo.transactionalEmails.sendTransacEmail({ sender: base.sender, to: base.to, htmlContent: '<p>x</p>' }));
    expect(noSubject).toMatchObject({ status: 400, body: { code: 'missing_parameter', message: 'subject is missing' } });
    const exe = await failure(brevo.transactionalEmails.sendTransacEmail({ ...base, attachment: [{ name: 'x.exe', content: Buffer.from('MZ\x90\x00').toString('base64') }] }));
    expect(exe).toMatchObject({ status: 400, body: { code: 'invalid_parameter', error: 'attachment_type_refused' } });
    const unknownTemplate = await failure(brevo.transactionalEmails.sendTransacEmail({ to: base.to, templateId: 999_999 }));
    expect(unknownTemplate).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect(await rowCount()).toBe(before);
  });

  it('answers 401 unauthorized for a wrong key, with the request id in the header and the body', async () => {
    const res = await call(api.baseUrl, 'POST', '/v3/smtp/email', { headers: { 'api-key': 'se_live_nope' }, body: { to: [{ email: 'a@b.test' }] } });
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ code: 'unauthorized', request_id: res.headers.get('x-request-id') });
    const sdk = await failure(client('se_live_wrong').transactionalEmails.getSmtpTemplates({}));
    expect(sdk).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
  });

  it('GET /v3/smtp/emails/{uuid} of another tenant is document_not_found', async () => {
    const to = unique('mine');
    await brevo.transactionalEmails.sendTransacEmail({ sender: { email: 'news@acme.test' }, to: [{ email: to }], subject: 'Mine', textContent: 'x' });
    const mine = await brevo.transactionalEmails.getTransacEmailsList({ email: to });
    const uuid = mine.transactionalEmails![0].uuid;
    expect(await failure(client(otherKey).transactionalEmails.getTransacEmailContent({ uuid }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect((await client(otherKey).transactionalEmails.getTransacEmailsList({ messageId: mine.transactionalEmails![0].messageId })).count).toBe(0);
  });

  it('GET /v3/smtp/emails: a start date needs an end date; searching by email needs the recipient-search scope', async () => {
    expect(await failure(brevo.transactionalEmails.getTransacEmailsList({ startDate: '2026-01-01' }))).toMatchObject({ status: 400, body: { code: 'missing_parameter', message: 'endDate is missing' } });
    expect(await failure(brevo.transactionalEmails.getTransacEmailsList({ limit: 5000 }))).toMatchObject({ status: 400, body: { code: 'invalid_parameter' } });
    expect(await failure(client(otherKey).transactionalEmails.getTransacEmailsList({ email: 'a@example.com' }))).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
    expect(await failure(client(sendOnlyKey).transactionalEmails.getTransacEmailsList({}))).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
  });
});

describe('templates (/v3/smtp/templates)', () => {
  it('create, get, list, update (a new version), delete; numbers are per tenant', async () => {
    const { id } = await brevo.transactionalEmails.createSmtpTemplate({ templateName: 'Receipt', subject: 'Receipt {{ params.n }}', htmlContent: '<p>r</p>', sender: { email: 'hello@acme.test' } });
    const got = await brevo.transactionalEmails.getSmtpTemplate({ templateId: id });
    expect(got).toMatchObject({ id, name: 'Receipt', subject: 'Receipt {{ params.n }}', htmlContent: '<p>r</p>', isActive: true, sender: { email: 'hello@acme.test' } });
    // The same template in the native API, by the uuid Brevo's answer carries.
    const native = await call(api.baseUrl, 'GET', `/v1/templates/${got.customTemplateId}`, { headers: { authorization: `Bearer ${key}` } });
    expect(native.json).toMatchObject({ name: 'Receipt', version: 1 });
    await brevo.transactionalEmails.updateSmtpTemplate({ templateId: id, subject: 'Receipt #{{ params.n }}' });
    expect((await brevo.transactionalEmails.getSmtpTemplate({ templateId: id })).subject).toBe('Receipt #{{ params.n }}');
    expect((await call(api.baseUrl, 'GET', `/v1/templates/${got.customTemplateId}`, { headers: { authorization: `Bearer ${key}` } })).json.version).toBe(2);
    const list = await brevo.transactionalEmails.getSmtpTemplates({ limit: 100 });
    expect(list.templates!.map((t) => t.id)).toContain(id);
    expect(list.count).toBe(list.templates!.length);
    // Another tenant's first template is its number 1: ours stay ours.
    const theirs = await client(otherKey).transactionalEmails.createSmtpTemplate({ templateName: 'T', subject: 's', htmlContent: '<p>t</p>', sender: { email: 'hello@acme.test' } });
    expect(theirs.id).toBe(1);
    expect((await brevo.transactionalEmails.getSmtpTemplate({ templateId: 1 })).name).not.toBe('T');
    await brevo.transactionalEmails.deleteSmtpTemplate({ templateId: id });
    expect(await failure(brevo.transactionalEmails.getSmtpTemplate({ templateId: id }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    // A number is never reused: the next template gets a new one.
    const next = await brevo.transactionalEmails.createSmtpTemplate({ templateName: 'Next', subject: 's', htmlContent: '<p>n</p>', sender: { email: 'hello@acme.test' } });
    expect(next.id).toBeGreaterThan(id);
    // Each call's error: another account's number, a deleted one, a bad page size, a key without the scope.
    expect(await failure(client(otherKey).transactionalEmails.updateSmtpTemplate({ templateId: next.id + 100, subject: 'x' }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect(await failure(brevo.transactionalEmails.deleteSmtpTemplate({ templateId: id }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect(await failure(brevo.transactionalEmails.getSmtpTemplates({ limit: 5000 }))).toMatchObject({ status: 400, body: { code: 'invalid_parameter' } });
    expect(await failure(client(sendOnlyKey).transactionalEmails.createSmtpTemplate({ templateName: 'X', subject: 's', htmlContent: '<p>x</p>', sender: { email: 'hello@acme.test' } }))).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
  });

  it('templates created at once (Brevo and native API) draw distinct, consecutive numbers', async () => {
    const t = await createTenant(database.db, 'concurrent');
    const k = (await createApiKey(database.db, t.id, DEFAULT_SCOPES, { environment: 'live' })).secret;
    const viaBrevo = Array.from({ length: 6 }, (_, i) => client(k).transactionalEmails.createSmtpTemplate({ templateName: `B${i}`, subject: 's', htmlContent: '<p>b</p>', sender: { email: 'hello@acme.test' } }).then((r) => r.id));
    const viaNative = Array.from({ length: 6 }, (_, i) => call(api.baseUrl, 'POST', '/v1/templates', { headers: { authorization: `Bearer ${k}` }, body: { name: `N${i}`, subject: 's', html: '<p>n</p>' } }));
    const [numbers] = await Promise.all([Promise.all(viaBrevo), Promise.all(viaNative)]);
    const all = (await client(k).transactionalEmails.getSmtpTemplates({ limit: 100, sort: 'asc' })).templates!.map((x) => x.id);
    expect([...all].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(all).toEqual(expect.arrayContaining(numbers));
  });

  it('refuses a sender other than the default, and fields it has not (toField)', async () => {
    const other = await failure(brevo.transactionalEmails.createSmtpTemplate({ templateName: 'X', subject: 's', htmlContent: '<p>x</p>', sender: { email: 'someone@else.test' } }));
    expect(other).toMatchObject({ status: 400, body: { code: 'invalid_parameter' } });
    expect(other.body.message).toMatch(/^sender is not supported/);
    const toField = await failure(brevo.transactionalEmails.createSmtpTemplate({ templateName: 'X', subject: 's', htmlContent: '<p>x</p>', sender: { email: 'hello@acme.test' }, toField: '{{contact.FIRSTNAME}}' }));
    expect(toField.body.message).toContain('toField');
    const broken = await failure(brevo.transactionalEmails.createSmtpTemplate({ templateName: 'X', subject: 's', htmlContent: '<p>{% if %}</p>', sender: { email: 'hello@acme.test' } }));
    expect(broken).toMatchObject({ status: 400, body: { code: 'invalid_parameter' } });
  });
});

describe('webhooks (/v3/webhooks)', () => {
  it('create with Brevo event names (mapped to ours), get, list, update, delete', async () => {
    const created = await brevo.webhooks.createWebhook({ url: 'https://hooks.acme.example/brevo', events: ['delivered', 'hardBounce', 'opened'], description: 'ours' });
    const id = created.id as unknown as number; // our endpoint ids are uuids
    expect(String(id)).toMatch(/^[0-9a-f-]{36}$/);
    const native = await call(api.baseUrl, 'GET', `/v1/webhook-endpoints/${id}`, { headers: { authorization: `Bearer ${key}` } });
    expect(native.json.event_types.sort()).toEqual(['message.bounced', 'message.delivered', 'message.opened']);
    const got = await brevo.webhooks.getWebhook({ webhookId: id });
    expect(got).toMatchObject({ url: 'https://hooks.acme.example/brevo', description: 'ours', type: 'transactional' });
    expect([...got.events].sort()).toEqual(['delivered', 'hardBounce', 'opened', 'uniqueOpened']);
    await brevo.webhooks.updateWebhook({ webhookId: id, events: ['spam'] });
    expect((await brevo.webhooks.getWebhook({ webhookId: id })).events).toEqual(['spam']);
    expect((await brevo.webhooks.getWebhooks({})).webhooks.map((w) => w.id)).toContain(id);
    await brevo.webhooks.deleteWebhook({ webhookId: id });
    expect(await failure(brevo.webhooks.getWebhook({ webhookId: id }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect(await failure(brevo.webhooks.updateWebhook({ webhookId: id, description: 'x' }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect(await failure(brevo.webhooks.deleteWebhook({ webhookId: id }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect(await failure(client(sendOnlyKey).webhooks.getWebhooks({}))).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
  });

  it('a webhook created with Brevo event names receives those events, signed with the secret it answered', async () => {
    const receiver = await startReceiver();
    const deliverer = await startDeliverer(database.db, database.url, { SECRETS_KEY });
    try {
      const created = await brevo.webhooks.createWebhook({ url: receiver.url, events: ['sent', 'delivered'] });
      const secret = (created as unknown as { secret: string }).secret;
      const to = unique('hooked');
      const sent = await brevo.transactionalEmails.sendTransacEmail({ sender: { email: 'news@acme.test' }, to: [{ email: to }], subject: 'Hooked', textContent: 'x' });
      const uuid = (await brevo.transactionalEmails.getTransacEmailsList({ messageId: sent.messageId })).transactionalEmails![0].uuid;
      const mine = (r: { json: { data: unknown } }) => JSON.stringify(r.json.data).includes(uuid);
      const event = (await receiver.waitFor((all) => all.some(mine), `message.sent of ${uuid}`)).find(mine)!;
      expect(event.json.type).toBe('message.sent');
      const h = (k: string) => String(event.headers[k]);
      expect(() => new Webhook(secret).verify(event.body, { 'webhook-id': h('webhook-id'), 'webhook-timestamp': h('webhook-timestamp'), 'webhook-signature': h('webhook-signature') })).not.toThrow();
      await brevo.webhooks.deleteWebhook({ webhookId: created.id });
    } finally {
      await deliverer.stop();
      await receiver.close();
    }
  });

  it('refuses events and options it has not, naming them', async () => {
    const events = await failure(brevo.webhooks.createWebhook({ url: 'https://hooks.acme.example/x', events: ['delivered', 'listAddition'] }));
    expect(events).toMatchObject({ status: 400, body: { code: 'invalid_parameter' } });
    expect(events.body.message).toContain('listAddition');
    const marketing = await failure(brevo.webhooks.createWebhook({ url: 'https://hooks.acme.example/x', type: 'marketing' }));
    expect(marketing.body.message).toMatch(/^type is not supported/);
    const auth = await failure(brevo.webhooks.createWebhook({ url: 'https://hooks.acme.example/x', auth: { type: 'bearer', token: 't' } }));
    expect(auth.body.message).toContain('auth');
  });
});

describe('senders and domains (/v3/senders, /v3/senders/domains)', () => {
  it('create, list, get (records), authenticate, delete a domain, by name', async () => {
    const created = await brevo.domains.createDomain({ name: 'mail.acme.example' });
    expect(created.domain_name).toBe('mail.acme.example');
    expect(created.dns_records?.dkim_record.type).toBe('TXT');
    expect(created.dns_records?.dkim_record.value).toContain('v=DKIM1');
    expect((await brevo.domains.getDomains()).domains.map((d) => d.domain_name)).toContain('mail.acme.example');
    const config = await brevo.domains.getDomainConfiguration({ domainName: 'mail.acme.example' });
    expect(config).toMatchObject({ domain: 'mail.acme.example', verified: false, authenticated: false });
    const native = await call(api.baseUrl, 'GET', `/v1/domains/${created.id}`, { headers: { authorization: `Bearer ${key}` } });
    expect(native.json.name).toBe('mail.acme.example');
    // Authenticate looks the records up (a real DNS server): not yet published, then published.
    expect((await brevo.domains.authenticateDomain({ domainName: 'mail.acme.example' })).message).not.toMatch(/successfully/);
    for (const r of native.json.dns_records as Array<{ type: 'TXT' | 'MX' | 'CNAME'; name: string; value: string; priority?: number }>) {
      dns.add(r.name, r.type === 'MX' ? { type: 'MX', value: r.value, priority: r.priority ?? 10 } : { type: r.type, value: r.value });
    }
    expect(await brevo.domains.authenticateDomain({ domainName: 'mail.acme.example' })).toEqual({ domain_name: 'mail.acme.example', message: 'Domain has been authenticated successfully.' });
    expect(await brevo.domains.getDomainConfiguration({ domainName: 'mail.acme.example' })).toMatchObject({ verified: true, authenticated: true, dns_records: { dkim_record: { status: true } } });
    expect((await brevo.domains.getDomains()).domains.find((d) => d.domain_name === 'mail.acme.example')).toMatchObject({ verified: true, authenticated: true });
    await brevo.domains.deleteDomain({ domainName: 'mail.acme.example' });
    expect(await failure(brevo.domains.getDomainConfiguration({ domainName: 'mail.acme.example' }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect(await failure(brevo.domains.deleteDomain({ domainName: 'mail.acme.example' }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect(await failure(brevo.domains.authenticateDomain({ domainName: 'mail.acme.example' }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect(await failure(client(sendOnlyKey).domains.getDomains())).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
    const dup = await brevo.domains.createDomain({ name: 'dup.acme.example' });
    expect(dup.domain_name).toBe('dup.acme.example');
    expect(await failure(brevo.domains.createDomain({ name: 'dup.acme.example' }))).toMatchObject({ status: 400, body: { code: 'duplicate_parameter' } });
  });

  it('lists the default sender; creating a sender is refused with the reason', async () => {
    expect((await brevo.senders.getSenders({})).senders).toEqual([{ id: 1, name: '', email: 'hello@acme.test', active: true, ips: [] }]);
    const refused = await failure(brevo.senders.createSender({ name: 'Acme', email: 'x@acme.test' }));
    expect(refused).toMatchObject({ status: 400, body: { code: 'invalid_parameter' } });
    expect(await failure(client(sendOnlyKey).senders.getSenders({}))).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
  });
});

describe('transactional SMS and WhatsApp', () => {
  it('POST /v3/transactionalSMS/sms queues an SMS from an approved sender id; it reaches the provider', async () => {
    const asked = await call(api.baseUrl, 'POST', '/v1/sms/sender-id-requests', { headers: { authorization: `Bearer ${key}` }, body: { senderId: SENDER_ID } });
    await call(api.baseUrl, 'POST', `/v1/sms/sender-id-requests/${asked.json.id}/review`, { token: ADMIN_TOKEN, body: { decision: 'approve' } });
    const sent = await brevo.transactionalSms.sendTransacSms({ sender: SENDER_ID, recipient: '33612345678', content: 'Your code is 1234', type: 'transactional' });
    expect(sent).toMatchObject({ smsCount: 1 });
    const id = sent.messageId as unknown as string;
    await until(async () => (await call(api.baseUrl, 'GET', `/v1/sms/${id}`, { headers: { authorization: `Bearer ${key}` } })).json.status === 'SENT', 10_000, 'sms sent');
    expect(new URLSearchParams(twilio.requests.at(-1)!.body).get('Body')).toBe('Your code is 1234');
    expect(new URLSearchParams(twilio.requests.at(-1)!.body).get('To')).toBe('+33612345678');
    const unapproved = await failure(brevo.transactionalSms.sendTransacSms({ sender: 'NOPE', recipient: '33612345678', content: 'x' }));
    expect(unapproved).toMatchObject({ status: 400, body: { code: 'invalid_parameter' } });
    const web = await failure(brevo.transactionalSms.sendTransacSms({ sender: SENDER_ID, recipient: '33612345678', content: 'x', webUrl: 'https://acme.test/dlr' }));
    expect(web.body.message).toContain('webUrl');
  });

  it('POST /v3/whatsapp/sendMessage sends a session text to each number; a template id is refused', async () => {
    await database.db.query(`INSERT INTO whatsapp_sessions (tenant_id, phone, last_inbound_at) VALUES ($1, '+33612345671', now())`, [tenantId]);
    const sent = await brevo.transactionalWhatsApp.sendWhatsappMessage({ senderNumber: '33700000000', contactNumbers: ['33612345671'], text: 'Hello from Acme' });
    await until(() => graph.requests.find((r) => r.body.includes('Hello from Acme')), 10_000, 'graph request');
    const native = await call(api.baseUrl, 'GET', `/v1/whatsapp/${sent.messageId}`, { headers: { authorization: `Bearer ${key}` } });
    expect(native.status).toBe(200);
    const closed = await failure(brevo.transactionalWhatsApp.sendWhatsappMessage({ senderNumber: '33700000000', contactNumbers: ['33612345671', '33612345672'], text: 'x' }));
    expect(closed).toMatchObject({ status: 400, body: { error: 'session_window_closed' } });
    const template = await failure(brevo.transactionalWhatsApp.sendWhatsappMessage({ senderNumber: '33700000000', contactNumbers: ['33612345671'], templateId: 3, params: {} }));
    expect(template.body.message).toMatch(/^templateId is not supported/);
  });
});

describe('lists and contacts (/v3/contacts)', () => {
  it('lists: create (numbered per tenant), get, list, rename, delete; each call\'s error', async () => {
    const { id } = await brevo.contacts.createList({ name: 'Newsletter', folderId: 1 });
    expect(Number.isInteger(id)).toBe(true);
    expect(await brevo.contacts.getList({ listId: id })).toMatchObject({ id, name: 'Newsletter', folderId: 1, totalSubscribers: 0 });
    await brevo.contacts.updateList({ listId: id, name: 'Weekly' });
    const all = await brevo.contacts.getLists({ limit: 50 });
    expect(all.lists!.map((l) => [l.id, l.name])).toContainEqual([id, 'Weekly']);
    expect((await client(otherKey).contacts.createList({ name: 'Theirs', folderId: 1 })).id).toBe(1);
    expect(await failure(client(otherKey).contacts.getList({ listId: id + 50 }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect(await failure(brevo.contacts.createList({ name: 'X', folderId: 7 }))).toMatchObject({ status: 400, body: { code: 'invalid_parameter' } });
    expect(await failure(brevo.contacts.updateList({ listId: 999_999, name: 'x' }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect(await failure(client(sendOnlyKey).contacts.getLists({}))).toMatchObject({ status: 403, body: { code: 'permission_denied' } });
    await brevo.contacts.deleteList({ listId: id });
    expect(await failure(brevo.contacts.deleteList({ listId: id }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
  });

  it('contacts: created in lists with attributes, read across lists, added and removed, deleted; the native API sees them', async () => {
    const [a, b] = await Promise.all([brevo.contacts.createList({ name: 'A', folderId: 1 }), brevo.contacts.createList({ name: 'B', folderId: 1 })]);
    const address = unique('contact');
    const created = await brevo.contacts.createContact({ email: address, attributes: { FIRSTNAME: 'Ada', LASTNAME: 'Lovelace', PLAN: 'pro' }, listIds: [a.id] });
    expect(created?.id).toBeTruthy();
    const native = await call(api.baseUrl, 'GET', `/v1/lists/${(await database.db.query('SELECT id FROM lists WHERE tenant_id = $1 AND number = $2', [tenantId, a.id])).rows[0].id}/contacts?email=${encodeURIComponent(address)}`, { headers: { authorization: `Bearer ${key}` } });
    expect(native.json.data[0]).toMatchObject({ email: address, first_name: 'Ada', last_name: 'Lovelace', properties: { PLAN: 'pro' }, status: 'active' });
    await brevo.contacts.addContactToList({ listId: b.id, body: { emails: [address] } });
    const info = await brevo.contacts.getContactInfo({ identifier: address });
    expect(info).toMatchObject({ email: address, attributes: { FIRSTNAME: 'Ada', LASTNAME: 'Lovelace', PLAN: 'pro' }, emailBlacklisted: false });
    expect([...info.listIds].sort()).toEqual([a.id, b.id].sort());
    const dup = await failure(brevo.contacts.createContact({ email: address, listIds: [a.id] }));
    expect(dup).toMatchObject({ status: 400, body: { code: 'duplicate_parameter' } });
    await brevo.contacts.createContact({ email: address, attributes: { PLAN: 'team' }, listIds: [a.id], updateEnabled: true });
    expect((await brevo.contacts.getContactInfo({ identifier: address })).attributes).toMatchObject({ PLAN: 'team' });
    const removed = await brevo.contacts.removeContactFromList({ listId: b.id, body: { emails: [address, unique('absent')] } });
    expect(removed.contacts).toMatchObject({ success: [address], total: 1 });
    expect((await brevo.contacts.getContactInfo({ identifier: address })).listIds).toEqual([a.id]);
    expect(await failure(brevo.contacts.createContact({ email: unique('nolist') }))).toMatchObject({ status: 400, body: { code: 'missing_parameter', message: 'listIds is missing' } });
    expect(await failure(brevo.contacts.createContact({ email: unique('x'), listIds: [999_999] }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect(await failure(brevo.contacts.addContactToList({ listId: 999_999, body: { emails: [address] } }))).toMatchObject({ status: 404 });
    expect(await failure(client(otherKey).contacts.getContactInfo({ identifier: address }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    await brevo.contacts.deleteContact({ identifier: address });
    expect(await failure(brevo.contacts.getContactInfo({ identifier: address }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    expect(await failure(brevo.contacts.deleteContact({ identifier: address }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
  });
});

describe('email campaigns (/v3/emailCampaigns)', () => {
  it('create for a list, get, send now: every contact gets it; status and statistics read back; each call\'s error', async () => {
    const list = await brevo.contacts.createList({ name: 'Campaign list', folderId: 1 });
    const [x, y] = [unique('reader'), unique('reader')];
    await brevo.contacts.addContactToList({ listId: list.id, body: { emails: [x, y] } });
    const created = await brevo.emailCampaigns.createEmailCampaign({
      name: 'November', subject: 'News for {{ contact.email }}', sender: { email: 'news@acme.test' }, htmlContent: '<p>News</p>', recipients: { listIds: [list.id] },
    });
    const id = created.id as unknown as number; // our campaign ids are uuids
    expect(await brevo.emailCampaigns.getEmailCampaign({ campaignId: id })).toMatchObject({ name: 'November', status: 'draft', recipients: { lists: [list.id] }, sender: { email: 'news@acme.test' } });
    await brevo.emailCampaigns.sendEmailCampaignNow({ campaignId: id });
    const [mx, my] = await Promise.all([arrived(x), arrived(y)]);
    expect(mx.parsed.subject).toBe(`News for ${x}`);
    expect(addresses(my.parsed.to)).toEqual([y]);
    const sent = await until(async () => {
      const c = await brevo.emailCampaigns.getEmailCampaign({ campaignId: id });
      return c.status === 'sent' ? c : undefined;
    }, 15_000, 'campaign sent');
    expect(sent.statistics).toMatchObject({ globalStats: { sent: 2 } });
    // The native API reads the same campaign.
    expect((await call(api.baseUrl, 'GET', `/v1/campaigns/${id}`, { headers: { authorization: `Bearer ${key}` } })).json.status).toBe('completed');
    expect(await failure(brevo.emailCampaigns.sendEmailCampaignNow({ campaignId: id }))).toMatchObject({ status: 400, body: { code: 'invalid_parameter' } });
    expect(await failure(brevo.emailCampaigns.updateCampaignStatus({ campaignId: id, body: { status: 'suspended' } }))).toMatchObject({ status: 400, body: { code: 'invalid_parameter' } });
    expect(await failure(client(otherKey).emailCampaigns.getEmailCampaign({ campaignId: id }))).toMatchObject({ status: 404, body: { code: 'document_not_found' } });
    const two = await failure(brevo.emailCampaigns.createEmailCampaign({ name: 'x', subject: 's', sender: { email: 'news@acme.test' }, htmlContent: '<p>x</p>', recipients: { listIds: [list.id, list.id + 1] } }));
    expect(two.body.message).toMatch(/^recipients.listIds is not supported/);
  });

  it('suspend and archive map onto pause and cancel; draft is refused', async () => {
    const list = await brevo.contacts.createList({ name: 'Later list', folderId: 1 });
    await brevo.contacts.addContactToList({ listId: list.id, body: { emails: [unique('later')] } });
    const { id } = await brevo.emailCampaigns.createEmailCampaign({
      name: 'Later', subject: 'Later', sender: { email: 'news@acme.test' }, htmlContent: '<p>x</p>', recipients: { listIds: [list.id] }, scheduledAt: new Date(Date.now() + 3_600_000).toISOString(),
    });
    const campaignId = id as unknown as number;
    expect((await brevo.emailCampaigns.getEmailCampaign({ campaignId })).status).toBe('queued');
    await brevo.emailCampaigns.updateCampaignStatus({ campaignId, body: { status: 'suspended' } });
    expect((await brevo.emailCampaigns.getEmailCampaign({ campaignId })).status).toBe('suspended');
    expect((await failure(brevo.emailCampaigns.updateCampaignStatus({ campaignId, body: { status: 'draft' } }))).body.message).toMatch(/^status draft is not supported/);
    await brevo.emailCampaigns.updateCampaignStatus({ campaignId, body: { status: 'archive' } });
    expect((await brevo.emailCampaigns.getEmailCampaign({ campaignId })).status).toBe('archive');
  });
});

describe('prefixes', () => {
  it('/compat/brevo/v3 serves the same layer, and its unknown paths answer in Brevo\'s shape', async () => {
    const compat = client(key, '/compat/brevo/v3');
    expect((await compat.transactionalEmails.getSmtpTemplates({})).templates!.length).toBeGreaterThan(0);
    const unknown = await call(api.baseUrl, 'GET', '/compat/brevo/v3/account', { headers: { 'api-key': key } });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ code: 'document_not_found', request_id: unknown.headers.get('x-request-id') });
    // Under /v3 only Brevo's exact paths are ours: the rest is the app's 404.
    const root = await call(api.baseUrl, 'GET', '/v3/account', { headers: { 'api-key': key } });
    expect(root.status).toBe(404);
    expect(root.json).toMatchObject({ error: 'not_found' });
  });
});
