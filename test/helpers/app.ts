import type { FastifyInstance } from 'fastify';
import { issueToken } from '../../src/auth/jwt.ts';
import { DEFAULT_SCOPES, type Scope } from '../../src/auth/scopes.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import type { Db } from '../../src/db/pool.ts';
import { buildApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/log.ts';
import { createTenant } from '../../src/tenants/tenants.ts';

export const TEST_JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

/** Config as the engine would read it, pointed at a test database. */
export function testConfig(databaseUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({ DATABASE_URL: databaseUrl, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'silent', ...env });
}

export interface TestApp {
  app: FastifyInstance;
  baseUrl: string;
  config: Config;
  close(): Promise<void>;
}

/** The real HTTP app listening on an ephemeral 127.0.0.1 port. */
export async function startTestApp(db: Db, databaseUrl: string, env: Record<string, string> = {}): Promise<TestApp> {
  const config = testConfig(databaseUrl, env);
  const app = await buildApp({ config, db, logger: createLogger('silent') });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, baseUrl: address, config, close: () => app.close() };
}

export async function tenantWithToken(db: Db, scopes: Scope[] = DEFAULT_SCOPES, name = 'test tenant') {
  const tenant = await createTenant(db, name);
  const token = await issueToken(TEST_JWT_SECRET, { tenantId: tenant.id, scopes, ttl: '1h' });
  return { tenantId: tenant.id, token };
}

/** fetch with JSON in and out. */
export async function call(baseUrl: string, method: string, path: string, options: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined || options.rawBody !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}
