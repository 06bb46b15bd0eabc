import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCOPES } from '../../src/auth/scopes.ts';
import { issueToken } from '../../src/auth/jwt.ts';
import { membershipStatusOf } from '../../src/lists/events.ts';
import { call, startTestApp, TEST_JWT_SECRET, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { memberCenter, type Member } from './helpers.ts';

/**
 * Engine opt-outs against any interleaving (sequential or racing) of Member Center events and
 * full syncs stamped before and after them: whatever the order, an opt-out stands exactly when
 * no subscription.activated later than it was received, and a member whose opt-out stands is
 * never active.
 */

let database: TestDatabase;
let api: TestApp;
let mc: Awaited<ReturnType<typeof memberCenter>>;
let manager: string;

beforeAll(async () => {
  database = await createTestDatabase();
  // Every run opts members out through the API: more requests than the default per-minute limit.
  api = await startTestApp(database.db, database.url, { RATE_LIMIT_LIVE_PER_MINUTE: '100000' });
  mc = await memberCenter(database.db, api.baseUrl);
  manager = await issueToken(TEST_JWT_SECRET, { tenantId: mc.tenantId, scopes: [...DEFAULT_SCOPES, 'lists.manage'], ttl: '1h' });
});
afterAll(async () => {
  await api?.close();
  await database?.drop();
});

const STATUSES = ['active', 'active', 'active', 'unsubscribed', 'bounced'] as const;
const EVENT_TYPES = ['subscription.activated', 'subscription.activated', 'subscription.unsubscribed', 'preferences.updated'] as const;
// Whole seconds before (-) or after (+) the opt-outs, never equal.
const offset = fc.integer({ min: -20, max: 20 }).filter((n) => n !== 0);

const scenario = fc.integer({ min: 2, max: 4 }).chain((people) =>
  fc.record({
    people: fc.constant(people),
    optedOut: fc.subarray(Array.from({ length: people }, (_, i) => i), { minLength: 1 }),
    events: fc.array(
      fc.record({ who: fc.integer({ min: 0, max: people - 1 }), type: fc.constantFrom(...EVENT_TYPES), status: fc.constantFrom(...STATUSES), dt: offset }),
      { maxLength: 8 },
    ),
    syncs: fc.array(
      fc.record({
        members: fc.subarray(Array.from({ length: people }, (_, i) => i)).chain((ids) => fc.tuple(...ids.map((who) => fc.record({ who: fc.constant(who), status: fc.constantFrom(...STATUSES) })))),
        dt: offset,
      }),
      { maxLength: 3 },
    ),
    order: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 12, maxLength: 12 }),
    parallel: fc.integer({ min: 1, max: 3 }),
  }),
);

describe('opt-outs: order-independent property', () => {
  it('an opt-out stands iff no later subscription.activated arrived; standing means never active', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        const listId = randomUUID();
        const people: Member[] = Array.from({ length: sc.people }, (_, i) => ({ id: randomUUID(), email: `p${i}.${randomUUID().slice(0, 8)}@example.com`, status: 'active' }));
        const first = await mc.batch(randomUUID(), 1, 1, people, new Date(Date.now() - 3_600_000), { list_id: listId });
        expect(first.json.sync_state).toBe('completed');

        for (const who of sc.optedOut) {
          const res = await call(api.baseUrl, 'POST', `/api/lists/${listId}/members/${people[who].id}/unsubscribe`, { token: manager });
          expect(res.json).toMatchObject({ changed: true, opt_out_source: 'api' });
        }
        const { rows } = await database.db.query<{ min: Date; max: Date }>(
          'SELECT min(opted_out_at), max(opted_out_at) FROM list_members WHERE tenant_id = $1 AND list_id = $2',
          [mc.tenantId, listId],
        );
        // Offsets are whole seconds: each write is on the same side of every opt-out.
        expect(rows[0].max.getTime() - rows[0].min.getTime()).toBeLessThan(1_000);
        const base = rows[0].max.getTime();
        const at = (dt: number) => new Date(base + dt * 1000 + (dt > 0 ? 1 : -1) * 1_000);

        const deliveries: Array<() => Promise<number>> = [];
        const resubscribedAfter = new Set<number>();
        for (const e of sc.events) {
          const subscriber = { ...people[e.who], status: e.status };
          deliveries.push(() => mc.event(e.type, subscriber, at(e.dt), { list_id: listId }).then((r) => r.status));
          if (e.dt > 0 && e.type === 'subscription.activated' && membershipStatusOf({ event_type: e.type, subscriber: subscriber as any }) === 'active') {
            resubscribedAfter.add(e.who);
          }
        }
        for (const s of sc.syncs) {
          const members = s.members.map((m) => ({ ...people[m.who], status: m.status }));
          deliveries.push(() => mc.batch(randomUUID(), 1, 1, members, at(s.dt), { list_id: listId }).then((r) => r.status));
        }
        const shuffled = deliveries.map((d, i) => ({ d, key: sc.order[i % sc.order.length] + i * 1e-9 })).sort((a, b) => a.key - b.key);
        for (let i = 0; i < shuffled.length; i += sc.parallel) {
          const statuses = await Promise.all(shuffled.slice(i, i + sc.parallel).map(({ d }) => d()));
          expect(statuses.every((s) => s === 200)).toBe(true);
        }

        const state = await database.db.query<{ subscriber_id: string; status: string; opted_out_at: Date | null; opt_out_source: string | null }>(
          'SELECT subscriber_id, status, opted_out_at, opt_out_source FROM list_members WHERE tenant_id = $1 AND list_id = $2',
          [mc.tenantId, listId],
        );
        const byId = new Map(state.rows.map((r) => [r.subscriber_id, r]));
        for (const who of sc.optedOut) {
          const m = byId.get(people[who].id)!;
          const standing = !resubscribedAfter.has(who);
          expect({ who, standing: m.opted_out_at !== null }).toEqual({ who, standing });
          if (standing) {
            expect(m.status).not.toBe('active');
            expect(m.opt_out_source).toBe('api');
          }
        }
      }),
      { numRuns: 50 },
    );
  }, 180_000);
});
