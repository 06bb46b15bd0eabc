import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { membershipStatusOf } from '../../src/lists/events.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { memberCenter, type Member } from './helpers.ts';

/**
 * Any interleaving (with replays, sequential or racing) of a valid event stream and complete full syncs leaves the list
 * equal to a model: every membership field is the newest write (by occurred_at, ties: non-active
 * first), where the newest sync also writes "unsubscribed/sync_removed" for everyone it left out.
 */

let database: TestDatabase;
let api: TestApp;
let mc: Awaited<ReturnType<typeof memberCenter>>;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url);
  mc = await memberCenter(database.db, api.baseUrl);
});
afterAll(async () => {
  await api.close();
  await database.drop();
});

const STATUSES = ['active', 'active', 'unsubscribed', 'unsubscribed', 'bounced', 'complaint', 'suppressed'] as const;
const EVENT_TYPES = ['subscription.activated', 'subscription.unsubscribed', 'preferences.updated'] as const;
const rank = (s: string) => (s === 'active' ? 0 : s === 'unsubscribed' ? 1 : 2);

const payload = (who: number) =>
  fc.record({
    who: fc.constant(who),
    status: fc.constantFrom(...STATUSES),
    emailVariant: fc.integer({ min: 0, max: 2 }),
    prefs: fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }),
  });
const anyPayload = (people: number) => fc.integer({ min: 0, max: people - 1 }).chain(payload);

const scenario = fc.integer({ min: 2, max: 6 }).chain((people) =>
  fc.record({
    people: fc.constant(people),
    events: fc.array(fc.record({ type: fc.constantFrom(...EVENT_TYPES), p: anyPayload(people) }), { maxLength: 10 }),
    syncs: fc.array(
      fc.record({
        members: fc.subarray(Array.from({ length: people }, (_, i) => i)).chain((ids) => fc.tuple(...ids.map(payload))),
        batchTotal: fc.integer({ min: 1, max: 3 }),
      }),
      { maxLength: 3 },
    ),
    seed: fc.integer(),
    replays: fc.integer({ min: 0, max: 3 }),
    // Deliveries in flight at once: 1 is a strict interleaving, more races them.
    parallel: fc.integer({ min: 1, max: 3 }),
  }),
);

type Write = { t: number; status?: string; reason?: string; prefs?: number; email?: string };

