import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '../../src/index.ts';
import { call, startTestApp, TEST_JWT_SECRET, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

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

const cli = (...args: string[]) =>
  run(process.execPath, [BIN, ...args], { env: { ...process.env, DATABASE_URL: database.url, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'silent' } });

async function postEvent(tenantId: string, clientId: string, secret: string) {
  const raw = JSON.stringify({
    event_id: randomUUID(), event_type: 'subscription.activated', tenant_id: tenantId, list_id: randomUUID(),
    subscriber: { id: randomUUID(), email: 'cli@example.com', status: 'active' }, occurred_at: new Date().toISOString(),
  });
  return call(api.baseUrl, 'POST', '/webhooks/subscriptions', { rawBody: raw, headers: { ...signWebhook({ clientId, secret, body: raw }) } });
}

describe('send-engine webhook-client', () => {
  it('create --json prints a client id and secret that sign accepted requests; rotate and retire work', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    const created = JSON.parse((await cli('webhook-client', 'create', '--tenant', tenantId, '--json')).stdout.trim());
    expect(Object.keys(created).sort()).toEqual(['client_id', 'secret']);
    expect((await postEvent(tenantId, created.client_id, created.secret)).status).toBe(200);

    const rotated = JSON.parse((await cli('webhook-client', 'rotate', '--client', created.client_id, '--json')).stdout.trim());
    expect(rotated.client_id).toBe(created.client_id);
    expect(rotated.secret).not.toBe(created.secret);
    expect((await postEvent(tenantId, created.client_id, created.secret)).status).toBe(200);
    expect((await postEvent(tenantId, created.client_id, rotated.secret)).status).toBe(200);

    await cli('webhook-client', 'retire', '--client', created.client_id);
    expect((await postEvent(tenantId, created.client_id, created.secret)).status).toBe(401);
    expect((await postEvent(tenantId, created.client_id, rotated.secret)).status).toBe(200);
  }, 60_000);

  it('refuses an unknown tenant with a clear message', async () => {
    await expect(cli('webhook-client', 'create', '--tenant', randomUUID(), '--json')).rejects.toMatchObject({ stderr: expect.stringMatching(/tenant .* not found/) });
  }, 30_000);
});
