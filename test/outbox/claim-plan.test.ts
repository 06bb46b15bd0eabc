import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimMessages } from '../../src/outbox/claim.ts';
import { submitProxySend } from '../../src/sending/submit.ts';
import { tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.drop());

const QUEUED = 20_000;

/**
 * Buffers a statement touched (shared hits + reads), from EXPLAIN (ANALYZE, BUFFERS), on its second
 * run in the session: the first also reads the catalog to plan the function's body.
 */
async function buffersOf(sql: string, values: unknown[]): Promise<number> {
  const client = await database.db.connect();
  try {
    await client.query('BEGIN');
    await client.query(sql, values);
    await client.query('ROLLBACK');
    await client.query('BEGIN');
    const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`, values);
    await client.query('ROLLBACK');
    const plan = rows[0]['QUERY PLAN'][0].Plan;
    return plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
  } finally {
    client.release();
  }
}

describe('a claim costs its batch, not the queue', () => {
  it('takes the oldest due messages reading a few pages, with 20,000 queued and statistics that say the table is empty', async () => {
    const { tenantId } = await tenantWithToken(database.db);
    await database.db.query('ANALYZE messages');
    await submitProxySend(database.db, tenantId, { message_type: 'transactional', from: 'a@plan.test', to: ['first@example.com'], subject: 's', html: '<p>x</p>', text: 'x', tags: { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'all' }, idempotency_key: 'plan' }, { idempotencyTtlHours: 1 });
    // A big queue behind it, as a fan-out leaves it: no ANALYZE since.
    await database.db.query(
      `INSERT INTO messages (id, tenant_id, proxy_job_id, recipient, status, headers, tags, next_attempt_at, created_at, updated_at)
       SELECT uuid_v7(), tenant_id, proxy_job_id, 'member' || g || '@example.com', 'queued', headers, tags, next_attempt_at + g * interval '1 microsecond', now(), now()
         FROM messages, generate_series(1, $1) g`,
      [QUEUED],
    );
    const full = await buffersOf(`SELECT count(*) FROM messages WHERE status = 'queued'`, []);
    const claim = await buffersOf(`SELECT * FROM outbox_due(10)`, []);
    // Reading the whole queue touches every heap page; the claim touches a handful.
    expect(full).toBeGreaterThan(150);
    expect(claim).toBeLessThan(full / 5);

    const batch = await claimMessages(database.db, 'w1', 10, 60);
    expect(batch).toHaveLength(10);
    expect(batch[0].recipient).toBe('first@example.com');
  });
});
