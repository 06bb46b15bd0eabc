import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, type IssuedKey } from '../../src/auth/api-keys.ts';
import { createList } from '../../src/lists/contacts.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { readSession, signSession } from '../../src/ui/session.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

/** Sessions, CSRF and isolation at the HTTP level (the browser flow is dashboard.test.ts). */
const ADMIN_TOKEN = 'operator-token-for-the-session-test-0123456789';
let database: TestDatabase;
let app: TestApp;
let noAdmin: TestApp;
let keyA: IssuedKey;
let keyB: IssuedKey;
let narrow: IssuedKey;

/** A browser in miniature: cookies kept per origin, redirects not followed. */
function browser(base: string, headers: Record<string, string> = {}) {
  const jar = new Map<string, string>();
  const request = async (method: string, path: string, form?: Record<string, string>) => {
    const res = await fetch(`${base}${path}`, {
      method,
      redirect: 'manual',
      headers: { ...headers, cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: form ? new URLSearchParams(form) : undefined,
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const at = pair.indexOf('=');
      const value = pair.slice(at + 1);
      if (value) jar.set(pair.slice(0, at), value);
      else jar.delete(pair.slice(0, at));
    }
    return { status: res.status, location: res.headers.get('location'), cookies: res.headers.getSetCookie(), text: await res.text(), requestId: res.headers.get('x-request-id') };
  };
  const csrfOf = (text: string) => /name="_csrf" value="([^"]+)"/.exec(text)?.[1] ?? '';
  return {
    jar,
    get: (path: string) => request('GET', path),
    post: (path: string, form: Record<string, string>) => request('POST', path, form),
    async signIn(secret: string, next = '/') {
      const page = await request('GET', '/ui/login');
      return request('POST', '/ui/login', { _csrf: csrfOf(page.text), api_key: secret, next });
    },
    /** The CSRF token of a page this session can open. */
    async csrf(path = '/ui/keys') {
      return csrfOf((await request('GET', path)).text);
    },
  };
}

beforeAll(async () => {
  database = await createTestDatabase();
  app = await startTestApp(database.db, database.url, { ADMIN_TOKEN, TRUST_PROXY: 'loopback', RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '4' });
  noAdmin = await startTestApp(database.db, database.url);
  const a = await createTenant(database.db, 'A');
  const b = await createTenant(database.db, 'B');
  keyA = await createApiKey(database.db, a.id, ['keys.manage', 'suppressions.view', 'suppressions.manage', 'reports.view'], { environment: 'live', name: 'a' });
  keyB = await createApiKey(database.db, b.id, ['keys.manage', 'messages.view'], { environment: 'live', name: 'b' });
  narrow = await createApiKey(database.db, a.id, ['keys.manage'], { environment: 'live', name: 'narrow' });
});
afterAll(async () => {
  await app?.close();
  await noAdmin?.close();
  await database?.drop();
});

describe('dashboard sessions', () => {
  it('sets an HttpOnly, SameSite=Lax session cookie; Secure when the request came over https through a trusted proxy', async () => {
    const plain = await browser(app.baseUrl).signIn(keyA.secret);
    expect(plain.status).toBe(303);
    const session = plain.cookies.find((c) => c.startsWith('se_session='))!;
    expect(session).toMatch(/HttpOnly/);
    expect(session).toMatch(/SameSite=Lax/);
    expect(session).not.toMatch(/Secure/);
    const proxied = await browser(app.baseUrl, { 'x-forwarded-proto': 'https' }).signIn(keyA.secret);
    expect(proxied.cookies.find((c) => c.startsWith('se_session='))).toMatch(/Secure/);
    // The cookie names the key by id, never its secret.
    expect(Buffer.from(session.split('=')[1].split('.')[0], 'base64url').toString()).not.toContain(keyA.secret);
  });

  it('refuses a form without its CSRF token, with a page naming the request, and writes nothing', async () => {
    const b = browser(app.baseUrl);
    await b.signIn(keyA.secret);
    for (const token of [undefined, 'forged-token']) {
      const res = await b.post('/ui/suppressions', { email: 'x@csrf.test', reason: 'manual', ...(token ? { _csrf: token } : {}) });
      expect(res.status).toBe(403);
      expect(res.text).toContain(res.requestId);
    }
    expect((await database.db.query(`SELECT 1 FROM suppressions WHERE email = 'x@csrf.test'`)).rowCount).toBe(0);
    const ok = await b.post('/ui/suppressions', { email: 'x@csrf.test', reason: 'manual', _csrf: await b.csrf('/ui/suppressions') });
    expect(ok.status).toBe(303);
    expect((await database.db.query(`SELECT 1 FROM suppressions WHERE email = 'x@csrf.test'`)).rowCount).toBe(1);
  });

  it('a tampered or expired session is no session; a revoked key ends its sessions at once', async () => {
    const b = browser(app.baseUrl);
    await b.signIn(narrow.secret);
    expect((await b.get('/ui/keys')).status).toBe(200);
    const cookie = b.jar.get('se_session')!;
    const [payload, mac] = cookie.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), kind: 'operator' })).toString('base64url');
    b.jar.set('se_session', `${forged}.${mac}`);
    expect((await b.get('/ui/keys')).location).toBe('/ui/login?next=%2Fui%2Fkeys');
    b.jar.set('se_session', cookie);
    const key = Buffer.alloc(32, 7);
    expect(readSession(key, signSession(key, { kind: 'key', keyId: 'k', tenantId: null, exp: 1000 }), 1_000_001)).toBeNull();
    await database.db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [narrow.key_id]);
    expect((await b.get('/ui/keys')).location).toBe('/ui/login?next=%2Fui%2Fkeys');
  });

  it('sign-in never redirects off the site, refuses unknown keys and counts failures per address', async () => {
    const b = browser(app.baseUrl);
    expect((await b.signIn(keyA.secret, '//evil.example/x')).location).toBe('/');
    expect((await b.signIn(keyA.secret, '/ui/suppressions?email=a')).location).toBe('/ui/suppressions?email=a');
    const c = browser(app.baseUrl);
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await c.signIn(`se_live_${'x'.repeat(43)}`)).status);
    expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401]);
    expect(statuses[4]).toBe(429);
  });

  it('the operator token signs in only when ADMIN_TOKEN is configured', async () => {
    const withAdmin = browser(app.baseUrl);
    expect((await withAdmin.signIn(ADMIN_TOKEN)).status).toBe(303);
    expect((await withAdmin.get('/ui/keys')).text).toContain('Signed in as <strong>operator</strong>');
    const without = await browser(noAdmin.baseUrl).signIn(ADMIN_TOKEN);
    expect(without.status).toBe(401);
    expect(without.cookies.some((c) => c.startsWith('se_session='))).toBe(false);
  });
});

