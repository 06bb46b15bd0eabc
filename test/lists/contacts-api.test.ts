import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { memberCenter } from './helpers.ts';

/** Lists the API owns and their contacts (/v1/lists): one source of truth per list, opt-outs stand. */
let database: TestDatabase;
let t: TestApp;
let token: string;
let other: string;

const SCOPES = ['lists.view', 'lists.manage'] as const;

beforeAll(async () => {
  database = await createTestDatabase();
  t = await startTestApp(database.db, database.url);
  token = (await tenantWithToken(database.db, [...SCOPES])).token;
  other = (await tenantWithToken(database.db, [...SCOPES], 'other')).token;
});
afterAll(async () => {
  await t?.close();
  await database?.drop();
});

const api = (method: string, path: string, body?: unknown, tok = token) => call(t.baseUrl, method, path, { token: tok, body });

async function newList(name = 'Readers') {
  const r = await api('POST', '/v1/lists', { name });
  expect(r.status).toBe(201);
  return r.json.id as string;
}

describe('API lists', () => {
  it('creates, reads, pages, renames and deletes a list; another tenant sees 404', async () => {
    const id = await newList('First');
    const second = await newList('Second');
    const got = await api('GET', `/v1/lists/${id}`);
    expect(got.json).toMatchObject({ id, name: 'First', owner: 'api', double_opt_in: null, members: { total: 0 } });
    const page1 = await api('GET', '/v1/lists?limit=1');
    expect(page1.json.data).toHaveLength(1);
    expect(page1.json.pagination.has_more).toBe(true);
    const page2 = await api('GET', `/v1/lists?limit=1&cursor=${page1.json.pagination.next_cursor}`);
    expect(page2.json.data[0].id).not.toBe(page1.json.data[0].id);
    expect((await api('PATCH', `/v1/lists/${id}`, { name: 'Renamed' })).json.name).toBe('Renamed');

    for (const [method, path, body] of [['GET', `/v1/lists/${id}`], ['PATCH', `/v1/lists/${id}`, { name: 'x' }], ['DELETE', `/v1/lists/${id}`], ['POST', `/v1/lists/${id}/contacts`, { email: 'a@x.test' }], ['GET', `/v1/lists/${id}/contacts`]] as const) {
      const r = await api(method, path, body, other);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.json.error).toBe('not_found');
    }
    expect((await api('DELETE', `/v1/lists/${second}`)).status).toBe(204);
    expect((await api('GET', `/v1/lists/${second}`)).status).toBe(404);
  });

  it('one source of truth: API writes to a Member Center list answer 409, webhooks naming an API list answer 409', async () => {
    const mc = await memberCenter(database.db, t.baseUrl);
    expect((await mc.event('subscription.activated', { id: crypto.randomUUID(), email: 'm@x.test', status: 'active' }, new Date())).status).toBe(200);
    const mcToken = (await tenantWithToken(database.db, [...SCOPES])).token;
    void mcToken;
    const asMc = (method: string, path: string, body?: unknown) => call(t.baseUrl, method, path, { token: mc.token, body });
    // The MC's tenant token lacks lists.manage by default: give it one.
    const { issueToken } = await import('../../src/auth/jwt.ts');
    const { TEST_JWT_SECRET } = await import('../helpers/app.ts');
    const mcWriter = await issueToken(TEST_JWT_SECRET, { tenantId: mc.tenantId, scopes: [...SCOPES], ttl: '1h' });
    const write = await call(t.baseUrl, 'POST', `/v1/lists/${mc.listId}/contacts`, { token: mcWriter, body: { email: 'a@x.test' } });
    expect(write.status).toBe(409);
    expect(write.json.error).toBe('list_owned_by_member_center');
    const patch = await call(t.baseUrl, 'PATCH', `/v1/lists/${mc.listId}`, { token: mcWriter, body: { name: 'mine now' } });
    expect(patch.json.error).toBe('list_owned_by_member_center');
    expect((await asMc('GET', `/v1/lists/${mc.listId}`)).json.owner).toBe('member_center');

    const created = await call(t.baseUrl, 'POST', '/v1/lists', { token: mcWriter, body: { name: 'API list' } });
    const hijack = await mc.event('subscription.activated', { id: crypto.randomUUID(), email: 'h@x.test', status: 'active' }, new Date(), { list_id: created.json.id });
    expect(hijack.status).toBe(409);
    expect(hijack.json.error).toBe('list_owned_by_api');
    const sync = await mc.batch(crypto.randomUUID(), 1, 1, [{ id: crypto.randomUUID(), email: 's@x.test', status: 'active' }], new Date(), { list_id: created.json.id });
    expect(sync.json.error).toBe('list_owned_by_api');
    const { rows } = await database.db.query('SELECT count(*)::int AS n FROM list_members WHERE list_id = $1', [created.json.id]);
    expect(rows[0].n).toBe(0);
  });
});

