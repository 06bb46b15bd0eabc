import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../src/auth/jwt.ts';
import { SCOPES, type Scope } from '../../src/auth/scopes.ts';
import { startOrchestration, type Orchestration } from '../../src/orchestration/boss.ts';
import { buildApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/log.ts';
import { call, TEST_JWT_SECRET, tenantWithToken, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { seedList } from '../jobs/helpers.ts';

/**
 * Issue 9, item 7: text PostgreSQL cannot store, impossible cursor times, undecodable URLs,
 * over-long ids and an empty JSON body each answered 500 or Fastify's own body. Each must be a
 * 4xx with {error, message, request_id} and write nothing.
 */
let database: TestDatabase;
let orchestration: Orchestration;
let baseUrl: string;
let close: () => Promise<void>;
let token: string;
let listId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  const config = testConfig(database.url, { DEFAULT_FROM_ADDRESS: 'news@acme.test' });
  const logger = createLogger(process.env.TEST_LOG ?? 'silent');
  orchestration = await startOrchestration(database.url, database.db, logger, { worker: false, sendJobs: { chunkSize: 100, defaultRatePerSecond: null, checkEverySeconds: 1 } });
  const app = await buildApp({ config, db: database.db, logger, scheduler: orchestration.scheduler });
  baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  close = () => app.close();
  const { tenantId } = await tenantWithToken(database.db);
  token = await issueToken(TEST_JWT_SECRET, { tenantId, scopes: Object.keys(SCOPES) as Scope[], ttl: '1h' });
  ({ listId } = await seedList(database.db, tenantId, { count: 1 }));
});
afterAll(async () => {
  await close?.();
  await orchestration?.stop();
  await database?.drop();
});

/** Row counts of every table of ours: a refused request must leave them all as they were. */
async function rowCounts() {
  const { rows } = await database.db.query<{ t: string }>(`SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'api_rate_counters' ORDER BY 1`);
  const { rows: counts } = await database.db.query(rows.map((r) => `SELECT '${r.t}' AS t, count(*)::int AS n FROM "${r.t}"`).join(' UNION ALL '));
  return Object.fromEntries(counts.map((c) => [c.t, c.n]));
}

async function expectRefused(res: Awaited<ReturnType<typeof call>>, status: number, error: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.json).toMatchObject({ error, message: expect.any(String), request_id: res.headers.get('x-request-id') });
}

const proxySend = (overrides: Record<string, unknown>) => ({
  message_type: 'transactional', from: 'sender@acme.test', to: ['alice@example.com'], subject: 'Hi', html: '<p>x</p>', text: 'x',
  tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' }, idempotency_key: `k-${Math.random()}`, ...overrides,
});
const jobBody = (overrides: Record<string, unknown>) => ({ list_id: listId, subject: 'Hi', body_text: 'x', ...overrides });
const cursor = (position: Record<string, string>) => Buffer.from(JSON.stringify({ v: 1, ...position })).toString('base64url');

