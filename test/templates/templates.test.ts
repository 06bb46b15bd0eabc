import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';
import { call, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
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

const api = (method: string, path: string, body?: unknown, t = token) => call(engine.baseUrl, method, path, { token: t, body });
const count = async (table: string) => Number((await database.db.query(`SELECT count(*) FROM ${table}`)).rows[0].count);

let seq = 0;
async function create(overrides: Record<string, unknown> = {}) {
  const res = await api('POST', '/v1/templates', { name: `Receipt ${++seq}`, subject: 'Your order {{ order.id }}', html: '<p>Hello {{ name }}</p>', ...overrides });
  expect(res.status, res.text).toBe(201);
  return res.json;
}

describe('stored templates', () => {
  it('creates version 1 with a slug made from the name, readable by id and by slug', async () => {
    const res = await api('POST', '/v1/templates', { name: 'Order Confirmation!', subject: 'Order {{ order.id }}', html: '<p>Hi {{ name }}</p>' });
    expect(res.status).toBe(201);
    expect(res.json).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/), slug: 'order-confirmation', version: 1, name: 'Order Confirmation!',
      subject: 'Order {{ order.id }}', html: '<p>Hi {{ name }}</p>', text: null, created_at: expect.any(String), updated_at: expect.any(String),
    });
    expect((await api('GET', `/v1/templates/${res.json.id}`)).json).toEqual(res.json);
    expect((await api('GET', '/v1/templates/order-confirmation')).json).toEqual(res.json);
  });

  it('PUT adds a version; every earlier version stays readable', async () => {
    const t = await create({ slug: 'welcome' });
    const put = await api('PUT', '/v1/templates/welcome', { name: 'Welcome v2', subject: 'Welcome, {{ name }}', text: 'Hi {{ name }}' });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ id: t.id, slug: 'welcome', version: 2, name: 'Welcome v2', html: null, text: 'Hi {{ name }}' });
    const versions = await api('GET', `/v1/templates/${t.id}/versions`);
    expect(versions.json.data.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    const v1 = await api('GET', `/v1/templates/${t.id}/versions/1`);
    expect(v1.json).toMatchObject({ template_id: t.id, version: 1, subject: t.subject, html: t.html });
    expect((await api('GET', `/v1/templates/${t.id}/versions/3`)).status).toBe(404);
  });

  it('lists newest first in cursor pages', async () => {
    await create();
    await create();
    const first = await api('GET', '/v1/templates?limit=1');
    expect(first.json.data).toHaveLength(1);
    expect(first.json.pagination.has_more).toBe(true);
    const second = await api('GET', `/v1/templates?limit=1&cursor=${first.json.pagination.next_cursor}`);
    expect(second.json.data[0].created_at <= first.json.data[0].created_at).toBe(true);
    expect(second.json.data[0].id).not.toBe(first.json.data[0].id);
  });

  it('refuses a template that does not parse, a taken or malformed slug, and writes nothing', async () => {
    await create({ slug: 'taken' });
    const before = await count('template_versions');
    const broken = await api('POST', '/v1/templates', { name: 'x', subject: 'Hi', html: '{% if %}' });
    expect([broken.status, broken.json.error]).toEqual([422, 'template_error']);
    const unknownFilter = await api('POST', '/v1/templates', { name: 'x', subject: 'Hi', html: '{{ name | nosuchfilter }}' });
    expect([unknownFilter.status, unknownFilter.json.error]).toEqual([422, 'template_error']);
    const taken = await api('POST', '/v1/templates', { name: 'x', subject: 'Hi', text: 'x', slug: 'taken' });
    expect([taken.status, taken.json.error]).toEqual([409, 'slug_taken']);
    const uuidSlug = await api('POST', '/v1/templates', { name: 'x', subject: 'Hi', text: 'x', slug: newId() });
    expect([uuidSlug.status, uuidSlug.json.error]).toEqual([422, 'invalid_slug']);
    const empty = await api('POST', '/v1/templates', { name: 'x', subject: 'Hi' });
    expect([empty.status, empty.json.error]).toEqual([422, 'validation_error']);
    expect(await count('template_versions')).toBe(before);
  });
});

