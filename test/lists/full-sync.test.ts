import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { memberCenter, person, type Member } from './helpers.ts';

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

const T = (s: number) => new Date(Date.UTC(2025, 0, 1, 12, 0, s));
const people = (n: number, from = 0) => Array.from({ length: n }, (_, i) => person(from + i));
const statuses = (members: Map<string, { status: string; reason: string }>) => Object.fromEntries([...members].map(([id, m]) => [id, `${m.status}/${m.reason}`]));

describe('POST /webhooks/lists/full-sync', () => {
  it('takes batches in any order and, once complete, marks members outside the sync removed (never deleted)', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const [old1, old2, keep] = people(3);
    for (const p of [old1, old2, keep]) await mc.event('subscription.activated', p, T(1));
    const synced = [keep, ...people(8, 10)];
    const sync = randomUUID();
    const batches = [synced.slice(0, 3), synced.slice(3, 6), synced.slice(6)];
    for (const no of [3, 1]) {
      const res = await mc.batch(sync, no, 3, batches[no - 1], T(5));
      expect(res.status).toBe(200);
      expect(res.json.sync_state).toBe('receiving');
    }
    // Incomplete: nobody removed yet.
    expect((await mc.members()).get(old1.id)!.status).toBe('active');
    let list = (await mc.getList()).json;
    expect(list.last_sync).toMatchObject({ sync_id: sync, state: 'receiving', batches_received: 2, batch_total: 3 });
    expect(list.synced_at).toBeNull();

    const last = await mc.batch(sync, 2, 3, batches[1], T(5));
    expect(last.status).toBe(200);
    expect(last.json).toMatchObject({ sync_state: 'completed', batches_received: 3, removed: 2 });
    const members = await mc.members();
    expect(members.size).toBe(11);
    expect(members.get(old1.id)).toMatchObject({ status: 'unsubscribed', reason: 'sync_removed' });
    expect(members.get(old2.id)).toMatchObject({ status: 'unsubscribed', reason: 'sync_removed' });
    expect(members.get(keep.id)!.status).toBe('active');
    list = (await mc.getList()).json;
    expect(list.members).toEqual({ total: 11, active: 9, unsubscribed: 2, bounced: 0, complaint: 0, suppressed: 0 });
    expect(list.last_sync).toMatchObject({ state: 'completed', removed: 2, subscribers_received: 9 });
    expect(list.synced_at).toBe(T(5).toISOString());
  });

  it('answers a repeated batch with 409 duplicate batch', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const sync = randomUUID();
    const batch = people(2);
    expect((await mc.batch(sync, 1, 2, batch, T(1))).status).toBe(200);
    const again = await mc.batch(sync, 1, 2, people(2, 50), T(1));
    expect(again.status).toBe(409);
    expect(again.json).toMatchObject({ error: 'duplicate_batch', request_id: again.headers.get('x-request-id') });
    expect((await mc.members()).size).toBe(2);
    expect((await mc.getList()).json.last_sync.batches_received).toBe(1);
  });

  it('refuses a batch whose batch_total, list, tenant or occurred_at disagree with the first batch (422)', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const other = await memberCenter(database.db, api.baseUrl);
    const sync = randomUUID();
    expect((await mc.batch(sync, 1, 3, people(1), T(1))).status).toBe(200);
    const total = await mc.batch(sync, 2, 4, people(1), T(1));
    expect(total.status).toBe(422);
    expect(total.json.error).toBe('sync_mismatch');
    const refused = async (res: Promise<{ status: number; json: any }>, error: string) => {
      const r = await res;
      expect(r.status).toBe(422);
      expect(r.json.error).toBe(error);
    };
    await refused(mc.batch(sync, 2, 3, people(1), T(1), { list_id: randomUUID() }), 'sync_mismatch');
    await refused(mc.batch(sync, 2, 3, people(1), T(2)), 'sync_mismatch');
    // Another tenant's client reusing the sync id.
    await refused(other.batch(sync, 2, 3, people(1), T(1), { list_id: mc.listId }), 'sync_mismatch');
    await refused(mc.batch(sync, 4, 3, people(1), T(1)), 'validation_error'); // batch_no beyond batch_total
    expect((await mc.getList()).json.last_sync.batches_received).toBe(1);
  });

  it('removes nobody while a batch is missing', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const before = people(3);
    for (const p of before) await mc.event('subscription.activated', p, T(1));
    const sync = randomUUID();
    await mc.batch(sync, 1, 3, people(2, 10), T(5));
    await mc.batch(sync, 3, 3, people(2, 20), T(5));
    const members = await mc.members();
    for (const p of before) expect(members.get(p.id)!.status).toBe('active');
    expect((await mc.getList()).json.last_sync).toMatchObject({ state: 'receiving', batches_received: 2 });
  });

  it('a newer sync supersedes an older incomplete one; the older completing later removes nothing', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const [a, b, c] = people(3);
    const older = randomUUID();
    const newer = randomUUID();
    await mc.batch(older, 1, 2, [a, b], T(10));
    // Newer sync (by occurred_at) starts and completes: the list is exactly {b, c}.
    const done = await mc.batch(newer, 1, 1, [b, c], T(20));
    expect(done.json).toMatchObject({ sync_state: 'completed', removed: 1 });
    expect(statuses(await mc.members())).toEqual({ [a.id]: 'unsubscribed/sync_removed', [b.id]: 'active/sync', [c.id]: 'active/sync' });
    // The older sync's last batch arrives: it neither removes c nor brings a back.
    const late = await mc.batch(older, 2, 2, [a], T(10));
    expect(late.status).toBe(200);
    expect(late.json).toMatchObject({ sync_state: 'superseded', removed: 0 });
    expect(statuses(await mc.members())).toEqual({ [a.id]: 'unsubscribed/sync_removed', [b.id]: 'active/sync', [c.id]: 'active/sync' });
    const { rows } = await database.db.query('SELECT id, state FROM list_syncs WHERE tenant_id = $1', [mc.tenantId]);
    expect(Object.fromEntries(rows.map((r) => [r.id, r.state]))).toEqual({ [older]: 'superseded', [newer]: 'completed' });
  });

  it('an older sync whose batches arrive after a newer one started is superseded at once', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const [a, b, c] = people(3);
    const newer = randomUUID();
    await mc.batch(newer, 1, 2, [a], T(20));
    const older = randomUUID();
    const res = await mc.batch(older, 1, 1, [c], T(10));
    expect(res.json.sync_state).toBe('superseded');
    expect((await mc.members()).get(a.id)!.status).toBe('active');
    await mc.batch(newer, 2, 2, [b], T(20));
    expect(statuses(await mc.members())).toEqual({ [a.id]: 'active/sync', [b.id]: 'active/sync', [c.id]: 'unsubscribed/sync_removed' });
  });

  it('does not overwrite events newer than the sync, nor let older ones bring removed members back', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const [stays, unsubscribedLater, joinedLater, removed, lateOld] = people(5);
    await mc.event('subscription.activated', removed, T(1));
    await mc.event('subscription.activated', unsubscribedLater, T(1));
    const sync = randomUUID();
    await mc.batch(sync, 1, 2, [stays, unsubscribedLater], T(10));
    // During the sync, newer events from the Member Center.
    await mc.event('subscription.unsubscribed', unsubscribedLater, T(15));
    await mc.event('subscription.activated', joinedLater, T(15));
    await mc.event('subscription.activated', removed, T(5)); // older than the sync: no say
    const done = await mc.batch(sync, 2, 2, [], T(10));
    expect(done.json.sync_state).toBe('completed');
    // An event older than the sync arriving after it completed cannot add a member either.
    await mc.event('subscription.activated', lateOld, T(9));
    expect(statuses(await mc.members())).toMatchObject({
      [stays.id]: 'active/sync',
      [unsubscribedLater.id]: 'unsubscribed/subscription.unsubscribed',
      [joinedLater.id]: 'active/subscription.activated',
      [removed.id]: 'unsubscribed/sync_removed',
      [lateOld.id]: 'unsubscribed/sync_removed',
    });
    // A newer event still resubscribes after the sync.
    await mc.event('subscription.activated', removed, T(11));
    expect((await mc.members()).get(removed.id)!.status).toBe('active');
  });

  it('never lifts suppressions and adds bounced/complaint/suppressed ones', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const engineSuppressed = person(1);
    const bounced = person(2, 'bounced');
    await database.db.query(`INSERT INTO suppressions (tenant_id, email, reason, source) VALUES ($1, $2, 'complaint', 'ses')`, [mc.tenantId, engineSuppressed.email]);
    await mc.batch(randomUUID(), 1, 1, [engineSuppressed, bounced], T(1));
    const { rows } = await database.db.query('SELECT email, reason, source FROM suppressions WHERE tenant_id = $1 ORDER BY email', [mc.tenantId]);
    expect(rows).toEqual([
      { email: engineSuppressed.email, reason: 'complaint', source: 'ses' },
      { email: bounced.email, reason: 'bounced', source: 'member_center' },
    ].sort((x, y) => x.email.localeCompare(y.email)));
    // A later sync without them does not lift anything either.
    await mc.batch(randomUUID(), 1, 1, [], T(2));
    const after = await database.db.query('SELECT count(*)::int AS n FROM suppressions WHERE tenant_id = $1', [mc.tenantId]);
    expect(after.rows[0].n).toBe(2);
  });

  it('handles concurrent batches of one sync and completes exactly once', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const before = people(5, 900);
    for (const p of before) await mc.event('subscription.activated', p, T(1));
    const all: Member[] = people(400);
    const sync = randomUUID();
    const total = 20;
    const results = await Promise.all(
      Array.from({ length: total }, (_, i) => mc.batch(sync, i + 1, total, all.slice(i * 20, i * 20 + 20), T(5))),
    );
    expect(results.map((r) => r.status)).toEqual(Array(total).fill(200));
    expect(results.filter((r) => r.json.sync_state === 'completed' && r.json.removed !== undefined)).toHaveLength(1);
    const list = (await mc.getList()).json;
    expect(list.members).toMatchObject({ total: 405, active: 400, unsubscribed: 5 });
    expect(list.last_sync).toMatchObject({ state: 'completed', removed: 5, batches_received: total, subscribers_received: 400 });
  });

  it('deduplicates a subscriber repeated inside one batch (last wins)', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const p = person(1);
    const res = await mc.batch(randomUUID(), 1, 1, [p, { ...p, status: 'unsubscribed', email: 'last@example.com' }], T(1));
    expect(res.status).toBe(200);
    expect((await mc.members()).get(p.id)).toMatchObject({ status: 'unsubscribed', email: 'last@example.com' });
  });

  it('treats list and sync ids case-insensitively', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const old = person(1);
    await mc.event('subscription.activated', old, T(1));
    const sync = randomUUID();
    expect((await mc.batch(sync, 1, 2, people(1, 10), T(5))).status).toBe(200);
    const res = await mc.batch(sync.toUpperCase(), 2, 2, people(1, 20), T(5), { list_id: mc.listId.toUpperCase() });
    expect(res.status).toBe(200);
    expect(res.json.sync_state).toBe('completed');
    expect((await mc.members()).get(old.id)!.status).toBe('unsubscribed');
  });

  it('completes a fully received sync whose completion step never ran when its last batch is retried', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const old = person(1);
    await mc.event('subscription.activated', old, T(1));
    const sync = randomUUID();
    const batch = people(2, 10);
    // Simulate a crash between the last batch's commit and the completion step.
    expect((await mc.batch(sync, 1, 1, batch, T(5))).json.sync_state).toBe('completed');
    await database.db.query(`UPDATE list_syncs SET state = 'receiving', completed_at = NULL, removed_count = NULL WHERE id = $1`, [sync]);
    await database.db.query(`UPDATE list_members SET status = 'active', reason = 'event', status_at = $2 WHERE subscriber_id = $1`, [old.id, T(1)]);
    await database.db.query('UPDATE lists SET synced_at = NULL, last_sync_id = NULL WHERE tenant_id = $1', [mc.tenantId]);
    expect((await mc.getList()).json.last_sync.state).toBe('receiving');
    const retry = await mc.batch(sync, 1, 1, batch, T(5));
    expect(retry.status).toBe(409);
    expect((await mc.getList()).json.last_sync).toMatchObject({ state: 'completed', removed: 1 });
    expect((await mc.members()).get(old.id)).toMatchObject({ status: 'unsubscribed', reason: 'sync_removed' });
  });
});