describe('tenant isolation and scopes on forms', () => {
  it("another tenant's key id is not found, and that key keeps working", async () => {
    const b = browser(app.baseUrl);
    await b.signIn(keyA.secret);
    const res = await b.post(`/ui/keys/${keyB.key_id}/revoke`, { _csrf: await b.csrf() });
    expect(res.status).toBe(404);
    expect((await database.db.query('SELECT revoked_at FROM api_keys WHERE id = $1', [keyB.key_id])).rows[0].revoked_at).toBeNull();
    const rotate = await b.post(`/ui/keys/${keyB.key_id}/rotate`, { _csrf: await b.csrf() });
    expect(rotate.status).toBe(404);
  });

  it('a key grants at most its own scopes', async () => {
    const b = browser(app.baseUrl);
    await b.signIn(keyB.secret);
    const res = await b.post('/ui/keys', { _csrf: await b.csrf(), name: 'escalate', scopes: 'suppressions.manage' });
    expect(res.status).toBe(403);
    expect(res.text).toContain('a key cannot grant scopes it does not hold: suppressions.manage');
    expect((await database.db.query(`SELECT 1 FROM api_keys WHERE name = 'escalate'`)).rowCount).toBe(0);
  });

  it('view scopes do not write: templates.manage and lists.manage are needed, named in the 403 page', async () => {
    const a = (await database.db.query<{ tenant_id: string }>('SELECT tenant_id FROM api_keys WHERE id = $1', [keyA.key_id])).rows[0].tenant_id;
    const list = await createList(database.db, a, { name: 'views only' });
    const viewer = await createApiKey(database.db, a, ['templates.view', 'lists.view'], { environment: 'live', name: 'viewer' });
    const b = browser(app.baseUrl);
    await b.signIn(viewer.secret);
    const page = await b.get('/ui/templates');
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('Create template');
    const token = await b.csrf('/ui/templates');
    const create = await b.post('/ui/templates', { _csrf: token, name: 'Nope', subject: 'Nope' });
    expect(create.status).toBe(403);
    expect(create.text).toContain('creating a template needs the scope templates.manage');
    const add = await b.post(`/ui/lists/${list.id}/contacts`, { _csrf: token, email: 'x@views.test' });
    expect(add.status).toBe(403);
    expect(add.text).toContain('adding a contact needs the scope lists.manage');
    expect((await database.db.query(`SELECT 1 FROM templates WHERE tenant_id = $1`, [a])).rowCount).toBe(0);
    expect((await database.db.query(`SELECT 1 FROM subscribers WHERE list_id = $1`, [list.id])).rowCount).toBe(0);
  });

  it('the CSV upload needs the CSRF token (x-csrf-token) like every form, and imports nothing without it', async () => {
    const a = (await database.db.query<{ tenant_id: string }>('SELECT tenant_id FROM api_keys WHERE id = $1', [keyA.key_id])).rows[0].tenant_id;
    const list = await createList(database.db, a, { name: 'upload' });
    const manager = await createApiKey(database.db, a, ['lists.view', 'lists.manage'], { environment: 'live', name: 'lists' });
    const b = browser(app.baseUrl);
    await b.signIn(manager.secret);
    const token = await b.csrf(`/ui/lists/${list.id}/contacts`);
    const upload = (headers: Record<string, string>) =>
      fetch(`${app.baseUrl}/ui/lists/${list.id}/import`, {
        method: 'POST', body: 'email\nup@load.test\n',
        headers: { cookie: [...b.jar].map(([k, v]) => `${k}=${v}`).join('; '), 'content-type': 'text/csv', ...headers },
      });
    const refused = await upload({});
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain(refused.headers.get('x-request-id')!);
    expect((await database.db.query('SELECT 1 FROM contact_imports WHERE list_id = $1', [list.id])).rowCount).toBe(0);
    const ok = await upload({ 'x-csrf-token': token });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('1 rows read: 1 created, 0 updated, 0 invalid');
    expect((await database.db.query(`SELECT email FROM subscribers WHERE list_id = $1`, [list.id])).rows).toEqual([{ email: 'up@load.test' }]);
  });
});