describe('POST /v1/templates/{id}/render', () => {
  it('renders with variables (html escaped) and makes the text part from the html when only html is given', async () => {
    const t = await create({ html: '<p>Hello <b>{{ name }}</b></p><p><a href="https://acme.test/o/{{ order.id }}">Your order</a></p>' });
    const res = await api('POST', `/v1/templates/${t.id}/render`, { variables: { name: 'Ada <script>', order: { id: 42 } } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      template_id: t.id, version: 1, subject: 'Your order 42',
      html: '<p>Hello <b>Ada &lt;script&gt;</b></p><p><a href="https://acme.test/o/42">Your order</a></p>',
      text: 'Hello Ada <script>\n\nYour order [https://acme.test/o/42]',
    });
  });

  it('a missing variable renders empty, or with strict is a 422 missing_variable naming it', async () => {
    const t = await create();
    const lenient = await api('POST', `/v1/templates/${t.id}/render`, { variables: { order: { id: 1 } } });
    expect(lenient.json.html).toBe('<p>Hello </p>');
    const strict = await api('POST', `/v1/templates/${t.id}/render`, { variables: { order: { id: 1 } }, strict: true });
    expect(strict.status).toBe(422);
    expect(strict.json.error).toBe('missing_variable');
    expect(strict.json.message).toContain('"name"');
    const nested = await api('POST', `/v1/templates/${t.id}/render`, { variables: { name: 'x' }, strict: true });
    expect([nested.status, nested.json.error]).toEqual([422, 'missing_variable']);
    expect(nested.json.message).toContain('"order"');
  });

  it('a runaway template is stopped by the render limits (422 template_error), and the API keeps answering', async () => {
    // Harmless with no variables (so it is saved), unbounded with n.
    const t = await create({ html: '{% for i in (1..n) %}{% for j in (1..n) %}x{% endfor %}{% endfor %}' });
    const res = await api('POST', `/v1/templates/${t.id}/render`, { variables: { n: 100000000 } });
    expect([res.status, res.json.error]).toEqual([422, 'template_error']);
    expect((await call(engine.baseUrl, 'GET', '/v1/_health')).status).toBe(200);
  });
});

describe('DELETE /v1/templates/{id}', () => {
  it('is refused with 409 template_in_use while a pending or running send job uses it', async () => {
    const t = await create();
    const campaign = newId();
    const job = newId();
    const list = newId();
    await database.db.query('INSERT INTO campaigns (id, tenant_id) VALUES ($1, $2)', [campaign, tenantId]);
    await database.db.query('INSERT INTO lists (tenant_id, id) VALUES ($1, $2)', [tenantId, list]);
    await database.db.query(
      `INSERT INTO send_jobs (id, tenant_id, list_id, campaign_id, from_address, template, scheduled_at, status, template_id)
       VALUES ($1, $2, $3, $4, 'a@acme.test', '{"subject":"x"}', now() + interval '1 day', 'pending', $5)`,
      [job, tenantId, list, campaign, t.id],
    );
    const refused = await api('DELETE', `/v1/templates/${t.id}`);
    expect([refused.status, refused.json.error]).toEqual([409, 'template_in_use']);
    expect((await api('GET', `/v1/templates/${t.id}`)).status).toBe(200);
    await database.db.query(`UPDATE send_jobs SET status = 'completed' WHERE id = $1`, [job]);
    expect((await api('DELETE', `/v1/templates/${t.id}`)).status).toBe(204);
    expect((await api('GET', `/v1/templates/${t.id}`)).status).toBe(404);
    expect((await database.db.query('SELECT count(*) FROM template_versions WHERE template_id = $1', [t.id])).rows[0].count).toBe(0);
  });
});