describe('lists: model-based property', () => {
  it('any interleaving of events and sync batches leaves the list equal to the model', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        const listId = randomUUID();
        const ids = Array.from({ length: sc.people }, () => randomUUID());
        const email = (who: number, variant: number) => `p${who}.v${variant}.${ids[who].slice(0, 8)}@example.com`;
        const toMember = (p: { who: number; status: string; emailVariant: number; prefs?: number }): Member => ({
          id: ids[p.who],
          email: email(p.who, p.emailVariant),
          status: p.status,
          ...(p.prefs === undefined ? {} : { preferences: { v: p.prefs } }),
        });
        // Distinct occurred_at for every event and sync (ties are covered by example tests).
        const times = fc.sample(fc.uniqueArray(fc.integer({ min: 1, max: 10_000 }), { minLength: sc.events.length + sc.syncs.length, maxLength: sc.events.length + sc.syncs.length }), { seed: sc.seed, numRuns: 1 })[0];
        const at = (t: number) => new Date(Date.UTC(2025, 0, 1) + t * 1000);

        // Deliveries.
        type Delivery = { path: string; body: Record<string, unknown> };
        const deliveries: Delivery[] = [];
        const writes = new Map<number, Write[]>();
        const suppressed = new Set<string>();
        const write = (who: number, w: Write) => writes.set(who, [...(writes.get(who) ?? []), w]);

        sc.events.forEach((e, i) => {
          const t = times[i];
          const subscriber = toMember(e.p);
          deliveries.push({
            path: '/webhooks/subscriptions',
            body: { event_id: randomUUID(), event_type: e.type, tenant_id: mc.tenantId, list_id: listId, subscriber, occurred_at: at(t).toISOString() },
          });
          const status = membershipStatusOf({ event_type: e.type, subscriber: subscriber as any });
          write(e.p.who, { t, status, reason: e.type, prefs: e.p.prefs, email: subscriber.email });
          if (['bounced', 'complaint', 'suppressed'].includes(e.p.status)) suppressed.add(subscriber.email.toLowerCase());
        });
        const syncTimes = sc.syncs.map((_, i) => times[sc.events.length + i]);
        sc.syncs.forEach((s, i) => {
          const t = syncTimes[i];
          const syncId = randomUUID();
          const members = s.members.map(toMember);
          for (let b = 0; b < s.batchTotal; b++) {
            const slice = members.filter((_, k) => k % s.batchTotal === b);
            deliveries.push({
              path: '/webhooks/lists/full-sync',
              body: { sync_id: syncId, batch_no: b + 1, batch_total: s.batchTotal, tenant_id: mc.tenantId, list_id: listId, subscribers: slice, occurred_at: at(t).toISOString() },
            });
          }
          s.members.forEach((p, k) => {
            write(p.who, { t, status: p.status, reason: 'sync', prefs: p.prefs, email: members[k].email });
            if (['bounced', 'complaint', 'suppressed'].includes(p.status)) suppressed.add(members[k].email.toLowerCase());
          });
        });
        // The newest sync removes everyone it left out (older syncs' removals are always overtaken).
        if (sc.syncs.length) {
          const newest = syncTimes.indexOf(Math.max(...syncTimes));
          const included = new Set(sc.syncs[newest].members.map((p) => p.who));
          for (const who of [...writes.keys()]) {
            if (!included.has(who)) write(who, { t: syncTimes[newest], status: 'unsubscribed', reason: 'sync_removed' });
          }
        }

        // A random interleaving, with some deliveries replayed later.
        const rnd = fc.sample(fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: deliveries.length * 2 + 8, maxLength: deliveries.length * 2 + 8 }), { seed: sc.seed, numRuns: 1 })[0];
        const order = deliveries.map((d, i) => ({ d, key: rnd[i], first: true }));
        for (let r = 0; r < Math.min(sc.replays, deliveries.length); r++) {
          order.push({ d: deliveries[Math.floor(rnd[deliveries.length + r] * deliveries.length)], key: 2, first: false });
        }
        order.sort((a, b) => a.key - b.key);
        // Each delivery is accepted exactly once; its replays answer 409.
        const answers = new Map<Delivery, number[]>();
        for (let i = 0; i < order.length; i += sc.parallel) {
          const wave = order.slice(i, i + sc.parallel);
          const statuses = await Promise.all(wave.map(({ d }) => mc.post(d.path, d.body).then((r) => r.status)));
          wave.forEach(({ d }, k) => answers.set(d, [...(answers.get(d) ?? []), statuses[k]]));
        }
        for (const got of answers.values()) expect(got.sort()).toEqual([200, ...Array(got.length - 1).fill(409)]);

        // The model's expected state.
        const expected: Record<string, unknown> = {};
        for (const [who, ws] of writes) {
          const status = ws.filter((w) => w.status).reduce((a, b) => ((b.t > a.t || (b.t === a.t && rank(b.status!) > rank(a.status!))) ? b : a));
          const prefs = ws.filter((w) => w.prefs !== undefined).reduce<Write | undefined>((a, b) => (!a || b.t > a.t ? b : a), undefined);
          const mail = ws.filter((w) => w.email).reduce((a, b) => (b.t > a.t ? b : a));
          expected[ids[who]] = { status: status.status, reason: status.reason, preferences: prefs ? { v: prefs.prefs } : {}, email: mail.email };
        }
        const actual = Object.fromEntries(
          [...(await mc.members(listId))].map(([id, m]) => [id, { status: m.status, reason: m.reason, preferences: m.preferences, email: m.email }]),
        );
        expect(actual).toEqual(expected);
        const { rows } = await database.db.query(
          'SELECT email FROM suppressions WHERE tenant_id = $1 AND email = ANY($2)',
          [mc.tenantId, ids.flatMap((_, who) => [0, 1, 2].map((v) => email(who, v)))],
        );
        expect(new Set(rows.map((r) => r.email))).toEqual(suppressed);
        const events = await database.db.query('SELECT count(*)::int AS n FROM subscription_events WHERE tenant_id = $1 AND list_id = $2', [mc.tenantId, listId]);
        expect(events.rows[0].n).toBe(sc.events.length);
      }),
      { numRuns: 80 },
    );
  }, 120_000);
});
