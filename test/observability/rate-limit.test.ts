import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { until } from '../helpers/wait.ts';

let database: TestDatabase;
let apiA: TestApp;
let apiB: TestApp;

const env = { RATE_LIMIT_LIVE_PER_MINUTE: '5', RATE_LIMIT_TEST_PER_MINUTE: '2', RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: '4', SEND_RATE_LIMIT_LIVE_PER_MINUTE: '8', REQUIRE_VERIFIED_DOMAIN: 'false' };

const send = (i: number) => ({
  message_type: 'transactional', from: 'app@budget.test', to: [`r${i}@example.com`], subject: 'Hi', html: '<p>Hi</p>', text: 'Hi',
  tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' }, idempotency_key: `budget-${i}`,
});

beforeAll(async () => {
  database = await createTestDatabase();
  // Two API processes (apps) on one database: the limit must hold across them.
  apiA = await startTestApp(database.db, database.url, env);
  apiB = await startTestApp(database.db, database.url, env);
});
afterAll(async () => {
  await apiA.close();
  await apiB.close();
  await database.drop();
});

describe('per-tenant rate limit', () => {
  it('counts across API processes, sends the headers, and answers 429 with Retry-After and the error body', async () => {
    const { token } = await tenantWithToken(database.db);
    const remaining: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await call(i % 2 ? apiB.baseUrl : apiA.baseUrl, 'GET', '/v1/_scopes', { token });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBe('5');
      expect(Number(res.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(1);
      expect(Number(res.headers.get('x-ratelimit-reset'))).toBeLessThanOrEqual(60);
      remaining.push(res.headers.get('x-ratelimit-remaining')!);
    }
    expect(remaining).toEqual(['4', '3', '2', '1', '0']);

    const refused = await call(apiB.baseUrl, 'GET', '/v1/messages', { token });
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(refused.headers.get('x-ratelimit-reset')).toBe(String(retryAfter));
    expect(refused.json).toMatchObject({ error: 'rate_limited', status: 429, retry_after: retryAfter, request_id: refused.headers.get('x-request-id') });

    // Another tenant has its own budget; public routes are never limited.
    const other = await tenantWithToken(database.db);
    expect((await call(apiA.baseUrl, 'GET', '/v1/_scopes', { token: other.token })).status).toBe(200);
    for (let i = 0; i < 8; i++) {
      const health = await call(apiA.baseUrl, 'GET', '/v1/_health');
      expect(health.status).toBe(200);
      expect(health.headers.get('x-ratelimit-limit')).toBeNull();
    }
  });

  it('sends spend their own budget: an exhausted read budget does not stop them, and they do not eat it', async () => {
    const { token } = await tenantWithToken(database.db);
    for (let i = 0; i < 5; i++) expect((await call(apiA.baseUrl, 'GET', '/v1/_scopes', { token })).status).toBe(200);
    expect((await call(apiA.baseUrl, 'GET', '/v1/_scopes', { token })).json.error).toBe('rate_limited');
    // Concurrent sends across both API processes: decided together, exactly the budget admitted.
    const sends = await Promise.all(Array.from({ length: 10 }, (_, i) => call(i % 2 ? apiB.baseUrl : apiA.baseUrl, 'POST', '/v1/send-jobs', { token, body: send(i) })));
    const accepted = sends.filter((r) => r.status === 200);
    const refused = sends.filter((r) => r.status === 429);
    expect(accepted).toHaveLength(8);
    expect(accepted.every((r) => r.headers.get('x-ratelimit-limit') === '8')).toBe(true);
    expect(refused).toHaveLength(2);
    expect(refused[0].json).toMatchObject({ error: 'rate_limited', message: 'send rate limit of 8 send requests per minute exceeded' });
    // A refused send wrote nothing: 8 jobs, 8 messages.
    const { rows } = await database.db.query(`SELECT count(*)::int AS n FROM messages m JOIN proxy_jobs j ON j.id = m.proxy_job_id WHERE j.idempotency_key LIKE 'budget-%'`);
    expect(rows[0].n).toBe(8);
    const account = await call(apiA.baseUrl, 'GET', '/v1/account', { token: (await tenantWithToken(database.db)).token });
    expect(account.json.plan).toMatchObject({ api_rate_limit_per_minute: 5, send_rate_limit_per_minute: 8 });
  });

  it('the window slides: requests older than a minute no longer count', async () => {
    const { token, tenantId } = await tenantWithToken(database.db);
    for (let i = 0; i < 5; i++) expect((await call(apiA.baseUrl, 'GET', '/v1/_scopes', { token })).status).toBe(200);
    expect((await call(apiA.baseUrl, 'GET', '/v1/_scopes', { token })).status).toBe(429);
    // Age the counters by 61 s instead of sleeping.
    await database.db.query(`UPDATE api_rate_counters SET second = second - 61 WHERE bucket = $1`, [`tenant:${tenantId}:live`]);
    const res = await call(apiA.baseUrl, 'GET', '/v1/_scopes', { token });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ratelimit-remaining')).toBe('4');
  });

  it('test keys have their own, lower limit', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const key = await createApiKey(database.db, tenantId, ['messages.view'], { environment: 'test' });
    expect((await call(apiA.baseUrl, 'GET', '/v1/_scopes', { token: key.secret })).headers.get('x-ratelimit-limit')).toBe('2');
    expect((await call(apiA.baseUrl, 'GET', '/v1/_scopes', { token: key.secret })).status).toBe(200);
    expect((await call(apiA.baseUrl, 'GET', '/v1/_scopes', { token: key.secret })).status).toBe(429);
  });

  it('behind a configured proxy (TRUST_PROXY), X-Forwarded-For is the client: its failures turn into 429s, even for valid credentials', async () => {
    const { token } = await tenantWithToken(database.db);
    const behindProxy = await startTestApp(database.db, database.url, { ...env, TRUST_PROXY: '127.0.0.1' });
    try {
      const headers = { 'x-forwarded-for': '203.0.113.77' };
      for (let i = 0; i < 4; i++) {
        expect((await call(behindProxy.baseUrl, 'GET', '/v1/_scopes', { token: 'se_live_wrong', headers })).status).toBe(401);
      }
      const refused = await call(behindProxy.baseUrl, 'GET', '/v1/_scopes', { token: 'se_live_wrong', headers });
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(refused.json.error).toBe('rate_limited');
      expect((await call(behindProxy.baseUrl, 'GET', '/v1/_scopes', { token, headers })).status).toBe(429);
      // Other clients of the proxy are unaffected.
      expect((await call(behindProxy.baseUrl, 'GET', '/v1/_scopes', { token, headers: { 'x-forwarded-for': '203.0.113.78' } })).status).toBe(200);
    } finally {
      await behindProxy.close();
    }
  });

  // Last in this file: it blocks 127.0.0.1 on apiA.
  it('by default (no TRUST_PROXY) X-Forwarded-For is ignored: rotating it does not escape the auth-failure limit', async () => {
    const { token } = await tenantWithToken(database.db);
    const forwarded = (i: number) => ({ 'x-forwarded-for': `198.51.100.${i}` });
    for (let i = 0; i < 4; i++) {
      expect((await call(apiA.baseUrl, 'GET', '/v1/_scopes', { token: 'se_live_wrong', headers: forwarded(i) })).status).toBe(401);
    }
    const refused = await call(apiA.baseUrl, 'GET', '/v1/_scopes', { token: 'se_live_wrong', headers: forwarded(4) });
    expect(refused.status).toBe(429);
    expect(refused.json.error).toBe('rate_limited');
    expect((await call(apiA.baseUrl, 'GET', '/v1/_scopes', { token, headers: forwarded(5) })).status).toBe(429);
  });
});