describe('contacts', () => {
  it('adds, upserts by email, patches (properties merged), filters, pages and deletes contacts', async () => {
    const list = await newList();
    const a = await api('POST', `/v1/lists/${list}/contacts`, { email: 'Ann@X.test', first_name: 'Ann', properties: { plan: 'pro' } });
    expect(a.status).toBe(201);
    expect(a.json).toMatchObject({ email: 'Ann@X.test', first_name: 'Ann', status: 'active', properties: { plan: 'pro' } });
    const dup = await api('POST', `/v1/lists/${list}/contacts`, { email: 'ann@x.test' });
    expect(dup.status).toBe(409);
    expect(dup.json.error).toBe('contact_exists');
    const put = await api('PUT', `/v1/lists/${list}/contacts`, { email: 'ann@x.test', last_name: 'Lee', properties: { city: 'Oslo' } });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ id: a.json.id, first_name: 'Ann', last_name: 'Lee', properties: { plan: 'pro', city: 'Oslo' } });
    expect((await api('PUT', `/v1/lists/${list}/contacts`, { email: 'bob@x.test' })).status).toBe(201);
    const patched = await api('PATCH', `/v1/lists/${list}/contacts/${a.json.id}`, { first_name: 'Anne' });
    expect(patched.json.first_name).toBe('Anne');

    const byEmail = await api('GET', `/v1/lists/${list}/contacts?email=BOB@x.test`);
    expect(byEmail.json.data.map((c: any) => c.email)).toEqual(['bob@x.test']);
    const p1 = await api('GET', `/v1/lists/${list}/contacts?limit=1`);
    const p2 = await api('GET', `/v1/lists/${list}/contacts?limit=1&cursor=${p1.json.pagination.next_cursor}`);
    expect([p1.json.data[0].id, p2.json.data[0].id].sort()).toEqual([a.json.id, byEmail.json.data[0].id].sort());
    expect(p2.json.pagination.has_more).toBe(false);

    expect((await api('GET', `/v1/lists/${list}/contacts/${a.json.id}`, undefined, other)).status).toBe(404);
    expect((await api('DELETE', `/v1/lists/${list}/contacts/${a.json.id}`)).status).toBe(204);
    expect((await api('GET', `/v1/lists/${list}/contacts/${a.json.id}`)).status).toBe(404);
  });

  it('an opt-out stands: neither an upsert, a patch nor an import with subscribed=true re-subscribes', async () => {
    const list = await newList();
    const c = await api('PUT', `/v1/lists/${list}/contacts`, { email: 'out@x.test' });
    const off = await api('PATCH', `/v1/lists/${list}/contacts/${c.json.id}`, { subscribed: false });
    expect(off.json.status).toBe('unsubscribed');
    expect(off.json.opted_out_at).not.toBeNull();
    // The opt-out is queued for webhook endpoints, like every engine opt-out.
    const { rows } = await database.db.query(`SELECT payload FROM outbound_events WHERE type = 'subscription.unsubscribed' AND payload->>'subscriber_id' = $1`, [c.json.id]);
    expect(rows[0].payload.source).toBe('api');

    expect((await api('PUT', `/v1/lists/${list}/contacts`, { email: 'out@x.test', subscribed: true })).json.status).toBe('unsubscribed');
    expect((await api('PATCH', `/v1/lists/${list}/contacts/${c.json.id}`, { subscribed: true })).json.status).toBe('unsubscribed');
    const imp = await call(t.baseUrl, 'POST', `/v1/lists/${list}/contacts/import`, { token, rawBody: 'email,subscribed\nout@x.test,true\n', headers: { 'content-type': 'text/csv' } });
    expect(imp.json).toMatchObject({ status: 'completed', updated: 1, kept_unsubscribed: 1 });
    expect((await api('GET', `/v1/lists/${list}/contacts/${c.json.id}`)).json.status).toBe('unsubscribed');
    // Deleting it keeps the opt-out (data erased): adding the address again cannot re-subscribe it.
    await api('DELETE', `/v1/lists/${list}/contacts/${c.json.id}`);
    const again = await api('PUT', `/v1/lists/${list}/contacts`, { email: 'out@x.test', subscribed: true });
    expect(again.json).toMatchObject({ id: c.json.id, status: 'unsubscribed' });

    // Created unsubscribed (not an opt-out): subscribing later is allowed.
    const later = await api('PUT', `/v1/lists/${list}/contacts`, { email: 'later@x.test', subscribed: false });
    expect(later.json).toMatchObject({ status: 'unsubscribed', opted_out_at: null });
    expect((await api('PUT', `/v1/lists/${list}/contacts`, { email: 'later@x.test', subscribed: true })).json.status).toBe('active');
  });
});

