import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { memberCenter, person } from './helpers.ts';

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

async function suppression(tenantId: string, email: string) {
  const { rows } = await database.db.query('SELECT reason, source FROM suppressions WHERE tenant_id = $1 AND email = $2', [tenantId, email.toLowerCase()]);
  return rows[0] as { reason: string; source: string } | undefined;
}

describe('POST /webhooks/subscriptions', () => {
  it('creates the list, the subscriber and the membership, and keeps the email current', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const alice = person(1, 'active', { weekly: true });
    expect((await mc.event('subscription.activated', alice, T(1))).status).toBe(200);
    let m = (await mc.members()).get(alice.id)!;
    expect(m).toMatchObject({ status: 'active', email: alice.email, preferences: { weekly: true } });

    const renamed = { ...alice, email: 'alice.new@example.com', preferences: { weekly: false, daily: true } };
    expect((await mc.event('preferences.updated', renamed, T(2))).status).toBe(200);
    m = (await mc.members()).get(alice.id)!;
    expect(m).toMatchObject({ status: 'active', email: 'alice.new@example.com', preferences: { weekly: false, daily: true } });

    expect((await mc.event('subscription.unsubscribed', renamed, T(3))).status).toBe(200);
    expect((await mc.members()).get(alice.id)!.status).toBe('unsubscribed');
    const list = await mc.getList();
    expect(list.status).toBe(200);
    expect(list.json.members).toMatchObject({ total: 1, active: 0, unsubscribed: 1 });
  });

  it('answers a repeated event_id with 409 duplicate event and changes nothing', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const bob = person(2);
    const body = { event_id: crypto.randomUUID(), event_type: 'subscription.activated', tenant_id: mc.tenantId, list_id: mc.listId, subscriber: bob, occurred_at: T(1).toISOString() };
    expect((await mc.post('/webhooks/subscriptions', body)).status).toBe(200);
    // Same event id, different content: must not be applied.
    const again = await mc.post('/webhooks/subscriptions', { ...body, event_type: 'subscription.unsubscribed', occurred_at: T(9).toISOString() });
    expect(again.status).toBe(409);
    expect(again.json.error).toBe('duplicate_event');
    expect(again.json.message).toMatch(/^duplicate event/);
    expect(again.json.request_id).toBe(again.headers.get('x-request-id'));
    expect((await mc.members()).get(bob.id)!.status).toBe('active');
    const { rows } = await database.db.query('SELECT count(*)::int AS n FROM subscription_events WHERE tenant_id = $1', [mc.tenantId]);
    expect(rows[0].n).toBe(1);
  });

  it('ignores an older event (recorded as received, not applied)', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const carol = person(3, 'active', { v: 2 });
    expect((await mc.event('preferences.updated', carol, T(10))).json.applied).toBe(true);
    const stale = await mc.event('preferences.updated', { ...carol, email: 'old@example.com', preferences: { v: 1 } }, T(5));
    expect(stale.status).toBe(200);
    expect(stale.json.applied).toBe(false);
    const m = (await mc.members()).get(carol.id)!;
    expect(m).toMatchObject({ preferences: { v: 2 }, email: carol.email });
    const { rows } = await database.db.query('SELECT applied FROM subscription_events WHERE tenant_id = $1 ORDER BY occurred_at', [mc.tenantId]);
    expect(rows.map((r) => r.applied)).toEqual([false, true]);
  });

  it('never lets an older (or simultaneous) activation undo an unsubscribe', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const dan = person(4);
    await mc.event('subscription.unsubscribed', dan, T(20));
    await mc.event('subscription.activated', dan, T(10));
    expect((await mc.members()).get(dan.id)!.status).toBe('unsubscribed');
    await mc.event('subscription.activated', dan, T(20));
    expect((await mc.members()).get(dan.id)!.status).toBe('unsubscribed');
    // Same instant, the other arrival order: the unsubscribe still wins.
    const eve = person(5);
    await mc.event('subscription.activated', eve, T(30));
    await mc.event('subscription.unsubscribed', eve, T(30));
    expect((await mc.members()).get(eve.id)!.status).toBe('unsubscribed');
    // A newer activation does resubscribe.
    await mc.event('subscription.activated', dan, T(21));
    expect((await mc.members()).get(dan.id)!.status).toBe('active');
  });

  it('puts bounced, complaint and suppressed subscribers on the suppression list, never touching existing entries', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const [b, c, s, ok] = [person(6, 'bounced'), person(7, 'complaint'), person(8, 'suppressed'), person(9, 'active')];
    for (const p of [b, c, s, ok]) expect((await mc.event('preferences.updated', { ...p, email: p.email.toUpperCase() }, T(1))).status).toBe(200);
    expect(await suppression(mc.tenantId, b.email)).toMatchObject({ reason: 'bounced', source: 'member_center' });
    expect(await suppression(mc.tenantId, c.email)).toMatchObject({ reason: 'complaint' });
    expect(await suppression(mc.tenantId, s.email)).toMatchObject({ reason: 'suppressed' });
    expect(await suppression(mc.tenantId, ok.email)).toBeUndefined();
    expect((await mc.members()).get(b.id)!.status).toBe('bounced');
    // An engine suppression stays exactly as it was, whatever the Member Center says later.
    const engine = person(10);
    await database.db.query(`INSERT INTO suppressions (tenant_id, email, reason, source) VALUES ($1, $2, 'hard_bounce', 'ses')`, [mc.tenantId, engine.email]);
    await mc.event('subscription.activated', engine, T(2));
    await mc.event('preferences.updated', { ...engine, status: 'complaint' }, T(3));
    expect(await suppression(mc.tenantId, engine.email)).toMatchObject({ reason: 'hard_bounce', source: 'ses' });
  });

  it('answers a value PostgreSQL cannot store with 422, not 500', async () => {
    const mc = await memberCenter(database.db, api.baseUrl);
    const res = await mc.event('preferences.updated', person(11, 'active', { note: 'a\u0000b' }), T(1));
    expect(res.status).toBe(422);
    expect(res.json).toMatchObject({ error: 'invalid_text', message: expect.stringContaining('body.subscriber.preferences.note') });
    expect(res.json.request_id).toBeTruthy();
  });

  it('keeps tenants apart: GET /api/lists/{id} of another tenant is 404, scope is required', async () => {
    const a = await memberCenter(database.db, api.baseUrl);
    const b = await memberCenter(database.db, api.baseUrl);
    await a.event('subscription.activated', person(12), T(1));
    expect((await a.getList()).status).toBe(200);
    const foreign = await b.getList(a.listId);
    expect(foreign.status).toBe(404);
    expect(foreign.json.error).toBe('not_found');
    // The same Member Center list id used by another tenant is that tenant's own list.
    const { rows } = await database.db.query('SELECT count(*)::int AS n FROM list_members WHERE list_id = $1 AND tenant_id = $2', [a.listId, b.tenantId]);
    expect(rows[0].n).toBe(0);
    const { issueToken } = await import('../../src/auth/jwt.ts');
    const { TEST_JWT_SECRET } = await import('../helpers/app.ts');
    const noScope = await issueToken(TEST_JWT_SECRET, { tenantId: a.tenantId, scopes: ['send'], ttl: '1h' });
    expect((await a.getList(a.listId, noScope)).status).toBe(403);
    expect((await a.getList(a.listId, 'garbage')).status).toBe(401);
    const notUuid = await a.getList('not-a-uuid');
    expect(notUuid.status).toBe(422);
    expect(notUuid.json.error).toBe('validation_error');
  });
});
