import * as postmark from 'postmark';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { DEFAULT_SCOPES } from '../../src/auth/scopes.ts';
import { call, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { until } from '../helpers/wait.ts';

/**
 * The real `postmark` SDK against a running engine (API + dispatcher into a real SMTP sink). The
 * SDK takes `useHttps: false` and a `requestHost` that may carry a path, so no TLS is needed.
 */
let database: TestDatabase;
let engine: TestEngine;
let sink: SmtpSink;
let client: postmark.ServerClient;
let prefixed: postmark.ServerClient;
let token: string;
let tenantId: string;
let key: string;

const clientFor = (k: string, path = '') => new postmark.ServerClient(k, { useHttps: false, requestHost: `${new URL(engine.baseUrl).host}${path}` });

beforeAll(async () => {
  database = await createTestDatabase();
  sink = await startSmtpSink();
  engine = await startTestEngine(database.db, database.url, { smtpUrl: sink.url });
  ({ token, tenantId } = await tenantWithToken(database.db));
  key = (await createApiKey(database.db, tenantId, [...DEFAULT_SCOPES, 'suppressions.manage', 'analytics.search.recipients'], { environment: 'live' })).secret;
  client = clientFor(key);
  prefixed = clientFor(key, '/compat/postmark');
});
afterAll(async () => {
  await engine?.close();
  await sink?.close();
  await database?.drop();
});

let seq = 0;
const unique = (local: string) => `${local}-${++seq}@example.com`;
const received = (address: string) => sink.messages.filter((m) => m.envelopeTo.includes(address));
const arrived = (address: string) => until(() => received(address)[0], 10_000, `mail to ${address}`);
const addressesOf = (field: unknown) => (field && !Array.isArray(field) ? (field as { value: Array<{ address: string }> }).value.map((v) => v.address) : []);
const messageCount = async () => Number((await database.db.query('SELECT count(*) FROM messages WHERE tenant_id = $1', [tenantId])).rows[0].count);
/** The SDK's rejection, for its class and fields. */
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected the SDK call to fail'); }, (e: postmark.Errors.PostmarkError) => e);

describe('email', () => {
  it('sends To (several), Cc, Bcc, ReplyTo, Headers, Tag, Metadata and an attachment; MessageID is our message id', async () => {
    const [a, b, cc, bcc] = [unique('to-a'), unique('to-b'), unique('cc'), unique('bcc')];
    const res = await client.sendEmail({
      From: 'billing@acme.test', To: `${a}, ${b}`, Cc: cc, Bcc: bcc, ReplyTo: 'support@acme.test', Subject: 'Receipt',
      HtmlBody: '<p>Thanks</p>', TextBody: 'Thanks', Tag: 'receipt', Metadata: { order: '42' }, Headers: [{ Name: 'X-Order', Value: '42' }],
      Attachments: [{ Name: 'receipt.txt', Content: Buffer.from('paid').toString('base64'), ContentType: 'text/plain', ContentID: null }],
      MessageStream: 'outbound', TrackOpens: false, TrackLinks: postmark.Models.LinkTrackingOptions.None,
    });
    expect(res).toMatchObject({ ErrorCode: 0, Message: 'OK', To: `${a}, ${b}` });
    const copies = await Promise.all([a, b, cc, bcc].map(arrived));
    for (const copy of copies) {
      expect(addressesOf(copy.parsed.to)).toEqual([a, b]);
      expect(addressesOf(copy.parsed.cc)).toEqual([cc]);
      expect(addressesOf(copy.parsed.replyTo)).toEqual(['support@acme.test']);
      expect(copy.parsed.headers.get('x-order')).toBe('42');
      expect(copy.parsed.attachments.map((x) => [x.filename, x.content.toString()])).toEqual([['receipt.txt', 'paid']]);
    }
    expect(copies[3].envelopeTo).toEqual([bcc]);
    expect(copies[0].messageId).toBe(res.MessageID);
    const native = await call(engine.baseUrl, 'GET', `/v1/messages/${res.MessageID}`, { token });
    expect(native.json).toMatchObject({ id: res.MessageID, subject: 'Receipt' });
  });

  it('refuses what it cannot do with ErrorCode 300 naming the field, sends nothing, and answers 401/10 for a bad token', async () => {
    const before = await messageCount();
    const named = await failure(client.sendEmail({ From: 'Acme <billing@acme.test>', To: unique('x'), Subject: 'x', TextBody: 'x' }));
    expect(named).toBeInstanceOf(postmark.Errors.ApiInputError);
    expect(named).toMatchObject({ code: 300, statusCode: 422 });
    expect(named.message).toMatch(/^From: display names/);
    const opens = await failure(client.sendEmail({ From: 'billing@acme.test', To: unique('x'), Subject: 'x', TextBody: 'x', TrackOpens: true }));
    expect(opens.message).toMatch(/^TrackOpens: /);
    const stream = await failure(client.sendEmail({ From: 'billing@acme.test', To: unique('x'), Subject: 'x', TextBody: 'x', MessageStream: 'broadcast' }));
    expect(stream.message).toMatch(/^MessageStream: /);
    const inline = await failure(client.sendEmail({ From: 'billing@acme.test', To: unique('x'), Subject: 'x', TextBody: 'x', Attachments: [{ Name: 'a.png', Content: 'AAAA', ContentType: 'image/png', ContentID: 'cid:a' }] }));
    expect(inline.message).toMatch(/^Attachments\[0\]\.ContentID: /);
    expect(await messageCount()).toBe(before);
    const bad = await failure(clientFor('se_live_not-a-key').sendEmail({ From: 'billing@acme.test', To: unique('x'), Subject: 'x', TextBody: 'x' }));
    expect(bad).toBeInstanceOf(postmark.Errors.InvalidAPIKeyError);
    expect(bad).toMatchObject({ code: 10, statusCode: 401 });
  });

  it('batch: each message answered on its own; a bad one does not stop the others', async () => {
    const [a, b] = [unique('batch-a'), unique('batch-b')];
    const res = await prefixed.sendEmailBatch([
      { From: 'billing@acme.test', To: a, Subject: 'A', TextBody: 'a' },
      { From: 'billing@acme.test', To: unique('batch-bad'), Subject: 'B', TextBody: 'b', TrackOpens: true },
      { From: 'billing@acme.test', To: b, Subject: 'C', HtmlBody: '<p>c</p>' },
    ]);
    expect(res.map((r) => r.ErrorCode)).toEqual([0, 300, 0]);
    expect(res[1].Message).toMatch(/^TrackOpens: /);
    expect((await arrived(b)).parsed.subject).toBe('C');
    await arrived(a);
    const wrongType = await prefixed.sendEmailBatch([{ From: 'billing@acme.test', To: 42 as unknown as string, Subject: 'x', TextBody: 'x' }]);
    expect(wrongType[0]).toMatchObject({ ErrorCode: 300, Message: '[0]/To must be string' });
  });
});

describe('templates', () => {
  it('creates, reads by id and alias, edits, lists, sends with, and deletes a template', async () => {
    const created = await client.createTemplate({ Name: 'Welcome', Alias: 'welcome', Subject: 'Hi {{ name }}', HtmlBody: '<p>Hello {{ name }}</p>', TextBody: 'Hello {{ name }}' });
    expect(created).toMatchObject({ Name: 'Welcome', Alias: 'welcome', Active: true, TemplateType: 'Standard' });
    const native = await call(engine.baseUrl, 'GET', `/v1/templates/${created.TemplateId}`, { token });
    expect(native.json).toMatchObject({ slug: 'welcome', version: 1 });
    expect(await client.getTemplate('welcome')).toMatchObject({ TemplateId: created.TemplateId, Subject: 'Hi {{ name }}' });
    await client.editTemplate(created.TemplateId, { Subject: 'Welcome {{ name }}' });
    expect(await client.getTemplate(created.TemplateId)).toMatchObject({ Subject: 'Welcome {{ name }}', TextBody: 'Hello {{ name }}' });
    expect((await client.getTemplates()).Templates.map((t) => t.Alias)).toContain('welcome');

    const to = unique('templated');
    const sent = await client.sendEmailWithTemplate({ From: 'hello@acme.test', To: to, TemplateAlias: 'welcome', TemplateModel: { name: 'Ada' } });
    expect(sent.ErrorCode).toBe(0);
    const mail = await arrived(to);
    expect(mail.parsed.subject).toBe('Welcome Ada');
    expect(mail.parsed.text?.trim()).toBe('Hello Ada');

    const [x, y] = [unique('tpl-batch-x'), unique('tpl-batch-y')];
    const batch = await client.sendEmailBatchWithTemplates([
      { From: 'hello@acme.test', To: x, TemplateId: created.TemplateId, TemplateModel: { name: 'X' } },
      { From: 'hello@acme.test', To: unique('tpl-batch-bad'), TemplateAlias: 'nope', TemplateModel: {} },
      { From: 'hello@acme.test', To: y, TemplateAlias: 'welcome', TemplateModel: { name: 'Y' } },
    ]);
    expect(batch.map((r) => r.ErrorCode)).toEqual([0, 1101, 0]);
    expect((await arrived(y)).parsed.subject).toBe('Welcome Y');
    expect((await arrived(x)).parsed.subject).toBe('Welcome X');

    const missing = await failure(client.sendEmailWithTemplate({ From: 'hello@acme.test', To: unique('x'), TemplateAlias: 'nope', TemplateModel: {} }));
    expect(missing).toMatchObject({ code: 1101, statusCode: 422 });
    expect((await client.deleteTemplate('welcome')).ErrorCode).toBe(0);
    expect(await failure(client.getTemplate('welcome'))).toMatchObject({ code: 1101 });
  });

  it('refuses layouts by name', async () => {
    const layout = await failure(client.createTemplate({ Name: 'Base', Subject: 'x', HtmlBody: '{{{ @content }}}', TemplateType: postmark.Models.TemplateTypes.Layout }));
    expect(layout).toMatchObject({ code: 300 });
    expect(layout.message).toMatch(/^TemplateType: /);
  });
});

describe('messages', () => {
  it('lists outbound messages and shows one with its events; an unknown id is 701', async () => {
    const to = unique('listed');
    const sent = await client.sendEmail({ From: 'billing@acme.test', To: to, Subject: 'Listed', TextBody: 'x', Tag: 'welcome' });
    await arrived(to);
    const details = await until(async () => {
      const d = await client.getOutboundMessageDetails(sent.MessageID);
      return d.Status === 'Sent' ? d : undefined;
    }, 15_000, 'status Sent');
    expect(details).toMatchObject({ MessageID: sent.MessageID, Subject: 'Listed', Status: 'Sent', Tag: 'welcome', To: [{ Email: to, Name: '' }], Recipients: [to], TextBody: 'x' });
    expect(details.MessageEvents).toContainEqual(expect.objectContaining({ Recipient: to, Type: 'Sent' }));
    const list = await client.getOutboundMessages({ count: 50, offset: 0, recipient: to });
    expect(list.Messages.map((m) => m.MessageID)).toEqual([sent.MessageID]);
    expect(await failure(client.getOutboundMessageDetails('01890000-0000-7000-8000-000000000000'))).toMatchObject({ code: 701, statusCode: 422 });
    const paged = await failure(client.getOutboundMessages({ count: 50, offset: 50 }));
    expect(paged.message).toMatch(/^offset: /);
  });
});

describe('webhooks', () => {
  it('creates, reads, lists, edits and deletes a webhook; triggers map to our event types', async () => {
    const created = await client.createWebhook({ Url: 'https://hooks.acme.test/pm', Triggers: { Delivery: { Enabled: true }, Bounce: { Enabled: true, IncludeContent: false } } });
    expect(created.Triggers).toMatchObject({ Delivery: { Enabled: true }, Bounce: { Enabled: true }, Open: { Enabled: false } });
    const native = await call(engine.baseUrl, 'GET', `/v1/webhook-endpoints/${created.ID}`, { token });
    expect(native.json.event_types).toEqual(['message.delivered', 'message.bounced']);
    expect(await client.getWebhook(created.ID)).toMatchObject({ ID: created.ID, Url: 'https://hooks.acme.test/pm' });
    expect((await client.getWebhooks()).Webhooks.map((w) => w.ID)).toContain(created.ID);
    const edited = await client.editWebhook(created.ID, { Triggers: { Open: { Enabled: true } } });
    expect(edited.Triggers).toMatchObject({ Open: { Enabled: true }, Delivery: { Enabled: false } });
    expect((await client.deleteWebhook(created.ID)).ErrorCode).toBe(0);
    expect(await failure(client.getWebhook(created.ID))).toMatchObject({ statusCode: 404 });
  });

  it('refuses basic auth and custom headers by name', async () => {
    const auth = await failure(client.createWebhook({ Url: 'https://hooks.acme.test/pm2', HttpAuth: { Username: 'u', Password: 'p' }, Triggers: { Delivery: { Enabled: true } } }));
    expect(auth).toMatchObject({ code: 300 });
    expect(auth.message).toMatch(/^HttpAuth: /);
  });
});

describe('suppressions', () => {
  it('adds, lists and removes suppressions; a suppressed recipient is not sent to', async () => {
    const blocked = unique('blocked');
    const added = await client.createSuppressions('outbound', { Suppressions: [{ EmailAddress: blocked }] });
    expect(added.Suppressions).toEqual([{ EmailAddress: blocked, Status: 'Suppressed', Message: null }]);
    const dump = await client.getSuppressions('outbound');
    expect(dump.Suppressions).toContainEqual(expect.objectContaining({ EmailAddress: blocked, SuppressionReason: 'ManualSuppression', Origin: 'Customer' }));
    const sent = await client.sendEmail({ From: 'billing@acme.test', To: blocked, Subject: 'x', TextBody: 'x' });
    expect((await client.getOutboundMessageDetails(sent.MessageID)).Status).toBe('Blocked');
    const removed = await client.deleteSuppressions('outbound', { Suppressions: [{ EmailAddress: blocked }, { EmailAddress: unique('never') }] });
    expect(removed.Suppressions.map((s) => s.Status)).toEqual(['Deleted', 'Failed']);
    expect((await client.getSuppressions('outbound')).Suppressions.map((s) => s.EmailAddress)).not.toContain(blocked);
  });

  it('needs suppressions.manage to change the list', async () => {
    const plain = clientFor((await createApiKey(database.db, tenantId, DEFAULT_SCOPES, { environment: 'live' })).secret);
    const denied = await failure(plain.createSuppressions('outbound', { Suppressions: [{ EmailAddress: unique('x') }] }));
    expect(denied).toMatchObject({ code: 10, statusCode: 401, message: 'missing scope: suppressions.manage' });
  });
});

describe('the root', () => {
  it('Postmark paths at the root need the Postmark header; another tenant\'s ids are not found', async () => {
    const sent = await client.sendEmail({ From: 'billing@acme.test', To: unique('mine'), Subject: 'x', TextBody: 'x' });
    const asBearer = await call(engine.baseUrl, 'POST', '/email', { body: {}, headers: { authorization: `Bearer ${key}` } });
    expect(asBearer.json).toMatchObject({ error: 'not_found' });
    const other = await tenantWithToken(database.db, DEFAULT_SCOPES, 'other');
    const stranger = clientFor((await createApiKey(database.db, other.tenantId, DEFAULT_SCOPES, { environment: 'live' })).secret);
    expect(await failure(stranger.getOutboundMessageDetails(sent.MessageID))).toMatchObject({ code: 701 });
  });
});
