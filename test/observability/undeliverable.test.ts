import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import type { Db } from '../../src/db/pool.ts';
import { applyEvents, type EventRules } from '../../src/events/ingest.ts';
import { normalizeSesMessage } from '../../src/events/normalize.ts';
import { newId } from '../../src/ids.ts';
import { createLogger } from '../../src/log.ts';
import { startUndeliverableApplier } from '../../src/observability/undeliverable.ts';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { until } from '../helpers/wait.ts';
import { postSigned, WEBHOOK_SECRET } from '../events/helpers.ts';

let database: TestDatabase;
let api: TestApp;
let rules: EventRules;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url, { RATE_LIMIT_LIVE_PER_MINUTE: '100000', SES_WEBHOOK_SECRET: WEBHOOK_SECRET });
  rules = api.config.events;
});
afterAll(async () => {
  await api.close();
  await database.drop();
});

const SENDER = 'notifications@acme.example';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** One sent message per recipient (a proxy job from SENDER), as the dispatcher leaves them. */
async function seed(db: Db, tenantId: string, recipients: string[]): Promise<string[]> {
  const jobId = newId();
  await db.query(
    `INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, idempotency_key)
     VALUES ($1, $2, 'transactional', $3, 'Hi', '<p>hi</p>', 'hi', $4)`,
    [jobId, tenantId, SENDER, jobId],
  );
  const ids = recipients.map(() => newId());
  await db.query(
    `INSERT INTO messages (id, tenant_id, proxy_job_id, recipient, status, provider_message_id, sent_at)
     SELECT id, $1, $2, r, 'sent', 'ses-' || id, now() FROM unnest($3::uuid[], $4::text[]) AS u(id, r)`,
    [tenantId, jobId, ids, recipients],
  );
  return ids;
}

type Detail = Record<string, unknown>;
/** An SES event-publishing record for our message (matched by the echoed header). */
const ses = (eventType: string, id: string, to: string, at: Date, detail: Detail = {}) => ({
  eventType,
  mail: { timestamp: at.toISOString(), messageId: `ses-${id}`, source: SENDER, destination: [to], headers: [{ name: 'X-Send-Engine-Message-Id', value: id }] },
  ...detail,
});
const bounce = (id: string, to: string, at: Date, bounceType: string, bounceSubType: string, diagnosticCode?: string) =>
  ses('Bounce', id, to, at, {
    bounce: { bounceType, bounceSubType, timestamp: at.toISOString(), feedbackId: newId(), bouncedRecipients: [{ emailAddress: to, diagnosticCode, action: 'failed', status: '5.1.1' }] },
  });
const complaint = (id: string, to: string, at: Date, complaintFeedbackType = 'abuse') =>
  ses('Complaint', id, to, at, { complaint: { complainedRecipients: [{ emailAddress: to }], timestamp: at.toISOString(), feedbackId: newId(), complaintFeedbackType } });
const reject = (id: string, to: string, at: Date) => ses('Reject', id, to, at, { reject: { reason: 'Bad content' } });

/** Through the real ingestion statement (so the message_events triggers run). */
async function ingest(...records: unknown[]) {
  const events = records.flatMap((r) => {
    const n = normalizeSesMessage(r);
    if (n.kind !== 'events') throw new Error('ignored');
    return n.events;
  });
  return (await applyEvents(database.db, events, rules)).outcomes;
}

async function list(token: string, query = '') {
  const res = await call(api.baseUrl, 'GET', `/v1/undeliverable${query}`, { token });
  expect(res.status, res.text).toBe(200);
  return res;
}
const byEmail = (data: any[]) => Object.fromEntries(data.map((r) => [r.email, r]));

/** Every page of a listing, following the Link header. */
async function allPages(token: string, path: string): Promise<any[]> {
  const rows: any[] = [];
  let next: string | null = path;
  while (next) {
    const res = await call(api.baseUrl, 'GET', next, { token });
    expect(res.status).toBe(200);
    rows.push(...res.json.data);
    const link = res.headers.get('link');
    next = link ? link.slice(1, link.indexOf('>')) : null;
    expect(Boolean(link)).toBe(res.json.pagination.has_more);
  }
  return rows;
}

