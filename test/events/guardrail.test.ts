import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimMessages } from '../../src/outbox/claim.ts';
import { newsletterState } from '../../src/events/guardrail.ts';
import { newId } from '../../src/ids.ts';
import { tenantWithToken, TEST_JWT_SECRET } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { fakeFetcher, postSigned, seedMessages, startEventsApp } from './helpers.ts';

let database: TestDatabase;
let api: Awaited<ReturnType<typeof startEventsApp>>;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startEventsApp(database.db, database.url, fakeFetcher({}).fetcher, { GUARDRAIL_MIN_SENT: '100' });
});
afterAll(async () => {
  await api.close();
  await database.drop();
});

/** n sent messages with the dispatcher's `send` events (which the counters count as sends). */
async function sentVolume(tenantId: string, n: number) {
  const seeded = await seedMessages(database.db, tenantId, n);
  await database.db.query(
    `INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, data, dedupe_key)
     SELECT gen_random_uuid(), $1, id, 'send', now(), '{}', id || ':sent:1' FROM unnest($2::uuid[]) AS id`,
    [tenantId, seeded.ids],
  );
  return seeded;
}

const report = (tenantId: string, type: string, id: string, email: string) =>
  postSigned(api.baseUrl, { event_type: type, tenant_id: tenantId, message_id: id, email, occurred_at: new Date().toISOString() });

describe('reputation guardrail', () => {
  it('pauses newsletters when the complaint rate passes 0.3%, only above the minimum volume', async () => {
    const small = (await tenantWithToken(database.db)).tenantId;
    const s = await sentVolume(small, 50);
    expect((await report(small, 'complaint', s.ids[0], s.recipients[0])).status).toBe(200);
    expect((await newsletterState(database.db, small))?.paused).toBe(false); // 2%, but only 50 sent

    const big = (await tenantWithToken(database.db)).tenantId;
    const b = await sentVolume(big, 400);
    await report(big, 'complaint', b.ids[0], b.recipients[0]); // 0.25%
    expect((await newsletterState(database.db, big))?.paused).toBe(false);
    await report(big, 'complaint', b.ids[1], b.recipients[1]); // 0.5%
    const state = await newsletterState(database.db, big);
    expect(state?.paused).toBe(true);
    expect(state?.reason).toMatch(/complaint rate 0\.5\d*% \(2 of 400 sent in 7 days\) is above 0\.3%/);
  });

  it('pauses on a hard-bounce rate above 5%, not at 5%', async () => {
    const tenantId = (await tenantWithToken(database.db)).tenantId;
    const t = await sentVolume(tenantId, 200);
    for (let i = 0; i < 10; i++) await report(tenantId, 'hard_bounced', t.ids[i], t.recipients[i]);
    // Soft bounces do not count toward the rate.
    for (let i = 10; i < 20; i++) await report(tenantId, 'soft_bounced', t.ids[i], t.recipients[i]);
    expect((await newsletterState(database.db, tenantId))?.paused).toBe(false);
    await report(tenantId, 'hard_bounced', t.ids[20], t.recipients[20]);
    expect((await newsletterState(database.db, tenantId))?.reason).toMatch(/hard-bounce rate 5\.5\d*% \(11 of 200/);
  });

  it('holds back a paused tenant\'s newsletters from the dispatcher, not its transactional mail; the CLI resumes', async () => {
    const paused = (await tenantWithToken(database.db)).tenantId;
    const other = (await tenantWithToken(database.db)).tenantId;
    await database.db.query(`UPDATE tenants SET newsletter_paused_at = now(), newsletter_pause_reason = 'test' WHERE id = $1`, [paused]);
    const pausedNews = await seedMessages(database.db, paused, 3, { status: 'queued', messageType: 'newsletter' });
    const pausedTx = await seedMessages(database.db, paused, 2, { status: 'queued', messageType: 'transactional' });
    const otherNews = await seedMessages(database.db, other, 2, { status: 'queued', messageType: 'newsletter' });

    const claimed = (await claimMessages(database.db, 'w1', 100, 60)).map((c) => c.id).sort();
    expect(claimed).toEqual([...pausedTx.ids, ...otherNews.ids].sort());

    const cli = await promisify(execFile)('node', ['bin/send-engine.mjs', 'tenant', 'resume', '--tenant', paused], {
      env: { ...process.env, DATABASE_URL: database.url, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'silent' },
    });
    expect(cli.stdout).toContain('newsletter sending resumed (was paused: test)');
    expect((await newsletterState(database.db, paused))?.paused).toBe(false);
    expect((await claimMessages(database.db, 'w1', 100, 60)).map((c) => c.id).sort()).toEqual([...pausedNews.ids].sort());

    const missing = await promisify(execFile)('node', ['bin/send-engine.mjs', 'tenant', 'resume', '--tenant', newId()], {
      env: { ...process.env, DATABASE_URL: database.url, JWT_SECRET: TEST_JWT_SECRET },
    }).catch((err) => err);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('not found');
  });
});
