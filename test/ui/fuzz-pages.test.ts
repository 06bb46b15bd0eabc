import fc from 'fast-check';
import type { RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/log.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { seedList } from '../jobs/helpers.ts';

/**
 * The dashboard's routes with a signed-in operator (test/http/fuzz-routes.test.ts reaches them
 * without a session only): hostile path parameters, query values and form fields, with a valid
 * CSRF token. Never a 5xx; every error page names the request; a 4xx writes nothing.
 */
const ADMIN_TOKEN = 'operator-token-for-the-page-fuzz-0123456789ab';
let database: TestDatabase;
let base: string;
let close: () => Promise<void>;
const routes: Array<{ method: string; url: string; schema: any }> = [];
let cookie = '';
let csrf = '';

beforeAll(async () => {
  database = await createTestDatabase();
  const config = testConfig(database.url, { ADMIN_TOKEN, RATE_LIMIT_LIVE_PER_MINUTE: '1000000' });
  const app = await buildApp({
    config, db: database.db, logger: createLogger('silent'),
    onRoute: (r: RouteOptions) => {
      if (String(r.url).startsWith('/ui/') || r.url === '/') for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url, schema: r.schema ?? {} });
    },
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  close = () => app.close();
  const tenant = await createTenant(database.db, 'Fuzz');
  await seedList(database.db, tenant.id, { count: 2 });
  const login = await fetch(`${base}/ui/login`);
  const jar = login.headers.getSetCookie().map((c) => c.split(';')[0]);
  const token = /name="_csrf" value="([^"]+)"/.exec(await login.text())![1];
  const signed = await fetch(`${base}/ui/login`, {
    method: 'POST', redirect: 'manual', headers: { cookie: jar.join('; '), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: token, api_key: ADMIN_TOKEN }),
  });
  cookie = [...jar, ...signed.headers.getSetCookie().map((c) => c.split(';')[0])].join('; ');
  csrf = /name="_csrf" value="([^"]+)"/.exec(await (await fetch(`${base}/ui/keys`, { headers: { cookie } })).text())![1];
}, 60_000);
afterAll(async () => {
  await close?.();
  await database?.drop();
});

const hostile = fc.oneof(
  fc.constantFrom('\u0000', '\ud800', '%ff', '%00', '', ' ', 'a'.repeat(5000), '<script>alert(1)</script>', '"><img src=x>', '../../etc', '2020-99-99T99:99', '9999-12-31T23:59', 'not-a-uuid', '00000000-0000-0000-0000-000000000000', '日本', '{{x}}', 'se_live_x', 'manual', 'running'),
  fc.string({ maxLength: 40 }),
);
const enc = (s: string) => {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%ED%A0%80';
  }
};

async function rowCount(): Promise<number> {
  const { rows } = await database.db.query<{ n: number }>(
    `SELECT (SELECT count(*) FROM suppressions) + (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM sending_domains) + (SELECT count(*) FROM webhook_endpoints) + (SELECT count(*) FROM suppression_audit)
            + (SELECT count(*) FROM template_versions) + (SELECT count(*) FROM send_jobs) + (SELECT count(*) FROM subscribers) + (SELECT count(*) FROM contact_imports) AS n`,
  );
  return Number(rows[0].n);
}

describe('dashboard pages, signed in, hostile input', () => {
  it('never answers 5xx, names the request in every error page, and writes nothing on a 4xx', async () => {
    expect(routes.length).toBeGreaterThan(15);
    const seen = new Set<string>();
    for (const route of routes) {
      const fields = Object.keys(route.schema.body?.properties ?? {}).filter((k) => k !== '_csrf');
      const queries = Object.keys(route.schema.querystring?.properties ?? {});
      await fc.assert(
        fc.asyncProperty(fc.array(hostile, { minLength: 3, maxLength: 3 }), fc.dictionary(fc.constantFrom(...(queries.length ? queries : ['x'])), hostile), fc.dictionary(fc.constantFrom(...(fields.length ? fields : ['x'])), hostile), async (params, query, form) => {
          let i = 0;
          const path = route.url.replace(/:[A-Za-z_]+/g, () => enc(params[i++]));
          const qs = Object.entries(query).map(([k, v]) => `${k}=${enc(v)}`).join('&');
          const before = await rowCount();
          const body = route.method === 'POST' ? Object.entries({ ...form, _csrf: csrf }).map(([k, v]) => `${k}=${enc(v)}`).join('&') : undefined;
          const res = await fetch(`${base}${path}${qs ? `?${qs}` : ''}`, {
            method: route.method, redirect: 'manual', body,
            headers: { cookie, ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
          });
          const text = await res.text();
          seen.add(`${route.method} ${res.status}`);
          if (res.status === 303 && route.url !== '/ui/logout') expect(res.headers.get('location'), 'signed in: never sent back to the sign-in page').not.toMatch(/^\/ui\/login/);
          const shown = `${route.method} ${path}?${qs} ${body ?? ''} -> ${res.status} ${text.slice(0, 300)}`;
          expect(res.status < 500, shown).toBe(true);
          // Escaped everywhere: a hostile value never becomes markup.
          expect(text, shown).not.toContain('<script>alert(1)</script>');
          expect(text, shown).not.toContain('"><img src=x>');
          if (res.status >= 400) {
            expect(text, shown).toContain(res.headers.get('x-request-id')!);
            expect(await rowCount(), shown).toBe(before);
          }
        }),
        { numRuns: Number(process.env.FUZZ_RUNS_PER_ROUTE ?? 15) },
      );
    }
    // The session held: pages rendered, forms reached their handlers (redirects, refusals by the domain).
    expect([...seen]).toEqual(expect.arrayContaining(['GET 200', 'GET 422', 'GET 404', 'POST 303', 'POST 422']));
  }, 180_000);
});