describe('GET /v1/undeliverable classification', () => {
  it('lists permanent bounces, complaints and rejects, soft-bounce accumulation, and nothing else', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['undeliverable.view']);
    const t = new Date(Date.now() - 10 * DAY);
    const at = (h: number) => new Date(t.getTime() + h * HOUR);
    const to = ['perm@x.test', 'Compl@X.test', 'rej@x.test', 'onlist@x.test', 'never@x.test', 'soft@x.test', 'spread@x.test', 'undet@x.test'];
    const [perm, compl, rej, onlist, never, soft, spread, undet] = await seed(database.db, tenantId, to);
    const outcomes = await ingest(
      bounce(perm, to[0], at(1), 'Permanent', 'General', 'smtp; 550 5.1.1 user unknown'),
      complaint(compl, to[1], at(2)),
      reject(rej, to[2], at(3)),
      bounce(onlist, to[3], at(4), 'Permanent', 'OnAccountSuppressionList'),
      // Never qualifying: sends, deliveries, delays, opens, clicks, and two transient bounces (< 3).
      ses('Send', never, to[4], at(1)),
      ses('Delivery', never, to[4], at(1), { delivery: { timestamp: at(1).toISOString(), recipients: [to[4]], smtpResponse: '250 ok' } }),
      ses('DeliveryDelay', never, to[4], at(2), { deliveryDelay: { delayType: 'TransientCommunicationFailure', timestamp: at(2).toISOString(), delayedRecipients: [{ emailAddress: to[4], status: '4.4.1' }] } }),
      ses('Open', never, to[4], at(3), { open: { timestamp: at(3).toISOString(), userAgent: 'ua', ipAddress: '192.0.2.1' } }),
      ses('Click', never, to[4], at(4), { click: { timestamp: at(4).toISOString(), link: 'https://acme.example/', userAgent: 'ua', ipAddress: '192.0.2.1' } }),
      bounce(never, to[4], at(5), 'Transient', 'MailboxFull', 'smtp; 452 4.2.2 mailbox full'),
      bounce(never, to[4], at(6), 'Transient', 'General'),
      // SOFT_BOUNCE_LIMIT (3) within SOFT_BOUNCE_WINDOW_DAYS (7): the engine suppresses, and lists.
      bounce(soft, to[5], at(1), 'Transient', 'General', 'smtp; 421 4.7.0 try again later'),
      bounce(soft, to[5], at(30), 'Transient', 'MailboxFull'),
      bounce(soft, to[5], at(60), 'Transient', 'General', 'smtp; 421 4.7.0 try again later'),
      // Three, but never three within 7 days of each other.
      bounce(spread, to[6], at(0), 'Transient', 'General'),
      bounce(spread, to[6], at(24 * 4), 'Transient', 'General'),
      bounce(spread, to[6], at(24 * 8), 'Transient', 'General'),
      // Undetermined bounces count with the transient ones (the engine's one soft-bounce rule).
      bounce(undet, to[7], at(1), 'Undetermined', 'Undetermined'),
      bounce(undet, to[7], at(2), 'Undetermined', 'Undetermined'),
    );
    expect(outcomes.every((o) => o === 'applied')).toBe(true);
    // One more undetermined bounce, in a later statement, tips undet@ over the limit.
    await ingest(bounce(undet, to[7], at(3), 'Undetermined', 'Undetermined'));

    const res = await list(token, '?status=all');
    const rows = byEmail(res.json.data);
    expect(Object.keys(rows).sort()).toEqual(['compl@x.test', 'onlist@x.test', 'perm@x.test', 'rej@x.test', 'soft@x.test', 'undet@x.test']);
    expect(rows['perm@x.test']).toEqual({
      email: 'perm@x.test', status: 'listed', reason: 'permanent_bounce', subtype: 'General',
      first_seen_at: at(1).toISOString(), last_seen_at: at(1).toISOString(), last_changed_at: expect.any(String),
      event_count: 1, last_diagnostic: 'smtp; 550 5.1.1 user unknown', last_sender_identity: SENDER,
    });
    // Absent fields are omitted, as in the reference (no diagnostic on a complaint).
    expect(rows['compl@x.test']).toEqual({
      email: 'compl@x.test', status: 'listed', reason: 'complaint', subtype: 'abuse', first_seen_at: at(2).toISOString(),
      last_seen_at: at(2).toISOString(), last_changed_at: expect.any(String), event_count: 1, last_sender_identity: SENDER,
    });
    expect(rows['rej@x.test']).toMatchObject({ reason: 'rejected', last_diagnostic: 'Bad content', event_count: 1 });
    expect(rows['rej@x.test'].subtype).toBeUndefined();
    expect(rows['onlist@x.test']).toMatchObject({ reason: 'permanent_bounce', subtype: 'OnAccountSuppressionList' });
    expect(rows['soft@x.test']).toMatchObject({
      reason: 'soft_bounce_accumulation', subtype: 'General', event_count: 3, first_seen_at: at(1).toISOString(), last_seen_at: at(60).toISOString(), last_diagnostic: 'smtp; 421 4.7.0 try again later',
    });
    expect(rows['undet@x.test']).toMatchObject({ reason: 'soft_bounce_accumulation', subtype: 'Undetermined', event_count: 3 });
    // The same rule the ingestion suppresses by.
    const supp = await database.db.query(`SELECT email, reason FROM suppressions WHERE tenant_id = $1 AND reason = 'soft_bounce_limit' ORDER BY email`, [tenantId]);
    expect(supp.rows.map((r) => r.email)).toEqual(['soft@x.test', 'undet@x.test']);
    for (const row of res.json.data) {
      expect(row.excluded_at).toBeUndefined();
      expect(Date.parse(row.last_changed_at)).toBeGreaterThan(Date.now() - 60_000);
    }
    expect(res.headers.get('x-sendengine-rules-version')).toMatch(/^[0-9a-f]{16}$/);
  });

  it('keeps the highest-priority reason, counts every qualifying event once, and classifies contract events', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['undeliverable.view']);
    const t = Date.now() - 5 * DAY;
    const at = (h: number) => new Date(t + h * HOUR);
    const [a1, a2, a3, b1, b2, c1] = await seed(database.db, tenantId, ['a@p.test', 'a@p.test', 'a@p.test', 'b@p.test', 'b@p.test', 'c@p.test']);
    await ingest(complaint(a1, 'a@p.test', at(1), 'not-spam'));
    await ingest(bounce(a2, 'a@p.test', at(2), 'Permanent', 'NoEmail', 'smtp; 550 no such user'));
    const redelivered = complaint(a3, 'a@p.test', at(3));
    await ingest(redelivered);
    // An SNS redelivery of the same event is a duplicate and counts nothing.
    expect(await ingest(redelivered)).toEqual(['duplicate']);
    await ingest(reject(b1, 'b@p.test', at(1)), complaint(b2, 'b@p.test', at(2), 'fraud'));
    // A soft bounce below the limit changes nothing on a listed row.
    await ingest(bounce(c1, 'c@p.test', at(1), 'Permanent', 'Suppressed'), bounce(c1, 'c@p.test', at(2), 'Transient', 'General'));

    const contractHard = (await seed(database.db, tenantId, ['d@p.test']))[0];
    const res1 = await postSigned(api.baseUrl, { event_type: 'hard_bounced', message_id: contractHard, tenant_id: tenantId, email: 'd@p.test', occurred_at: at(4).toISOString() });
    expect(res1.json).toEqual({ status: 'processed' });
    const contractSoft = (await seed(database.db, tenantId, ['e@p.test']))[0];
    expect((await postSigned(api.baseUrl, { event_type: 'soft_bounced', message_id: contractSoft, tenant_id: tenantId, email: 'e@p.test', occurred_at: at(4).toISOString() })).status).toBe(200);

    const rows = byEmail((await list(token)).json.data);
    expect(rows['a@p.test']).toMatchObject({ reason: 'permanent_bounce', subtype: 'NoEmail', event_count: 3, first_seen_at: at(1).toISOString(), last_seen_at: at(3).toISOString(), last_diagnostic: 'smtp; 550 no such user' });
    expect(rows['b@p.test']).toMatchObject({ reason: 'complaint', subtype: 'fraud', event_count: 2, last_diagnostic: 'Bad content' });
    expect(rows['c@p.test']).toMatchObject({ reason: 'permanent_bounce', subtype: 'Suppressed', event_count: 1 });
    expect(rows['d@p.test']).toMatchObject({ reason: 'permanent_bounce', event_count: 1, last_sender_identity: SENDER });
    expect(rows['d@p.test'].subtype).toBeUndefined();
    expect(rows['e@p.test']).toBeUndefined();
  });
});

