import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeApiKey } from '../../src/auth/api-keys.ts';
import { call, startTestApp, TEST_JWT_SECRET, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { until } from '../helpers/wait.ts';

const run = promisify(execFile);
const BIN = path.resolve('bin/send-engine.mjs');

let database: TestDatabase;
let api: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url);
});
afterAll(async () => {
  await api.close();
  await database.drop();
});

const cli = async (...args: string[]) =>
  (await run(process.execPath, [BIN, ...args], { env: { ...process.env, DATABASE_URL: database.url, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'silent' } })).stdout.trim();

const scopesOf = (token: string) => call(api.baseUrl, 'GET', '/v1/_scopes', { token });

describe('API keys', () => {
  it('create prints the secret once; only its SHA-256 and prefix are stored; the key authenticates', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const created = JSON.parse(await cli('key', 'create', '--tenant', tenantId, '--scopes', 'messages.view,reports.view', '--json'));
    expect(Object.keys(created).sort()).toEqual(['environment', 'key_id', 'prefix', 'scopes', 'secret']);
    expect(created.secret).toMatch(/^se_live_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(created.secret.slice('se_live_'.length), 'base64url')).toHaveLength(32);
    expect(created.prefix).toBe(created.secret.slice(0, 16));
    expect(created).toMatchObject({ environment: 'live', scopes: ['messages.view', 'reports.view'] });

    const { rows } = await database.db.query(`SELECT to_jsonb(k) AS row, secret_hash FROM api_keys k WHERE id = $1`, [created.key_id]);
    expect(rows[0].secret_hash.equals(createHash('sha256').update(created.secret).digest())).toBe(true);
    // The secret itself appears nowhere in the stored row.
    expect(JSON.stringify(rows[0].row)).not.toContain(created.secret.slice(16));

    const res = await scopesOf(created.secret);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ key_id: created.key_id, prefix: created.prefix, environment: 'live', scopes: ['messages.view', 'reports.view'] });
    expect(res.headers.get('x-ratelimit-limit')).toBe('600');
  });

  it('test keys are se_test_ and run at the test limit; JWTs report key_id null and live', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['messages.view']);
    const created = JSON.parse(await cli('key', 'create', '--tenant', tenantId, '--scopes', 'messages.view', '--test', '--json'));
    expect(created.secret).toMatch(/^se_test_/);
    const res = await scopesOf(created.secret);
    expect(res.json.environment).toBe('test');
    expect(res.headers.get('x-ratelimit-limit')).toBe('60');
    const jwt = await scopesOf(token);
    expect(jwt.json).toEqual({ key_id: null, prefix: null, environment: 'live', scopes: ['messages.view'] });
  });

  it('a missing scope is a 403 naming it; unknown, malformed and tampered keys are 401', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const created = JSON.parse(await cli('key', 'create', '--tenant', tenantId, '--scopes', 'reports.view', '--json'));
    const denied = await call(api.baseUrl, 'GET', '/v1/messages', { token: created.secret });
    expect(denied.status).toBe(403);
    expect(denied.json).toMatchObject({ error: 'permission_denied', status: 403, request_id: expect.any(String) });
    expect(denied.json.detail).toContain('messages.view');

    const tampered = created.secret.slice(0, -1) + (created.secret.endsWith('A') ? 'B' : 'A');
    for (const token of [tampered, 'se_live_short', `se_live_${'x'.repeat(43)}`]) {
      const res = await scopesOf(token);
      expect(res.status).toBe(401);
      expect(res.json.error).toBe('unauthorized');
    }
  });

  it('rotate: both secrets work during the grace, the old one stops when it ends; revoke is immediate', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const old = JSON.parse(await cli('key', 'create', '--tenant', tenantId, '--scopes', 'messages.view', '--json'));
    const rotated = JSON.parse(await cli('key', 'rotate', '--key', old.key_id, '--json'));
    expect(rotated.secret).not.toBe(old.secret);
    expect(rotated.key_id).not.toBe(old.key_id);
    expect(rotated.scopes).toEqual(['messages.view']);
    const expiry = new Date(rotated.old_key_expires_at).getTime();
    expect(Math.abs(expiry - (Date.now() + 24 * 3600_000))).toBeLessThan(60_000);
    expect((await scopesOf(old.secret)).status).toBe(200);
    expect((await scopesOf(rotated.secret)).status).toBe(200);

    // The grace ending (simulated by moving the expiry) ends the old key within the cache time.
    await database.db.query(`UPDATE api_keys SET expires_at = now() WHERE id = $1`, [old.key_id]);
    await until(async () => (await scopesOf(old.secret)).status === 401, 10_000, 'expired key refused');
    expect((await scopesOf(rotated.secret)).status).toBe(200);

    await cli('key', 'revoke', '--key', rotated.key_id);
    const started = Date.now();
    await until(async () => (await scopesOf(rotated.secret)).status === 401, 10_000, 'revoked key refused');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a verified key is trusted for AUTH_CACHE_SECONDS at most: revoked, it is refused within that bound', async () => {
    const cached = await startTestApp(database.db, database.url, { AUTH_CACHE_SECONDS: '2' });
    const uncached = await startTestApp(database.db, database.url, { AUTH_CACHE_SECONDS: '0' });
    try {
      const { tenantId } = await tenantWithToken(database.db);
      const key = JSON.parse(await cli('key', 'create', '--tenant', tenantId, '--scopes', 'messages.view', '--json'));
      expect((await call(cached.baseUrl, 'GET', '/v1/_scopes', { token: key.secret })).status).toBe(200);
      expect((await call(uncached.baseUrl, 'GET', '/v1/_scopes', { token: key.secret })).status).toBe(200);

      await revokeApiKey(database.db, key.key_id);
      const revokedAt = Date.now();
      // No cache: the next request looks the key up and is refused.
      const direct = await call(uncached.baseUrl, 'GET', '/v1/_scopes', { token: key.secret });
      expect(direct.status).toBe(401);
      expect(direct.json).toMatchObject({ error: 'unauthorized', message: 'invalid API key' });
      // A 2 s cache: refused once the entry verified before the revocation has expired, not later
      // (the margin is the polling and a loaded machine's scheduling, not the cache).
      const refused = await until(async () => {
        const res = await call(cached.baseUrl, 'GET', '/v1/_scopes', { token: key.secret });
        return res.status === 401 && res;
      }, 10_000, 'revoked key refused');
      expect(refused.json).toMatchObject({ error: 'unauthorized', message: 'invalid API key' });
      expect(Date.now() - revokedAt).toBeLessThan(2_000 + 1_500);
    } finally {
      await cached.close();
      await uncached.close();
    }
  });

  it('the CLI refuses unknown tenants, unknown scopes and unknown keys', async () => {
    await expect(cli('key', 'create', '--tenant', '01890000-0000-7000-8000-000000000000', '--scopes', 'messages.view')).rejects.toThrow(/not found/);
    const { tenantId } = await tenantWithToken(database.db);
    await expect(cli('key', 'create', '--tenant', tenantId, '--scopes', 'nope.view')).rejects.toThrow(/unknown scope/);
    await expect(cli('key', 'revoke', '--key', '01890000-0000-7000-8000-000000000000')).rejects.toThrow(/not found/);
  });
});