describe('text PostgreSQL cannot store: 422 invalid_text, nothing written', () => {
  const bad = ['a\u0000b', 'a\ud800b', '\udc00'];
  const cases: Array<[string, string, string, (v: string) => unknown]> = [];
  for (const [i, v] of bad.entries()) {
    cases.push(
      [`subject #${i}`, 'POST', '/v1/send-jobs', (s) => proxySend({ subject: s })],
      [`html #${i}`, 'POST', '/v1/send-jobs', (s) => proxySend({ html: s })],
      [`text #${i}`, 'POST', '/v1/send-jobs', (s) => proxySend({ text: s })],
      [`a tag #${i}`, 'POST', '/v1/send-jobs', (s) => proxySend({ tags: { campaign_id: s, site_id: 's', list_id: 'l', segment: 'all' } })],
      [`an extra tag key #${i}`, 'POST', '/v1/send-jobs', (s) => proxySend({ tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all', [s]: 'x' } })],
      [`idempotency_key #${i}`, 'POST', '/v1/send-jobs', (s) => proxySend({ idempotency_key: s })],
      [`a header value #${i}`, 'POST', '/v1/send-jobs', (s) => proxySend({ headers: { 'X-Note': s } })],
      [`job name #${i}`, 'POST', '/api/send-jobs', (s) => jobBody({ name: s })],
      [`job subject #${i}`, 'POST', '/api/send-jobs', (s) => jobBody({ subject: s })],
      [`job template #${i}`, 'POST', '/api/send-jobs', (s) => jobBody({ body_text: undefined, template: { text: s } })],
      [`suppression comment #${i}`, 'POST', '/v1/suppressions', (s) => ({ email: 'x@example.com', comment: s })],
    );
  }
  it.each(cases)('%s', async (_name, method, path, body) => {
    for (const v of bad) {
      const before = await rowCounts();
      const res = await call(baseUrl, method, path, { token, body: body(v) });
      await expectRefused(res, 422, 'invalid_text');
      expect(res.json.message).toMatch(/^body\./);
      expect(await rowCounts()).toEqual(before);
    }
  });

  it.each([
    '/v1/messages?recipient=%00', '/v1/messages?template=a%00', '/v1/messages?identity=%00acme.test', '/v1/suppressions?email=%00',
    '/v1/suppressions?reason=%00', '/v1/undeliverable?email=%00', '/v1/messages/%00', '/v1/messages/a%00b/events',
    '/v1/suppressions/%00', '/v1/suppressions/%00/audit', '/v1/recipients/%00/messages',
  ])('GET %s', async (path) => {
    const res = await call(baseUrl, 'GET', path, { token });
    await expectRefused(res, 422, 'invalid_text');
  });

  it('DELETE /v1/suppressions/x?comment=%00', async () => {
    await expectRefused(await call(baseUrl, 'DELETE', '/v1/suppressions/x%40example.com?comment=a%00', { token }), 422, 'invalid_text');
  });
});

describe('cursors and URLs', () => {
  it.each([
    ['/v1/messages', { t: '2020-99-99 99:99:99Z', i: '0190b3d2-0000-7000-8000-000000000000' }],
    ['/v1/messages', { t: '2021-02-29 10:00:00+00', i: '0190b3d2-0000-7000-8000-000000000000' }],
    ['/v1/messages', { t: '2021-01-01 10:00:00+99', i: '0190b3d2-0000-7000-8000-000000000000' }],
    ['/v1/messages', { t: '2021-01-01 10:00:00\u0000', i: '0190b3d2-0000-7000-8000-000000000000' }],
  ])('%s with an impossible cursor time %j -> 422', async (path, position) => {
    await expectRefused(await call(baseUrl, 'GET', `${path}?cursor=${cursor(position)}`, { token }), 422, 'validation_failed');
  });

  it.each(['/v1/suppressions', '/v1/undeliverable'])('%s starts over at page 1 on an impossible cursor time (its reference says so)', async (path) => {
    const res = await call(baseUrl, 'GET', `${path}?cursor=${cursor({ t: '2020-99-99 99:99:99Z', e: 'a@b.c' })}`, { token });
    expect(res.status, res.text).toBe(200);
  });

  it('an undecodable path (%ff) -> 400 invalid_url with our body', async () => {
    const res = await call(baseUrl, 'GET', '/v1/messages/%ff', { token });
    await expectRefused(res, 400, 'invalid_url');
  });

  it('a path parameter over the router limit -> 414 uri_too_long with our body', async () => {
    const res = await call(baseUrl, 'GET', `/v1/messages/${'a'.repeat(256)}`, { token });
    await expectRefused(res, 414, 'uri_too_long');
  });

  it('a request line over 16 KB -> 431 headers_too_large with our body (Node refuses it before Fastify sees a request)', async () => {
    const res = await call(baseUrl, 'GET', `/v1/messages?recipient=${'a'.repeat(20_000)}`, { token });
    await expectRefused(res, 431, 'headers_too_large');
  });

  it('a date-time that is a leap second (valid RFC 3339, not a JavaScript date) -> 422, not 500', async () => {
    const res = await call(baseUrl, 'POST', '/api/send-jobs', { token, body: jobBody({ scheduled_at: '2030-06-30T23:59:60Z' }) });
    await expectRefused(res, 422, 'validation_error');
  });
});

describe('bodiless POST with Content-Type: application/json', () => {
  it('is taken as no body: cancel answers 200', async () => {
    const created = await call(baseUrl, 'POST', '/api/send-jobs', { token, body: jobBody({ scheduled_at: new Date(Date.now() + 3_600_000).toISOString() }) });
    expect(created.status, created.text).toBe(200);
    const res = await call(baseUrl, 'POST', `/api/send-jobs/${created.json.send_job_id}/cancel`, { token, rawBody: '' });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toEqual({ id: created.json.send_job_id, status: 'cancelled' });
  });

  it('a body of only spaces is still malformed JSON (400 bad_request)', async () => {
    await expectRefused(await call(baseUrl, 'POST', '/v1/send-jobs', { token, rawBody: '  ' }), 400, 'bad_request');
  });
});