describe('since polling, tombstones and filters', () => {
  it('turns a removed suppression into a tombstone, re-lists on a newer event, and polls with since', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['undeliverable.view']);
    const manager = await createApiKey(database.db, tenantId, ['suppressions.manage'], { environment: 'live' });
    const old = new Date(Date.now() - 2 * DAY);
    const [x1, x2, x3, y1] = await seed(database.db, tenantId, ['x@q.test', 'x@q.test', 'x@q.test', 'y@q.test']);
    await ingest(bounce(x1, 'x@q.test', old, 'Permanent', 'General', 'smtp; 550 gone'), complaint(y1, 'y@q.test', old));

    const first = await list(token);
    expect(first.json.data.map((r: any) => r.email).sort()).toEqual(['x@q.test', 'y@q.test']);
    const anchor = first.json.data.reduce((m: string, r: any) => (r.last_changed_at > m ? r.last_changed_at : m), '');

    // The operator clears x@: suppression gone, audit row and tombstone in one transaction.
    const removed = await call(api.baseUrl, 'DELETE', '/v1/suppressions/X%40q.test?comment=confirmed%20valid%20mailbox', { token: manager.secret });
    expect(removed.status).toBe(200);
    const audit = await database.db.query(`SELECT action, actor, comment FROM suppression_audit WHERE tenant_id = $1`, [tenantId]);
    expect(audit.rows).toEqual([{ action: 'removed', actor: `api_key:${manager.key_id}`, comment: 'confirmed valid mailbox' }]);

    // Snapshot (no since): listed only. Sync (since): the tombstone too, without listed-only fields.
    expect((await list(token)).json.data.map((r: any) => r.email)).toEqual(['y@q.test']);
    const sync = await list(token, `?since=${encodeURIComponent(anchor)}`);
    const tomb = byEmail(sync.json.data)['x@q.test'];
    expect(tomb).toEqual({
      email: 'x@q.test', status: 'excluded', last_changed_at: expect.any(String), excluded_at: expect.any(String),
      excluded_by: `api_key:${manager.key_id}`, exclusion_reason: 'confirmed valid mailbox',
    });
    expect(tomb.last_changed_at > anchor).toBe(true);
    // Inclusive on the second: the anchor's own row may come back, nothing older than its second does.
    for (const r of sync.json.data) expect(Date.parse(r.last_changed_at)).toBeGreaterThanOrEqual(Math.floor(Date.parse(anchor) / 1000) * 1000);
    expect((await list(token, '?status=excluded')).json.data.map((r: any) => r.email)).toEqual(['x@q.test']);
    expect((await list(token, '?status=all')).json.data).toHaveLength(2);
    expect((await list(token, `?since=${encodeURIComponent(anchor)}&status=listed`)).json.data.every((r: any) => r.status === 'listed')).toBe(true);

    // Feedback about a bounce that happened before the exclusion leaves the tombstone alone.
    await ingest(bounce(x2, 'x@q.test', new Date(old.getTime() + HOUR), 'Permanent', 'General'));
    const still = byEmail((await list(token, '?status=all')).json.data)['x@q.test'];
    expect(still).toEqual(tomb);

    // A newer event re-lists it, with the new evidence's reason and a later last_changed_at.
    await new Promise((r) => setTimeout(r, 5));
    await ingest(complaint(x3, 'x@q.test', new Date()));
    const poll = await list(token, `?since=${encodeURIComponent(tomb.last_changed_at)}`);
    const relisted = byEmail(poll.json.data)['x@q.test'];
    expect(relisted).toMatchObject({ status: 'listed', reason: 'complaint', event_count: 3, last_diagnostic: 'smtp; 550 gone' });
    expect(relisted.excluded_at).toBeUndefined();
    expect(relisted.last_changed_at > tomb.last_changed_at).toBe(true);

    // A suppression removal for an address that never bounced leaves no row.
    expect((await call(api.baseUrl, 'POST', '/v1/suppressions', { token: manager.secret, body: { email: 'z@q.test' } })).status).toBe(201);
    expect((await call(api.baseUrl, 'DELETE', '/v1/suppressions/z%40q.test', { token: manager.secret })).status).toBe(200);
    expect(byEmail((await list(token, '?status=all')).json.data)['z@q.test']).toBeUndefined();

    expect((await list(token, '?since=2020-01-01T00:00:00Z')).json.data).toHaveLength(2);
    const since = await call(api.baseUrl, 'GET', '/v1/undeliverable?since=yesterday', { token });
    expect(since.status).toBe(422);
    expect(since.json).toMatchObject({ error: 'validation_error', message: expect.stringContaining('since') });
  });

  it('filters by status, reason, email substring and min_events; refuses unknown values with 422', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['undeliverable.view']);
    const manager = await createApiKey(database.db, tenantId, ['suppressions.manage'], { environment: 'live' });
    const t = Date.now() - DAY;
    const at = (m: number) => new Date(t + m * 60_000);
    const to = ['p_1@f.test', 'p_1@f.test', 'px1@f.test', 'cc@f.test', 'gone@f.test', 'gone@f.test'];
    const ids = await seed(database.db, tenantId, to);
    await ingest(
      bounce(ids[0], to[0], at(1), 'Permanent', 'General'),
      bounce(ids[1], to[1], at(2), 'Permanent', 'General'),
      bounce(ids[2], to[2], at(3), 'Permanent', 'General'),
      complaint(ids[3], to[3], at(4)),
      bounce(ids[4], to[4], at(5), 'Permanent', 'General'),
      complaint(ids[5], to[5], at(6)),
    );
    expect((await call(api.baseUrl, 'DELETE', '/v1/suppressions/gone%40f.test', { token: manager.secret })).status).toBe(200);

    const emails = async (q: string) => (await list(token, q)).json.data.map((r: any) => r.email).sort();
    expect(await emails('?reason=permanent_bounce')).toEqual(['p_1@f.test', 'px1@f.test']);
    expect(await emails('?reason=complaint')).toEqual(['cc@f.test']);
    // Tombstones pass the reason filter (it applies to listed rows only).
    expect(await emails('?reason=permanent_bounce&status=all')).toEqual(['gone@f.test', 'p_1@f.test', 'px1@f.test']);
    // All six reasons are valid; a disabled rule simply matches nothing.
    for (const r of ['rejected', 'repeated_transient', 'undetermined', 'soft_bounce_accumulation']) expect(await emails(`?reason=${r}`)).toEqual([]);
    // Case-insensitive substring; LIKE wildcards are literal.
    expect(await emails('?email=P_1')).toEqual(['p_1@f.test']);
    expect(await emails('?email=F.TEST&status=all')).toEqual(['cc@f.test', 'gone@f.test', 'p_1@f.test', 'px1@f.test']);
    // min_events > 1 keeps listed rows with enough events and drops tombstones (gone@ had 2).
    expect(await emails('?min_events=2&status=all')).toEqual(['p_1@f.test']);
    expect(await emails('?min_events=1&status=all')).toHaveLength(4);

    for (const q of ['?reason=hard_bounce', '?status=suppressed', '?min_events=0', '?limit=0', '?limit=201', '?since=2025-13-01T00:00:00Z']) {
      const res = await call(api.baseUrl, 'GET', `/v1/undeliverable${q}`, { token });
      expect(res.status, q).toBe(422);
      // The reason names the parameter that was refused.
      expect(res.json, q).toMatchObject({ error: 'validation_error', message: expect.stringContaining(q.slice(1, q.indexOf('='))), request_id: expect.any(String) });
    }
  });
});

