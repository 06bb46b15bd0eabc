import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.ts';
import { startOrchestration } from '../../src/orchestration/boss.ts';
import { call, startTestApp, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

const send = (baseUrl: string, token: string, key: string) =>
  call(baseUrl, 'POST', '/v1/send-jobs', {
    token,
    body: {
      message_type: 'transactional', from: 'hello@unverified.example', to: ['reader@inbox.example'], subject: 'Hi', html: '<p>Hi</p>', text: 'Hi',
      tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' }, idempotency_key: key,
    },
  });

describe('the verified-domain rule', () => {
  it.each<[Record<string, string>, number, string]>([
    [{}, 200, 'capture (the quick start) stays permissive'],
    [{ SEND_ENGINE_TRANSPORT: 'smtp://127.0.0.1:2525' }, 422, 'smtp refuses'],
    [{ SEND_ENGINE_TRANSPORT: 'ses' }, 422, 'ses refuses'],
    [{ SEND_ENGINE_TRANSPORT: 'smtp://127.0.0.1:2525', REQUIRE_VERIFIED_DOMAIN: 'false' }, 200, 'REQUIRE_VERIFIED_DOMAIN=false turns it off'],
  ])('%j answers %i: %s', async (env, status) => {
    const api = await startTestApp(database.db, database.url, env);
    try {
      const { token } = await tenantWithToken(database.db);
      const res = await send(api.baseUrl, token, `rule-${JSON.stringify(env)}`);
      expect(res.status).toBe(status);
      if (status === 422) {
        expect(res.json.error).toBe('domain_not_verified');
        expect(res.json.message).toContain('unverified.example');
      }
    } finally {
      await api.close();
    }
  });

  it('workers schedule the DNS re-check every minute', async () => {
    const orchestration = await startOrchestration(database.url, database.db, createLogger('silent'), {
      worker: true,
      sendJobs: { chunkSize: 100, defaultRatePerSecond: null, checkEverySeconds: 1 },
      domains: { settings: { dnsServers: [], requireVerified: true, returnPathSubdomain: 'bounces', returnPathMx: 'mx.example', spfMechanisms: ['mx'], trackingSubdomain: 'track' } },
    });
    try {
      const { rows } = await database.db.query(`SELECT name, cron FROM pgboss.schedule WHERE name = 'domains.verify'`);
      expect(rows).toEqual([{ name: 'domains.verify', cron: '* * * * *' }]);
    } finally {
      await orchestration.stop();
    }
  });
});