describe('imports', () => {
  it('streams CSV and JSON lines, counts invalid rows, shows progress by id', async () => {
    const list = await newList();
    const csv = ['email,first_name,subscribed,plan', 'a@x.test,Ann,true,pro', 'not-an-email,Bad,,', 'b@x.test,Bob,maybe,', 'c@x.test,,,free', 'A@x.test,Ann2,,'].join('\n');
    const r = await call(t.baseUrl, 'POST', `/v1/lists/${list}/contacts/import`, { token, rawBody: csv, headers: { 'content-type': 'text/csv; charset=utf-8' } });
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ format: 'csv', status: 'completed', rows_received: 5, rows_invalid: 2, created: 2 });
    // Invalid rows by line of the file (the header is line 1) and why.
    expect(r.json.invalid_rows).toEqual([
      { line: 3, reason: 'email is missing or not a valid address' },
      { line: 4, reason: 'subscribed must be true, false, 1, 0, yes or no' },
    ]);
    const got = await api('GET', `/v1/imports/${r.json.id}`);
    expect(got.json).toMatchObject({ id: r.json.id, status: 'completed', created: 2 });
    expect((await api('GET', `/v1/imports/${r.json.id}`, undefined, other)).status).toBe(404);
    const ann = await api('GET', `/v1/lists/${list}/contacts?email=a@x.test`);
    // An address repeated within a file: its last row wins.
    expect(ann.json.data[0]).toMatchObject({ first_name: 'Ann2', properties: {} });
    expect((await api('GET', `/v1/lists/${list}/contacts?email=c@x.test`)).json.data[0].properties).toEqual({ plan: 'free' });

    const jsonl = [JSON.stringify({ email: 'd@x.test', first_name: 'Dee', properties: { n: 1 } }), '{oops', JSON.stringify({ email: 'e@x.test', subscribed: false }), ''].join('\n');
    const j = await call(t.baseUrl, 'POST', `/v1/lists/${list}/contacts/import`, { token, rawBody: jsonl, headers: { 'content-type': 'application/x-ndjson' } });
    expect(j.json).toMatchObject({ format: 'jsonl', status: 'completed', rows_received: 3, rows_invalid: 1, created: 2, invalid_rows: [{ line: 2, reason: 'not a JSON object' }] });
    expect((await api('GET', `/v1/imports/${j.json.id}`)).json.invalid_rows).toEqual([{ line: 2, reason: 'not a JSON object' }]);
    // Only the first 100 are listed; all are counted.
    const many = ['email', ...Array.from({ length: 150 }, (_, i) => `bad${i}`), 'ok@x.test'].join('\n');
    const m = await call(t.baseUrl, 'POST', `/v1/lists/${list}/contacts/import`, { token, rawBody: many, headers: { 'content-type': 'text/csv' } });
    expect(m.json).toMatchObject({ rows_received: 151, rows_invalid: 150, created: 1 });
    expect(m.json.invalid_rows).toHaveLength(100);
    expect(m.json.invalid_rows[99]).toEqual({ line: 101, reason: 'email is missing or not a valid address' });
    expect((await api('GET', `/v1/lists/${list}/contacts?email=e@x.test`)).json.data[0].status).toBe('unsubscribed');
  });

  it('over several chunks: updates merge, a non-opt-out unsubscribe re-subscribes, subscribed=false opts out, other tenants untouched', async () => {
    const list = await newList();
    const otherList = (await api('POST', '/v1/lists', { name: 'Theirs' }, other)).json.id;
    await api('PUT', `/v1/lists/${otherList}/contacts`, { email: 'kept@x.test', first_name: 'Theirs' }, other);
    const kept = await api('PUT', `/v1/lists/${list}/contacts`, { email: 'Kept@X.test', first_name: 'Kim', last_name: 'Old', properties: { a: 1, b: 1 } });
    const later = await api('PUT', `/v1/lists/${list}/contacts`, { email: 'later@x.test', subscribed: false });
    const leaving = await api('PUT', `/v1/lists/${list}/contacts`, { email: 'leaving@x.test' });
    // 12,001 rows: three chunks of the import; the known addresses come last, in another case.
    const rows = ['email,last_name,b,subscribed'];
    for (let i = 0; i < 12_000; i++) rows.push(`bulk${i}@x.test,,,`);
    rows.push('KEPT@x.test,New,2,', 'LATER@x.test,,,true', 'leaving@X.TEST,,,false');
    const r = await call(t.baseUrl, 'POST', `/v1/lists/${list}/contacts/import`, { token, rawBody: rows.join('\n'), headers: { 'content-type': 'text/csv' } });
    expect(r.json).toMatchObject({ status: 'completed', rows_received: 12_003, rows_invalid: 0, created: 12_000, updated: 3, kept_unsubscribed: 0 });
    // Names kept unless given, properties merged, the stored address's case kept.
    expect((await api('GET', `/v1/lists/${list}/contacts/${kept.json.id}`)).json).toMatchObject({ email: 'Kept@X.test', first_name: 'Kim', last_name: 'New', properties: { a: 1, b: '2' }, status: 'active' });
    // Created unsubscribed (no opt-out): an import asking subscribed=true subscribes it.
    expect((await api('GET', `/v1/lists/${list}/contacts/${later.json.id}`)).json).toMatchObject({ status: 'active', opted_out_at: null });
    // Active and asked subscribed=false: an engine opt-out, queued for webhook endpoints.
    const left = (await api('GET', `/v1/lists/${list}/contacts/${leaving.json.id}`)).json;
    expect(left.status).toBe('unsubscribed');
    expect(left.opted_out_at).not.toBeNull();
    const { rows: events } = await database.db.query(`SELECT payload FROM outbound_events WHERE type = 'subscription.unsubscribed' AND payload->>'subscriber_id' = $1`, [leaving.json.id]);
    expect(events[0].payload).toMatchObject({ source: 'api', list_id: list });
    expect((await api('GET', `/v1/lists/${list}`)).json.members).toMatchObject({ total: 12_003, active: 12_002, unsubscribed: 1 });
    // The other tenant's contact with the same address is untouched.
    expect((await api('GET', `/v1/lists/${otherList}/contacts?email=kept@x.test`, undefined, other)).json.data[0]).toMatchObject({ first_name: 'Theirs', last_name: null, properties: {} });
    // The same file again rewrites nothing: contacts keep their updated_at.
    const before = (await api('GET', `/v1/lists/${list}/contacts/${kept.json.id}`)).json.updated_at;
    const again = await call(t.baseUrl, 'POST', `/v1/lists/${list}/contacts/import`, { token, rawBody: rows.join('\n'), headers: { 'content-type': 'text/csv' } });
    expect(again.json).toMatchObject({ status: 'completed', created: 0, updated: 12_003 });
    expect((await api('GET', `/v1/lists/${list}/contacts/${kept.json.id}`)).json.updated_at).toBe(before);
  });

  it('progress is readable while the body streams; a write to the list waits for the import, then sees its contacts', async () => {
    const list = await newList();
    let push!: (text: string | null) => void;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        push = (text) => (text === null ? controller.close() : controller.enqueue(new TextEncoder().encode(text)));
      },
    });
    const rows = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `s${from + i}@x.test,\n`).join('');
    const done = fetch(`${t.baseUrl}/v1/lists/${list}/contacts/import`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' }, body, duplex: 'half',
    } as RequestInit).then((r) => r.json());
    push(`email,plan\n${rows(0, 6_000)}`);
    // The first chunk is written and its progress committed while the rest has not been sent.
    const { until } = await import('../helpers/wait.ts');
    const running = await until(async () => {
      const { rows: [i] } = await database.db.query('SELECT id FROM contact_imports WHERE list_id = $1', [list]);
      const got = i && (await api('GET', `/v1/imports/${i.id}`)).json;
      return got?.created >= 5_000 && got;
    }, 20_000, 'the first chunk written');
    expect(running).toMatchObject({ status: 'running', finished_at: null });
    // A contact write to the list waits for the import (it holds the list's lock exclusively).
    let answered = false;
    const put = api('PUT', `/v1/lists/${list}/contacts`, { email: 'S7000@x.test', first_name: 'Late' }).then((r) => ((answered = true), r));
    await new Promise((r) => setTimeout(r, 300));
    expect(answered).toBe(false);
    push(rows(6_000, 8_000));
    push(null);
    expect(await done).toMatchObject({ status: 'completed', rows_received: 8_000, created: 8_000 });
    // The write went after the import: the address was there, so it updated that contact.
    const r = await put;
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ email: 's7000@x.test', first_name: 'Late', status: 'active' });
    expect((await api('GET', `/v1/lists/${list}`)).json.members.total).toBe(8_000);
  });

  it('malformed CSV fails the import and writes no contact; an unknown type is 415', async () => {
    const list = await newList();
    const bad = 'email,first_name\n"a@x.test,unterminated\n';
    const r = await call(t.baseUrl, 'POST', `/v1/lists/${list}/contacts/import`, { token, rawBody: bad, headers: { 'content-type': 'text/csv' } });
    expect(r.json.status).toBe('failed');
    expect(r.json.error).toMatch(/not valid CSV/);
    expect((await api('GET', `/v1/lists/${list}`)).json.members.total).toBe(0);
    const xml = await call(t.baseUrl, 'POST', `/v1/lists/${list}/contacts/import`, { token, rawBody: '<a/>', headers: { 'content-type': 'application/xml' } });
    expect(xml.status).toBe(415);
  });
});

