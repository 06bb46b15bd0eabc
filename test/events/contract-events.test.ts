import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';
import { submitProxySend } from '../../src/sending/submit.ts';
import { tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { fakeFetcher, hmac, messageRow, postSigned, seedMessages, startEventsApp, suppression, timeline } from './helpers.ts';

let database: TestDatabase;
let api: Awaited<ReturnType<typeof startEventsApp>>;
let tenantId: string;
let otherTenant: string;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startEventsApp(database.db, database.url, fakeFetcher({}).fetcher);
  tenantId = (await tenantWithToken(database.db)).tenantId;
  otherTenant = (await tenantWithToken(database.db)).tenantId;
});
afterAll(async () => {
  await api.close();
  await database.drop();
});

const event = (fields: Record<string, unknown>) => ({ tenant_id: tenantId, occurred_at: '2025-03-01T10:00:00Z', ...fields });
const count = async (sql: string, params: unknown[] = []) => (await database.db.query(sql, params)).rows[0].n as number;

describe('POST /webhooks/ses with the contract SesEvent (HMAC)', () => {
  it('rejects a missing, wrong or foreign-key signature with 401 and writes nothing', async () => {
    const { ids, recipients } = await seedMessages(database.db, tenantId, 1);
    const body = JSON.stringify(event({ event_type: 'complaint', message_id: ids[0], email: recipients[0] }));
    const before = await count('SELECT count(*)::int AS n FROM message_events');
    for (const sig of ['', 'zz', hmac(body, 'another-secret-0123456789'), hmac(body).replace(/^./, (c) => (c === 'a' ? 'b' : 'a'))]) {
      const res = await postSigned(api.baseUrl, body, sig);
      expect(res.status).toBe(401);
      expect(res.json).toMatchObject({ error: 'unauthorized', request_id: res.requestId });
    }
    // The signature is over the exact bytes: the same JSON re-serialised differently fails.
    const res = await postSigned(api.baseUrl, body.replace('{', '{ '), hmac(body));
    expect(res.status).toBe(401);
    expect(await count('SELECT count(*)::int AS n FROM message_events')).toBe(before);
    expect((await messageRow(database.db, ids[0])).status).toBe('sent');
  });

  it('answers malformed bodies with 422 after authentication', async () => {
    for (const [raw, error] of [['{not json', 'malformed_body'], ['[]', 'validation_error'], ['"x"', 'validation_error'],
      [JSON.stringify(event({ event_type: 'explode', message_id: 'x', email: 'a@b.c' })), 'validation_error'],
      [JSON.stringify(event({ event_type: 'delivery', message_id: 'x', email: 'not-an-email' })), 'validation_error'],
      [JSON.stringify(event({ event_type: 'delivery', message_id: 'x', email: 'a@b.c', occurred_at: 'yesterday' })), 'validation_error'],
      [JSON.stringify(event({ event_type: 'delivery', message_id: 'x', email: 'a@b.c', occurred_at: '1970-01-01T00:00:00Z' })), 'validation_error'],
      [JSON.stringify({ event_type: 'delivery', message_id: 'x', email: 'a@b.c', occurred_at: '2025-01-01T00:00:00Z' }), 'validation_error'],
      [JSON.stringify(event({ event_type: 'delivery', message_id: 'x\u0000', email: 'a@b.c' })), 'invalid_text']]) {
      const res = await postSigned(api.baseUrl, raw);
      expect(res.status, raw).toBe(422);
      expect(res.json.error, raw).toBe(error);
      expect(res.json.request_id).toBe(res.requestId);
    }
  });

  it('matches by our message id or the provider id; the timeline keeps each event', async () => {
    const { ids, recipients } = await seedMessages(database.db, tenantId, 2);
    let res = await postSigned(api.baseUrl, event({ event_type: 'delivery', message_id: ids[0], email: recipients[0] }));
    expect(res).toMatchObject({ status: 200, json: { status: 'processed' } });
    res = await postSigned(api.baseUrl, event({ event_type: 'delivery', message_id: `ses-${ids[1]}`, email: recipients[1] }));
    expect(res).toMatchObject({ status: 200, json: { status: 'processed' } });
    expect((await messageRow(database.db, ids[0])).status).toBe('delivered');
    expect((await messageRow(database.db, ids[1])).status).toBe('delivered');
    res = await postSigned(api.baseUrl, event({ event_type: 'open', message_id: ids[0], email: recipients[0], occurred_at: '2025-03-01T11:00:00Z' }));
    res = await postSigned(api.baseUrl, event({ event_type: 'click', message_id: ids[0], email: recipients[0], occurred_at: '2025-03-01T11:05:00Z' }));
    expect((await messageRow(database.db, ids[0])).status).toBe('clicked');
    expect((await timeline(database.db, ids[0])).map((e) => e.type)).toEqual(['delivery', 'open', 'click']);
  });

  it('answers 404 alike for an unknown message, an unknown tenant and another tenant\'s message', async () => {
    const { ids, recipients } = await seedMessages(database.db, tenantId, 1);
    const unknownMessage = await postSigned(api.baseUrl, event({ event_type: 'complaint', message_id: newId(), email: recipients[0] }));
    const unknownTenant = await postSigned(api.baseUrl, event({ event_type: 'complaint', message_id: ids[0], email: recipients[0], tenant_id: newId() }));
    const otherTenants = await postSigned(api.baseUrl, event({ event_type: 'complaint', message_id: ids[0], email: recipients[0], tenant_id: otherTenant }));
    for (const res of [unknownMessage, unknownTenant, otherTenants]) {
      expect(res.status).toBe(404);
      expect(res.json.error).toBe('not_found');
    }
    expect(unknownTenant.json.message).toBe(otherTenants.json.message);
    expect(await timeline(database.db, ids[0])).toEqual([]);
    expect((await messageRow(database.db, ids[0])).status).toBe('sent');
    expect(await suppression(database.db, otherTenant, recipients[0])).toBeUndefined();
    expect(await suppression(database.db, tenantId, recipients[0])).toBeUndefined();
  });

  it('keeps status moving forward only, whatever order events arrive in', async () => {
    const { ids, recipients } = await seedMessages(database.db, tenantId, 2);
    // Click before delivery: the late delivery does not pull it back.
    await postSigned(api.baseUrl, event({ event_type: 'click', message_id: ids[0], email: recipients[0], occurred_at: '2025-03-01T12:00:00Z' }));
    await postSigned(api.baseUrl, event({ event_type: 'delivery', message_id: ids[0], email: recipients[0] }));
    expect((await messageRow(database.db, ids[0])).status).toBe('clicked');
    // A complaint after opening is allowed; later opens and deliveries never undo it.
    await postSigned(api.baseUrl, event({ event_type: 'complaint', message_id: ids[0], email: recipients[0], occurred_at: '2025-03-01T13:00:00Z' }));
    await postSigned(api.baseUrl, event({ event_type: 'open', message_id: ids[0], email: recipients[0], occurred_at: '2025-03-01T14:00:00Z' }));
    expect((await messageRow(database.db, ids[0])).status).toBe('complained');
    expect((await timeline(database.db, ids[0])).map((e) => e.type)).toEqual(['delivery', 'click', 'complaint', 'open']);
    // A delivery after a bounce does not undo the bounce, nor does a later complaint replace it.
    await postSigned(api.baseUrl, event({ event_type: 'hard_bounced', message_id: ids[1], email: recipients[1] }));
    await postSigned(api.baseUrl, event({ event_type: 'delivery', message_id: ids[1], email: recipients[1], occurred_at: '2025-03-01T10:01:00Z' }));
    await postSigned(api.baseUrl, event({ event_type: 'complaint', message_id: ids[1], email: recipients[1], occurred_at: '2025-03-01T10:02:00Z' }));
    expect((await messageRow(database.db, ids[1])).status).toBe('bounced');
    expect((await suppression(database.db, tenantId, recipients[1])).reason).toBe('hard_bounce');
  });

  it('treats a repeated event as a duplicate: 200, no second timeline row or count', async () => {
    const { ids, recipients, jobId } = await seedMessages(database.db, tenantId, 1);
    const body = event({ event_type: 'soft_bounced', message_id: ids[0], email: recipients[0] });
    expect((await postSigned(api.baseUrl, body)).json.status).toBe('processed');
    // Same event again, and again under the provider's id: same natural key.
    expect(await postSigned(api.baseUrl, body)).toMatchObject({ status: 200, json: { status: 'duplicate' } });
    expect(await postSigned(api.baseUrl, { ...body, message_id: `ses-${ids[0]}` })).toMatchObject({ status: 200, json: { status: 'duplicate' } });
    expect(await timeline(database.db, ids[0])).toHaveLength(1);
    expect(await count('SELECT soft_bounced::int AS n FROM proxy_job_counters WHERE proxy_job_id = $1', [jobId])).toBe(1);
    expect(await count('SELECT count(*)::int AS n FROM soft_bounces WHERE tenant_id = $1 AND email = $2', [tenantId, recipients[0].toLowerCase()])).toBe(1);
  });

  it('suppresses at once on a hard bounce, a complaint and provider suppression, with reason and source event', async () => {
    const { ids, recipients } = await seedMessages(database.db, tenantId, 4);
    await postSigned(api.baseUrl, event({ event_type: 'bounce', bounce_type: 'hard', message_id: ids[0], email: recipients[0] }));
    await postSigned(api.baseUrl, event({ event_type: 'complaint', message_id: ids[1], email: recipients[1] }));
    await postSigned(api.baseUrl, event({ event_type: 'suppression', message_id: ids[2], email: recipients[2] }));
    await postSigned(api.baseUrl, event({ event_type: 'bounce', bounce_type: 'soft', message_id: ids[3], email: recipients[3] }));
    const reasons = await Promise.all(recipients.map((r) => suppression(database.db, tenantId, r)));
    expect(reasons.map((r) => r?.reason)).toEqual(['hard_bounce', 'complaint', 'provider_suppressed', undefined]);
    const { rows } = await database.db.query('SELECT id FROM message_events WHERE message_id = $1', [ids[0]]);
    expect(reasons[0]).toMatchObject({ source: 'ses', source_event_id: rows[0].id });
    expect((await messageRow(database.db, ids[2])).status).toBe('suppressed');
    expect((await messageRow(database.db, ids[3])).status).toBe('bounced');
    // The suppressed address is excluded from later sends of either kind; the soft-bounced one is not.
    const tags = { campaign_id: 'c', site_id: 's', list_id: 'l', segment: 'g' };
    for (const message_type of ['transactional', 'newsletter'] as const) {
      const { jobId } = await submitProxySend(database.db, tenantId, {
        message_type, from: 'news@example.com', to: [recipients[1].toUpperCase(), recipients[3]], subject: 'again', html: '<p>x</p>', text: 'x',
        tags, idempotency_key: newId(), list_unsubscribe: { url: 'https://example.com/u' },
      }, { idempotencyTtlHours: 1 });
      const { rows: sent } = await database.db.query('SELECT lower(recipient) AS r, status FROM messages WHERE proxy_job_id = $1 ORDER BY 1', [jobId]);
      expect(Object.fromEntries(sent.map((s) => [s.r, s.status]))).toEqual({ [recipients[1].toLowerCase()]: 'suppressed', [recipients[3].toLowerCase()]: 'queued' });
    }
  });

  it('suppresses a soft-bouncing address only at the third bounce within seven days', async () => {
    // Three messages to the same address across jobs.
    const address = `soft.${newId().slice(-8)}@example.net`;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { ids: [id] } = await seedMessages(database.db, tenantId, 1);
      await database.db.query('UPDATE messages SET recipient = $2 WHERE id = $1', [id, address]);
      ids.push(id);
    }
    // Day 1 and day 9: nine days apart, only one falls in any seven-day window with day 10.
    await postSigned(api.baseUrl, event({ event_type: 'soft_bounced', message_id: ids[0], email: address, occurred_at: '2025-03-01T10:00:00Z' }));
    await postSigned(api.baseUrl, event({ event_type: 'soft_bounced', message_id: ids[1], email: address, occurred_at: '2025-03-09T10:00:00Z' }));
    await postSigned(api.baseUrl, event({ event_type: 'bounce', message_id: ids[2], email: address, occurred_at: '2025-03-10T10:00:00Z' }));
    expect(await suppression(database.db, tenantId, address)).toBeUndefined();
    await postSigned(api.baseUrl, event({ event_type: 'soft_bounced', message_id: ids[3], email: address, occurred_at: '2025-03-12T10:00:00Z' }));
    const s = await suppression(database.db, tenantId, address);
    expect(s?.reason).toBe('soft_bounce_limit');
    const { rows } = await database.db.query('SELECT id FROM message_events WHERE message_id = $1', [ids[3]]);
    expect(s.source_event_id).toBe(rows[0].id);
  });

  it('counts events per tenant per day and per job without scanning the timeline', async () => {
    const { ids, recipients, jobId } = await seedMessages(database.db, otherTenant, 3);
    await postSigned(api.baseUrl, event({ tenant_id: otherTenant, event_type: 'delivery', message_id: ids[0], email: recipients[0] }));
    await postSigned(api.baseUrl, event({ tenant_id: otherTenant, event_type: 'delivery', message_id: ids[1], email: recipients[1] }));
    await postSigned(api.baseUrl, event({ tenant_id: otherTenant, event_type: 'hard_bounced', message_id: ids[2], email: recipients[2] }));
    await postSigned(api.baseUrl, event({ tenant_id: otherTenant, event_type: 'open', message_id: ids[0], email: recipients[0], occurred_at: '2025-03-01T12:00:00Z' }));
    const { rows } = await database.db.query('SELECT delivered, hard_bounced, opened FROM proxy_job_counters WHERE proxy_job_id = $1', [jobId]);
    expect(rows[0]).toEqual({ delivered: 2, hard_bounced: 1, opened: 1 });
    const { rows: day } = await database.db.query(
      `SELECT delivered, hard_bounced FROM tenant_event_counters WHERE tenant_id = $1 AND day = (now() AT TIME ZONE 'UTC')::date`, [otherTenant]);
    expect(day[0]).toEqual({ delivered: 2, hard_bounced: 1 });
  });

  it('applies concurrent events for one message once each, with the highest status winning', async () => {
    const { ids, recipients } = await seedMessages(database.db, tenantId, 1);
    const types = ['delivery', 'open', 'click', 'delivery', 'open', 'click'];
    const results = await Promise.all(types.map((t, i) => postSigned(api.baseUrl, event({ event_type: t, message_id: ids[0], email: recipients[0], occurred_at: `2025-03-01T10:0${i % 3}:00Z` }))));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results.filter((r) => r.json.status === 'processed')).toHaveLength(3);
    expect((await messageRow(database.db, ids[0])).status).toBe('clicked');
    expect(await timeline(database.db, ids[0])).toHaveLength(3);
  });
});
