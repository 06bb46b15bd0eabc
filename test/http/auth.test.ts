import http from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../src/auth/jwt.ts';
import { createTenant } from '../../src/tenants/tenants.ts';
import { call, startTestApp, TEST_JWT_SECRET, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let database: TestDatabase;
let api: TestApp;
let tenantId: string;

const body = {
  message_type: 'transactional',
  from: 'sender@acme.test',
  to: ['alice@example.com'],
  subject: 'Hi',
  html: '<p>Hi</p>',
  text: 'Hi',
  tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' },
  idempotency_key: 'auth-test',
};
const secret = new TextEncoder().encode(TEST_JWT_SECRET);
const post = (headers: Record<string, string>, baseUrl = api.baseUrl) => call(baseUrl, 'POST', '/v1/send-jobs', { body, headers });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url, { JWT_ISSUER: 'https://issuer.test', JWT_AUDIENCE: 'send-engine' });
  tenantId = (await createTenant(database.db, 'auth')).id;
});
afterAll(async () => {
  await api.close();
  await database.drop();
});

function claims(overrides: Record<string, unknown> = {}) {
  return new SignJWT({ tenant_id: tenantId, scope: 'send', ...overrides })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('https://issuer.test')
    .setAudience('send-engine')
    .setIssuedAt();
}

describe('bearer JWT (HS256)', () => {
  it('accepts a valid token', async () => {
    const token = await claims().setExpirationTime('5m').sign(secret);
    expect((await post(bearer(token))).status).toBe(200);
  });

  it('accepts the tokens the CLI issues', async () => {
    const token = await issueToken(TEST_JWT_SECRET, { tenantId, scopes: ['send'], ttl: '5m', issuer: 'https://issuer.test', audience: 'send-engine' });
    expect((await post(bearer(token))).status).toBe(200);
  });

  it.each([
    ['no Authorization header', async () => ({})],
    ['a Basic header', async () => ({ authorization: 'Basic dXNlcjpwYXNz' })],
    ['a token signed with another secret', async () => bearer(await claims().setExpirationTime('5m').sign(new TextEncoder().encode('x'.repeat(40))))],
    ['an expired token', async () => bearer(await claims().setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(secret))],
    ['a token without exp', async () => bearer(await claims().sign(secret))],
    ['a wrong issuer', async () => bearer(await claims().setIssuer('https://evil.test').setExpirationTime('5m').sign(secret))],
    ['a wrong audience', async () => bearer(await claims().setAudience('other').setExpirationTime('5m').sign(secret))],
    ['no tenant_id claim', async () => bearer(await claims({ tenant_id: undefined }).setExpirationTime('5m').sign(secret))],
    [
      'alg none',
      async () => {
        const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const payload = { tenant_id: tenantId, scope: 'send', iss: 'https://issuer.test', aud: 'send-engine', exp: Math.floor(Date.now() / 1000) + 300 };
        return bearer(`${enc({ alg: 'none', typ: 'JWT' })}.${enc(payload)}.`);
      },
    ],
    [
      'HS512 instead of the pinned HS256',
      async () => bearer(await new SignJWT({ tenant_id: tenantId, scope: 'send' }).setProtectedHeader({ alg: 'HS512' }).setIssuer('https://issuer.test').setAudience('send-engine').setExpirationTime('5m').sign(secret)),
    ],
  ])('%s -> 401 with the error body', async (_name, headers) => {
    const res = await post(await headers());
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ error: 'unauthorized', message: expect.any(String), request_id: res.headers.get('x-request-id') });
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('a token without the route scope -> 403 naming the scope', async () => {
    const token = await claims({ scope: 'messages.view' }).setExpirationTime('5m').sign(secret);
    const res = await post(bearer(token));
    expect(res.status).toBe(403);
    expect(res.json.message).toContain('send');
  });

  it('a verified token is cached, but never past its exp: the expired token is refused though the cache would last 60 s', async () => {
    const cached = await startTestApp(database.db, database.url, { JWT_ISSUER: 'https://issuer.test', JWT_AUDIENCE: 'send-engine', AUTH_CACHE_SECONDS: '60' });
    try {
      // exp is whole seconds: this token lives 1 to 2 s.
      const exp = Math.floor(Date.now() / 1000) + 2;
      const token = await claims().setExpirationTime(exp).sign(secret);
      const scopes = () => call(cached.baseUrl, 'GET', '/v1/_scopes', { token });
      expect((await scopes()).status).toBe(200);
      await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 50));
      const res = await scopes();
      expect(res.status).toBe(401);
      expect(res.json).toMatchObject({ error: 'unauthorized', message: 'token expired' });
    } finally {
      await cached.close();
    }
  });

  it('a token for a tenant that does not exist -> 422', async () => {
    const token = await claims({ tenant_id: '01890000-0000-7000-8000-000000000000' }).setExpirationTime('5m').sign(secret);
    const res = await post(bearer(token));
    expect(res.status).toBe(422);
    expect(res.json.error).toBe('unknown_tenant');
  });
});

describe('bearer JWT from a JWKS (RS256)', () => {
  it('accepts tokens signed by a key the JWKS publishes and refuses others', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const stranger = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json`;
    const jwksApi = await startTestApp(database.db, database.url, { JWT_SECRET: '', JWT_JWKS_URL: jwksUrl });
    try {
      const sign = (key: CryptoKey | import('node:crypto').KeyObject) =>
        new SignJWT({ tenant_id: tenantId, scope: 'send' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setExpirationTime('5m').sign(key);
      expect((await post(bearer(await sign(privateKey)), jwksApi.baseUrl)).status).toBe(200);
      expect((await post(bearer(await sign(stranger.privateKey)), jwksApi.baseUrl)).status).toBe(401);
      // A shared-secret token is refused when the engine is configured for a JWKS.
      const hs = await new SignJWT({ tenant_id: tenantId, scope: 'send' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(secret);
      expect((await post(bearer(hs), jwksApi.baseUrl)).status).toBe(401);
    } finally {
      await jwksApi.close();
      server.close();
    }
  });
});