describe('a large send budget (>= LOCAL_MIN_LIMIT): admitted on the process\'s own count far from the limit, by the shared counter near it', () => {
  const big = { ...env, SEND_RATE_LIMIT_LIVE_PER_MINUTE: '1000' };
  const counted = async (tenantId: string) =>
    (await database.db.query(`SELECT coalesce(sum(hits), 0)::int AS n FROM api_rate_counters WHERE bucket = $1`, [`send:${tenantId}:live`])).rows[0].n;

  it('counts every local admission in the shared counter (within LOCAL_SYNC_MS), so another process sees them', async () => {
    const a = await startTestApp(database.db, database.url, big);
    const b = await startTestApp(database.db, database.url, big);
    try {
      const { token, tenantId } = await tenantWithToken(database.db);
      const remaining: string[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await call(a.baseUrl, 'POST', '/v1/send-jobs', { token, body: send(1000 + i) });
        expect(res.status).toBe(200);
        expect(res.headers.get('x-ratelimit-limit')).toBe('1000');
        remaining.push(res.headers.get('x-ratelimit-remaining')!);
      }
      // The first decided by the database, the rest counted locally: one process counts exactly.
      expect(remaining).toEqual(['999', '998', '997', '996', '995', '994']);
      await until(async () => (await counted(tenantId)) === 6, 5_000, 'local admissions written');
      const other = await call(b.baseUrl, 'POST', '/v1/send-jobs', { token, body: send(1010) });
      expect(other.status).toBe(200);
      expect(other.headers.get('x-ratelimit-remaining')).toBe('993');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a stopping process writes what it admitted on its own count', async () => {
    const a = await startTestApp(database.db, database.url, big);
    const { token, tenantId } = await tenantWithToken(database.db);
    for (let i = 0; i < 4; i++) expect((await call(a.baseUrl, 'POST', '/v1/send-jobs', { token, body: send(1100 + i) })).status).toBe(200);
    await a.close();
    expect(await counted(tenantId)).toBe(4);
  });

  // Within one process a bucket's decisions are one statement at a time, so the count is exact;
  // two processes' statements at the same instant read the same window (a sliding window, not a
  // semaphore: HIT_SQL), so across processes a burst may pass by the requests in flight.
  it('near the limit every send is decided by the shared counter: exactly the rest of the budget is admitted, and another process then sees it spent', async () => {
    const a = await startTestApp(database.db, database.url, big);
    const b = await startTestApp(database.db, database.url, big);
    try {
      const { token, tenantId } = await tenantWithToken(database.db);
      // 995 of 1000 already spent this minute (by other processes, say).
      await database.db.query(`INSERT INTO api_rate_counters (bucket, second, hits) VALUES ($1, extract(epoch FROM now())::bigint, 995)`, [`send:${tenantId}:live`]);
      const sends = await Promise.all(Array.from({ length: 10 }, (_, i) => call(a.baseUrl, 'POST', '/v1/send-jobs', { token, body: send(1200 + i) })));
      expect(sends.filter((r) => r.status === 200)).toHaveLength(5);
      const refused = sends.filter((r) => r.status === 429);
      expect(refused).toHaveLength(5);
      expect(refused[0].json).toMatchObject({ error: 'rate_limited', message: 'send rate limit of 1000 send requests per minute exceeded' });
      expect(await counted(tenantId)).toBe(1000);
      const other = await call(b.baseUrl, 'POST', '/v1/send-jobs', { token, body: send(1210) });
      expect(other.status).toBe(429);
      expect(other.json).toMatchObject({ error: 'rate_limited' });
      expect(await counted(tenantId)).toBe(1000);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('TRUST_PROXY', () => {
  const parse = (value?: string) => loadConfig({ JWT_SECRET: 'x'.repeat(32), ...(value === undefined ? {} : { TRUST_PROXY: value }) }).trustProxy;
  it('is off by default; "true" trusts any peer; a list names the proxies', () => {
    expect(parse()).toBe(false);
    expect(parse('false')).toBe(false);
    expect(parse('true')).toBe(true);
    expect(parse(' 10.0.0.0/8, 127.0.0.1 ,::1, fd00::/8, loopback')).toEqual(['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8', 'loopback']);
  });
  it.each(['yes', '10.0.0.0/33', '::1/129', '300.1.1.1', '10.0.0.0/8/1', 'proxy.example'])('refuses %s', (value) => {
    expect(() => parse(value)).toThrow(ConfigError);
    expect(() => parse(value)).toThrow(/TRUST_PROXY/);
  });
});