describe('double opt-in', () => {
  it('a new contact is pending, gets a signed link through the outbox; GET shows a button, POST confirms; expired and forged links do not', async () => {
    const list = (await api('POST', '/v1/lists', { name: 'DOI', double_opt_in: { enabled: true, from: 'news@acme.test', subject: 'Confirm', html: '<a href="{{ confirm_url }}">Confirm</a>' } })).json.id;
    const c = await api('POST', `/v1/lists/${list}/contacts`, { email: 'doi@x.test', first_name: 'Dee' });
    expect(c.json.status).toBe('pending');
    const { rows } = await database.db.query(`SELECT m.status, j.html, j.subject FROM messages m JOIN proxy_jobs j ON j.id = m.proxy_job_id WHERE m.recipient = 'doi@x.test'`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'queued', subject: 'Confirm' });
    const link = /href="([^"]+)"/.exec(rows[0].html)![1];
    const path = new URL(link).pathname;
    const page = await call(t.baseUrl, 'GET', path);
    expect(page.status).toBe(200);
    expect(page.text).toContain('<form method="post">');
    expect((await api('GET', `/v1/lists/${list}/contacts/${c.json.id}`)).json.status).toBe('pending');

    const forged = await call(t.baseUrl, 'POST', path.slice(0, -2) + (path.endsWith('AA') ? 'AB' : 'AA'));
    expect(forged.status).toBe(400);
    const { confirmUrl } = await import('../../src/lists/double-opt-in.ts');
    const { tenant_id: tenantId } = (await database.db.query('SELECT tenant_id FROM lists WHERE id = $1', [list])).rows[0];
    const stale = confirmUrl(t.config.tracking, { tenantId, listId: list, contactId: c.json.id }, Date.now() - 8 * 86_400_000);
    expect((await call(t.baseUrl, 'POST', new URL(stale).pathname)).status).toBe(410);
    expect((await api('GET', `/v1/lists/${list}/contacts/${c.json.id}`)).json.status).toBe('pending');

    const ok = await call(t.baseUrl, 'POST', path, { rawBody: '', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(ok.text).toContain('confirmed');
    expect((await api('GET', `/v1/lists/${list}/contacts/${c.json.id}`)).json.status).toBe('active');
  });

  it('a confirmation never re-subscribes someone who unsubscribed or opted out since', async () => {
    const list = (await api('POST', '/v1/lists', { name: 'DOI 2', double_opt_in: { enabled: true, from: 'news@acme.test', subject: 'Confirm', html: '{{ confirm_url }}' } })).json.id;
    const imp = await call(t.baseUrl, 'POST', `/v1/lists/${list}/contacts/import`, { token, rawBody: 'email\na@doi.test\nb@doi.test\n', headers: { 'content-type': 'text/csv' } });
    expect(imp.json.created).toBe(2);
    const { rows } = await database.db.query(`SELECT m.recipient, j.html FROM messages m JOIN proxy_jobs j ON j.id = m.proxy_job_id WHERE m.recipient LIKE '%@doi.test' ORDER BY 1`);
    expect(rows.map((r) => r.recipient)).toEqual(['a@doi.test', 'b@doi.test']);
    const a = (await api('GET', `/v1/lists/${list}/contacts?email=a@doi.test`)).json.data[0];
    expect(a.status).toBe('pending');
    expect((await api('PATCH', `/v1/lists/${list}/contacts/${a.id}`, { subscribed: false })).json.status).toBe('unsubscribed');
    const r = await call(t.baseUrl, 'POST', new URL(rows[0].html).pathname);
    expect(r.text).toContain('Nothing to confirm');
    expect((await api('GET', `/v1/lists/${list}/contacts/${a.id}`)).json.status).toBe('unsubscribed');
  });
});