describe('paging', () => {
  it('pages by (last_changed_at, email) without repeats or skips while rows keep arriving; a bad cursor restarts', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['undeliverable.view']);
    const at = new Date(Date.now() - HOUR);
    const initial = Array.from({ length: 23 }, (_, i) => `u${String(i).padStart(2, '0')}@page.test`);
    const ids = await seed(database.db, tenantId, initial);
    // Two statements: rows changed together share last_changed_at and are ordered by email.
    await ingest(...initial.slice(0, 12).map((to, i) => bounce(ids[i], to, at, 'Permanent', 'General')));
    await ingest(...initial.slice(12).map((to, i) => complaint(ids[12 + i], to, at)));

    const seen: any[] = [];
    let path: string | null = '/v1/undeliverable?limit=5';
    let round = 0;
    while (path) {
      const res = await call(api.baseUrl, 'GET', path, { token });
      expect(res.status).toBe(200);
      seen.push(...res.json.data);
      // Between pages: a brand-new address, and a new event for an address the client has not
      // reached yet; after the first page also one for an address it has already read.
      const seenNow = new Set(seen.map((r) => r.email));
      const ahead = initial.filter((e) => !seenNow.has(e)).pop();
      const targets = [`new${round}@page.test`, ...(ahead ? [ahead] : []), ...(round === 1 ? [initial[0]] : [])];
      const link = res.headers.get('link');
      if (link) {
        const tids = await seed(database.db, tenantId, targets);
        await ingest(...targets.map((to, i) => complaint(tids[i], to, new Date())));
        round++;
      }
      path = link ? link.slice(1, link.indexOf('>')) : null;
      expect(res.json.pagination.next_cursor === null).toBe(!link);
    }
    const emails = seen.map((r) => r.email);
    // Every address once (newcomers included): nothing skipped, nothing repeated, except the row
    // that changed after it was read, served again in its new state.
    const counts = new Map<string, number>();
    for (const e of emails) counts.set(e, (counts.get(e) ?? 0) + 1);
    expect(counts.get(initial[0])).toBe(2);
    counts.delete(initial[0]);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    for (const e of initial) expect(counts.has(e) || e === initial[0]).toBe(true);
    expect(emails.filter((e) => e.startsWith('new')).length).toBe(round);
    const again = seen.filter((r) => r.email === initial[0]);
    expect(again[1]).toMatchObject({ event_count: 2, reason: 'permanent_bounce' });
    expect(again[1].last_changed_at > again[0].last_changed_at).toBe(true);
    // Served in (last_changed_at, email) order.
    for (let i = 1; i < seen.length; i++) expect(Date.parse(seen[i].last_changed_at)).toBeGreaterThanOrEqual(Date.parse(seen[i - 1].last_changed_at));

    // Malformed and stale cursors fall back to page 1 silently.
    const page1 = await list(token, '?limit=3');
    for (const cursor of ['garbage', Buffer.from('{"v":1,"t":"not a time","e":"x"}').toString('base64url'), Buffer.from('{"v":9}').toString('base64url')]) {
      const res = await list(token, `?limit=3&cursor=${cursor}`);
      expect(res.json.data).toEqual(page1.json.data);
    }
    expect(page1.headers.get('link')).toContain('cursor=');
  });

  it('a poller anchored on the largest last_changed_at misses nothing written by concurrent batches', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['undeliverable.view']);
    const addresses = Array.from({ length: 40 }, (_, i) => `c${i}@conc.test`);
    const ids = await seed(database.db, tenantId, addresses);
    const seen = new Set<string>();
    let anchor = '2000-01-01T00:00:00Z';
    let writing = true;
    const poller = (async () => {
      while (writing) {
        const rows = await allPages(token, `/v1/undeliverable?limit=100&since=${encodeURIComponent(anchor)}`);
        for (const r of rows) {
          seen.add(r.email);
          if (r.last_changed_at > anchor) anchor = r.last_changed_at;
        }
      }
    })();
    await Promise.all(addresses.map((to, i) => ingest(bounce(ids[i], to, new Date(), 'Permanent', 'General'))));
    writing = false;
    await poller;
    for (const r of await allPages(token, `/v1/undeliverable?limit=100&since=${encodeURIComponent(anchor)}`)) seen.add(r.email);
    expect([...seen].sort()).toEqual([...addresses].sort());
  });
});