describe('tenants and scopes', () => {
  it("another tenant's template answers 404 on every route", async () => {
    const t = await create({ slug: 'mine-only' });
    for (const [method, path, body] of [
      ['GET', `/v1/templates/${t.id}`], ['GET', '/v1/templates/mine-only'], ['PUT', `/v1/templates/${t.id}`, { name: 'x', subject: 'x', text: 'x' }],
      ['DELETE', `/v1/templates/${t.id}`], ['GET', `/v1/templates/${t.id}/versions`], ['GET', `/v1/templates/${t.id}/versions/1`],
      ['POST', `/v1/templates/${t.id}/render`, {}], ['GET', `/v1/templates/${t.id}/performance`], ['POST', `/v1/templates/${t.id}/test`, { to: 'x@example.com', from: 'a@acme.test' }],
    ] as const) {
      const res = await api(method, path, body, otherToken);
      expect([method, path, res.status, res.json.error]).toEqual([method, path, 404, 'not_found']);
    }
    expect((await api('GET', '/v1/templates', undefined, otherToken)).json.data).toEqual([]);
    expect((await api('GET', `/v1/templates/${t.id}`)).json.version).toBe(1);
  });

  it('writing needs templates.manage; reading and previews need templates.view', async () => {
    const { token: viewer } = await tenantWithToken(database.db, ['templates.view']);
    const denied = await api('POST', '/v1/templates', { name: 'x', subject: 'x', text: 'x' }, viewer);
    expect([denied.status, denied.json.error, denied.json.message]).toEqual([403, 'permission_denied', 'missing scope: templates.manage']);
    expect((await api('GET', '/v1/templates', undefined, viewer)).status).toBe(200);
    const { token: sender } = await tenantWithToken(database.db, ['send']);
    expect((await api('GET', '/v1/templates', undefined, sender)).json.error).toBe('permission_denied');
  });
});

describe('POST /v1/templates/{id}/test', () => {
  it('sends the rendered current version through the outbox, recording template id and version', async () => {
    const t = await create({ subject: 'Test for {{ name }}', html: '<p>Hi {{ name }}</p>' });
    await api('PUT', `/v1/templates/${t.id}`, { name: t.name, subject: 'v2 for {{ name }}', html: '<p>Hello {{ name }}</p>' });
    const res = await api('POST', `/v1/templates/${t.id}/test`, { to: 'tester@example.com', variables: { name: 'Grace' } });
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ job_id: expect.any(String), status: 'queued', template_id: t.id, version: 2 });
    const [received] = await sink.waitFor(1);
    expect(received.parsed.subject).toBe('v2 for Grace');
    expect(received.parsed.html).toContain('<p>Hello Grace</p>');
    expect(received.parsed.text?.trim()).toBe('Hello Grace');
    expect(received.envelopeFrom).toBe('news@acme.test');
    const job = (await database.db.query('SELECT template_id, template_version FROM proxy_jobs WHERE id = $1', [res.json.job_id])).rows[0];
    expect(job).toEqual({ template_id: t.id, template_version: 2 });

    // Performance keys on template id and version.
    const perf = await until(async () => {
      const r = await api('GET', `/v1/templates/${t.slug}/performance`);
      return r.json.data[0]?.sent === 1 && r.json;
    }, 10_000, 'the send counted');
    expect(perf).toEqual({
      template_id: t.id,
      data: [{ version: 2, sends: 1, sent: 1, delivered: 0, opens: 0, clicks: 0, bounced: 0, complained: 0, bounce_rate: 0, complaint_rate: 0, open_rate: 0, click_rate: 0 }],
    });

    // The tenant's template report counts the transactional send under the same id and version,
    // named by the template's slug; another tenant's report does not see it.
    const report = await until(async () => {
      const r = await api('GET', `/v1/reports/template-performance?template=${t.slug}`);
      return r.json.data[0]?.sent === 1 && r.json.data;
    }, 10_000, 'the send in the template report');
    expect(report).toEqual([expect.objectContaining({ template: t.slug, template_id: t.id, version: 2, sent: 1 })]);
    expect((await api('GET', `/v1/reports/template-performance?template=${t.slug}`, undefined, otherToken)).json.data).toEqual([]);

    // The message names the stored template and version it was made from; another tenant sees 404.
    const { rows: [message] } = await database.db.query('SELECT id FROM messages WHERE proxy_job_id = $1', [res.json.job_id]);
    expect((await api('GET', `/v1/messages/${message.id}`)).json).toMatchObject({ id: message.id, template: t.slug, template_id: t.id, template_version: 2 });
    const listed = await api('GET', `/v1/messages?template=${t.slug}`);
    expect(listed.json.data.map((m: any) => m.id)).toEqual([message.id]);
    const foreign = await api('GET', `/v1/messages/${message.id}`, undefined, otherToken);
    expect([foreign.status, foreign.json.error]).toEqual([404, 'not_found']);
  });
});

