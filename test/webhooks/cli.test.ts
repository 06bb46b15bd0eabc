import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';
import type { WebhookDeliverer } from '../../src/webhooks/worker.ts';
import { call, startTestApp, TEST_JWT_SECRET, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startDeliverer, startReceiver, type Receiver } from './helpers.ts';

const run = promisify(execFile);
const BIN = path.resolve('bin/send-engine.mjs');

let database: TestDatabase;
let api: TestApp;
let receiver: Receiver;
let deliverer: WebhookDeliverer;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url);
  receiver = await startReceiver();
  deliverer = await startDeliverer(database.db, database.url);
});
afterAll(async () => {
  await deliverer?.stop();
  await receiver?.close();
  await api?.close();
  await database?.drop();
});

const cli = (env: Record<string, string>, ...args: string[]) =>
  run(process.execPath, [BIN, ...args], { env: { ...process.env, DATABASE_URL: database.url, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'silent', ...env } });

describe('send-engine webhook', () => {
  it('creates (secret printed once, usable by the worker), lists and disables an endpoint', async () => {
    const { tenantId, token } = await tenantWithToken(database.db);
    const { stdout } = await cli({ WEBHOOK_ALLOW_PRIVATE: 'true' }, 'webhook', 'create', '--tenant', tenantId, '--url', receiver.url, '--events', 'subscription.unsubscribed,send_job.completed', '--json');
    const created = JSON.parse(stdout);
    expect(created).toMatchObject({ url: receiver.url, event_types: ['subscription.unsubscribed', 'send_job.completed'], status: 'enabled' });
    expect(created.secret).toMatch(/^whsec_/);

    await database.db.query('INSERT INTO outbound_events (id, tenant_id, type, payload) VALUES ($1, $2, $3, $4)', [newId(), tenantId, 'subscription.unsubscribed', '{"via":"cli"}']);
    const [got] = await receiver.waitFor((r) => r.length === 1, 'the event');
    const headers = { 'webhook-id': String(got.headers['webhook-id']), 'webhook-timestamp': String(got.headers['webhook-timestamp']), 'webhook-signature': String(got.headers['webhook-signature']) };
    expect(new Webhook(created.secret).verify(got.body, headers)).toMatchObject({ data: { via: 'cli' } });

    const listed = (await cli({}, 'webhook', 'list', '--tenant', tenantId, '--json')).stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(listed.map((e) => e.id)).toEqual([created.id]);
    expect(listed[0]).not.toHaveProperty('secret');

    await cli({}, 'webhook', 'disable', '--tenant', tenantId, '--endpoint', created.id);
    expect((await call(api.baseUrl, 'GET', `/v1/webhook-endpoints/${created.id}`, { token })).json).toMatchObject({ status: 'disabled', disabled_reason: 'disabled by request' });
  });

  it('refuses http:// without WEBHOOK_ALLOW_PRIVATE and unknown event types, creating nothing', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    await expect(cli({}, 'webhook', 'create', '--tenant', tenantId, '--url', 'http://hooks.example/x')).rejects.toMatchObject({ stderr: expect.stringContaining('url must use https') });
    await expect(cli({}, 'webhook', 'create', '--tenant', tenantId, '--url', 'https://hooks.example/x', '--events', 'message.exploded')).rejects.toMatchObject({ stderr: expect.stringContaining('unknown event type') });
    expect((await database.db.query('SELECT count(*)::int AS n FROM webhook_endpoints WHERE tenant_id = $1', [tenantId])).rows[0].n).toBe(0);
  });
});