describe('folding feedback', () => {
  it('ingestion only queues feedback; the worker applier folds it without any read', async () => {
    const { tenantId } = await tenantWithToken(database.db, ['undeliverable.view']);
    const [id] = await seed(database.db, tenantId, ['queued@example.com']);
    await ingest(bounce(id, 'queued@example.com', new Date(), 'Permanent', 'General'));
    const state = async () =>
      (await database.db.query(`SELECT status, reason FROM undeliverable WHERE tenant_id = $1`, [tenantId])).rows;
    expect(await state()).toEqual([]);

    const applier = startUndeliverableApplier(database.db, createLogger('silent'), 20);
    try {
      expect(await until(async () => (await state()).length > 0 && (await state()), 5000, 'the applier to fold the bounce')).toEqual([
        { status: 'listed', reason: 'permanent_bounce' },
      ]);
    } finally {
      await applier.stop();
    }
    const { rows } = await database.db.query(`SELECT count(*)::int AS n FROM undeliverable_pending`);
    expect(rows[0].n).toBe(0);
  });
});

describe('scopes, tenancy and rules', () => {
  it('needs undeliverable.view and keeps tenants apart', async () => {
    const a = await tenantWithToken(database.db, ['undeliverable.view']);
    const b = await tenantWithToken(database.db, ['undeliverable.view']);
    const noScope = await tenantWithToken(database.db, ['suppressions.view', 'messages.view']);
    for (const path of ['/v1/undeliverable', '/v1/undeliverable/rules']) {
      const res = await call(api.baseUrl, 'GET', path, { token: noScope.token });
      expect(res.status).toBe(403);
      expect(res.json.detail).toContain('undeliverable.view');
      expect((await call(api.baseUrl, 'GET', path)).status).toBe(401);
    }
    const [ida] = await seed(database.db, a.tenantId, ['shared@t.test']);
    const [idb] = await seed(database.db, b.tenantId, ['shared@t.test']);
    await ingest(bounce(ida, 'shared@t.test', new Date(), 'Permanent', 'General'));
    expect((await list(b.token, '?status=all')).json.data).toEqual([]);
    await ingest(complaint(idb, 'shared@t.test', new Date()));
    expect((await list(a.token)).json.data).toEqual([expect.objectContaining({ email: 'shared@t.test', reason: 'permanent_bounce', event_count: 1 })]);
    expect((await list(b.token)).json.data).toEqual([expect.objectContaining({ email: 'shared@t.test', reason: 'complaint', event_count: 1 })]);
    // Another tenant's operator cannot clear a's row.
    const bManager = await createApiKey(database.db, b.tenantId, ['suppressions.manage'], { environment: 'live' });
    await call(api.baseUrl, 'DELETE', '/v1/suppressions/shared%40t.test', { token: bManager.secret });
    expect((await list(a.token)).json.data[0].status).toBe('listed');
  });

  it('reports the rules the engine applies, from its configuration', async () => {
    const { token } = await tenantWithToken(database.db, ['undeliverable.view']);
    const res = await call(api.baseUrl, 'GET', '/v1/undeliverable/rules', { token });
    expect(res.status).toBe(200);
    const locked = { enabled: true, locked: true, events: 0, window_days: 0 };
    const off = { enabled: false, locked: false, events: 0, window_days: 0 };
    expect(res.json).toEqual({
      profile: 'default',
      rules: {
        permanent_bounce: locked, complaint: locked, rejected: locked, repeated_transient: off, undetermined: off,
        soft_bounce_accumulation: { enabled: true, locked: false, events: 3, window_days: 7 },
      },
      version: expect.stringMatching(/^[0-9a-f]{16}$/),
      updated_at: expect.any(String),
      updated_by: 'configuration',
    });
    expect(res.headers.get('x-sendengine-rules-version')).toBe(res.json.version);
    expect((await list(token)).headers.get('x-sendengine-rules-version')).toBe(res.json.version);
  });

  it('follows SOFT_BOUNCE_LIMIT and SOFT_BOUNCE_WINDOW_DAYS, in the listing too', async () => {
    const other = await createTestDatabase();
    const custom = await startTestApp(other.db, other.url, { SOFT_BOUNCE_LIMIT: '2', SOFT_BOUNCE_WINDOW_DAYS: '2' });
    try {
      const { tenantId, token } = await tenantWithToken(other.db, ['undeliverable.view']);
      const res = await call(custom.baseUrl, 'GET', '/v1/undeliverable/rules', { token });
      expect(res.json.profile).toBe('custom');
      expect(res.json.rules.soft_bounce_accumulation).toEqual({ enabled: true, locked: false, events: 2, window_days: 2 });
      const defaults = await call(api.baseUrl, 'GET', '/v1/undeliverable/rules', { token: (await tenantWithToken(database.db, ['undeliverable.view'])).token });
      expect(res.json.version).not.toBe(defaults.json.version);

      const [m] = await seed(other.db, tenantId, ['two@s.test']);
      const [n] = await seed(other.db, tenantId, ['far@s.test']);
      const now = Date.now();
      const soft = (id: string, to: string, ms: number) => normalizeSesMessage(bounce(id, to, new Date(ms), 'Transient', 'General'));
      const events = [soft(m, 'two@s.test', now - HOUR), soft(m, 'two@s.test', now), soft(n, 'far@s.test', now - 3 * DAY), soft(n, 'far@s.test', now)]
        .flatMap((x) => (x.kind === 'events' ? x.events : []));
      await applyEvents(other.db, events, custom.config.events);
      const listed = await call(custom.baseUrl, 'GET', '/v1/undeliverable', { token });
      expect(listed.json.data).toEqual([expect.objectContaining({ email: 'two@s.test', reason: 'soft_bounce_accumulation', event_count: 2 })]);
    } finally {
      await custom.close();
      await other.drop();
    }
  });
});