describe('template performance of list sends', () => {
  it('a campaign made from a stored template counts under its id and version, an inline one under its name', async () => {
    const t = await create({ subject: 'News for {{ contact.email }}', html: '<p>News</p>' });
    await api('PUT', `/v1/templates/${t.id}`, { name: t.name, subject: 'News v2', html: '<p>News v2</p>' });
    const { issueToken } = await import('../../src/auth/jwt.ts');
    const { TEST_JWT_SECRET } = await import('../helpers/app.ts');
    const lists = await issueToken(TEST_JWT_SECRET, { tenantId, scopes: ['lists.manage', 'lists.view'], ttl: '1h' });
    const list = (await api('POST', '/v1/lists', { name: 'Readers' }, lists)).json.id;
    expect((await api('PUT', `/v1/lists/${list}/contacts`, { email: 'reader@example.com' }, lists)).json.status).toBe('active');
    const stored = await api('POST', '/v1/campaigns', { name: 'Weekly', list_id: list, template_id: t.id, from: 'news@acme.test' });
    expect(stored.status, stored.text).toBe(201);
    const inline = await api('POST', '/v1/campaigns', { name: 'One-off', list_id: list, subject: 'Hello', html: '<p>Hello</p>', from: 'news@acme.test' });
    expect(inline.status, inline.text).toBe(201);
    for (const c of [stored.json, inline.json]) expect((await api('POST', `/v1/campaigns/${c.id}/schedule`, {})).status).toBe(200);

    const report = await until(async () => {
      const r = await api('GET', '/v1/reports/template-performance');
      // (The tenant's earlier test sends count too: wait for these two rows by name.)
      const counted = (row: any) => row.sent > 0 && (row.template_id === t.id || row.template === 'One-off');
      return r.json.data.filter(counted).length === 2 && r.json.data;
    }, 20_000, 'both campaigns counted');
    expect(report.find((row: any) => row.template_id === t.id)).toMatchObject({ template: t.slug, template_id: t.id, version: 2, sent: 1 });
    expect(report.find((row: any) => row.template === 'One-off')).toMatchObject({ template_id: null, version: null, sent: 1 });
    // The name filter matches the stored template's slug, case-insensitively.
    const one = await api('GET', `/v1/reports/template-performance?template=${t.slug.toUpperCase()}`);
    expect(one.json.data).toEqual([expect.objectContaining({ template_id: t.id, version: 2 })]);
    const { rows: [message] } = await database.db.query(`SELECT m.id FROM messages m JOIN send_jobs sj ON sj.id = m.send_job_id WHERE sj.template_id = $1`, [t.id]);
    expect((await api('GET', `/v1/messages/${message.id}`)).json).toMatchObject({ template: t.slug, template_id: t.id, template_version: 2 });
  });
});
