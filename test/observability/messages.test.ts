import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { newId } from '../../src/ids.ts';
import { ENQUEUE_WAKE, enqueueCtes } from '../../src/outbox/enqueue.ts';
import { call, startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let database: TestDatabase;
let api: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url, { RATE_LIMIT_LIVE_PER_MINUTE: '100000' });
});
afterAll(async () => {
  await api.close();
  await database.drop();
});

/** n messages of one proxy job, set-based; `at` is an SQL expression of g (1..n). */
async function insertMessages(tenantId: string, n: number, opts: { at?: string; recipient?: string; status?: string; from?: string } = {}) {
  const jobId = newId();
  await database.db.query(
    `INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, idempotency_key)
     VALUES ($1, $2, 'transactional', $3, 'Hello', '<p>x</p>', 'x', $4)`,
    [jobId, tenantId, opts.from ?? 'news@acme.test', jobId],
  );
  const { rows } = await database.db.query<{ id: string }>(
    `INSERT INTO messages (id, tenant_id, proxy_job_id, recipient, status, created_at, provider_message_id)
     SELECT uuid_v7(), $1, $2, coalesce($3, 'user' || g || '@example.com'), $4, ${opts.at ?? `now() - g * interval '1 second'`}, 'ses-' || gen_random_uuid()
       FROM generate_series(1, $5) g RETURNING id`,
    [tenantId, jobId, opts.recipient ?? null, opts.status ?? 'sent', n],
  );
  return rows.map((r) => r.id);
}

/** n messages enqueued as producers do (src/outbox/enqueue.ts), with `tags`; of one proxy job unless `job: false`. */
async function enqueueTagged(tenantId: string, n: number, tags: Record<string, unknown>, opts: { job?: boolean } = {}) {
  const jobId = newId();
  if (opts.job !== false) {
    await database.db.query(
      `INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, idempotency_key)
       VALUES ($1, $2, 'transactional', 'news@acme.test', 'Hello', '<p>x</p>', 'x', $3)`,
      [jobId, tenantId, jobId],
    );
  }
  const { rows } = await database.db.query<{ id: string }>(
    `WITH ${enqueueCtes(`
       SELECT uuid_v7() AS id, $1::uuid AS tenant_id, $2::uuid AS proxy_job_id, NULL::uuid AS send_job_id, NULL::uuid AS subscriber_id,
              'user' || g || '@example.com' AS recipient, $3::jsonb AS tags, '{}'::jsonb AS headers, now() AS next_attempt_at,
              NULL::timestamptz AS expires_at
         FROM generate_series(1, $4) g`)}
     SELECT id, ${ENQUEUE_WAKE} FROM enqueued`,
    [tenantId, opts.job === false ? null : jobId, JSON.stringify(tags), n],
  );
  return rows.map((r) => r.id);
}

async function allPages(token: string, first: string, between?: () => Promise<void>) {
  const seen: any[] = [];
  let next: string | null = first;
  let pages = 0;
  while (next) {
    const res = await call(api.baseUrl, 'GET', next, { token });
    expect(res.status).toBe(200);
    seen.push(...res.json.data);
    const link = res.headers.get('link');
    if (res.json.pagination.has_more) {
      expect(link).toMatch(/^<\/v1\/[^>]+>; rel="next"$/);
      expect(link).toContain(`cursor=${res.json.pagination.next_cursor}`);
      next = link!.slice(1, link!.indexOf('>'));
    } else {
      expect(link).toBeNull();
      expect(res.json.pagination.next_cursor).toBeNull();
      next = null;
    }
    pages++;
    if (between) await between();
  }
  return { seen, pages };
}

describe('GET /v1/messages', () => {
  it('pages newest first with an opaque cursor, never repeating or skipping rows while others are inserted', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['messages.view']);
    // Ties on created_at too: 20 rows share one timestamp, so the id must break them.
    const initial = [...(await insertMessages(tenantId, 40)), ...(await insertMessages(tenantId, 20, { at: `now() - interval '5 minutes'` }))];
    const { seen, pages } = await allPages(token, '/v1/messages?limit=7', async () => {
      await insertMessages(tenantId, 3, { at: 'now()' });
    });
    const ids = seen.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual([...initial].sort());
    expect(pages).toBe(Math.ceil(60 / 7));
    const times = seen.map((m) => m.created_at);
    expect([...times].sort().reverse()).toEqual(times);
  });

  it('filters by status, window and identity; validates them and the cursor', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['messages.view']);
    await insertMessages(tenantId, 3, { status: 'delivered' });
    await insertMessages(tenantId, 2, { status: 'bounced', from: 'alerts@other.test' });
    await insertMessages(tenantId, 4, { at: `now() - interval '40 days'` });
    const get = (q: string) => call(api.baseUrl, 'GET', `/v1/messages${q}`, { token });
    expect((await get('')).json.data).toHaveLength(5); // the 40-day-old ones are outside the default 30 days
    expect((await get('?status=delivered')).json.data).toHaveLength(3);
    expect((await get('?status=Bounce')).json.data).toHaveLength(2);
    expect((await get('?identity=someone@other.test')).json.data).toHaveLength(2);
    const old = await get(`?from=${new Date(Date.now() - 50 * 86400_000).toISOString()}&to=${new Date(Date.now() - 35 * 86400_000).toISOString()}`);
    expect(old.json.data).toHaveLength(4);
    for (const [bad, error, names] of [
      ['?status=nope', 'validation_failed', 'status'], ['?cursor=bm9wZQ', 'validation_failed', 'cursor'], ['?from=yesterday', 'validation_failed', 'from'],
      ['?limit=0', 'validation_error', 'limit'], ['?limit=201', 'validation_error', 'limit'],
    ]) {
      const res = await get(bad);
      expect(res.status, bad).toBe(422);
      expect(res.json, bad).toMatchObject({ error, message: expect.stringContaining(names), request_id: expect.any(String) });
    }
  });

  it('filters by tag (name:value), only within the tenant, through message_tags', async () => {
    const a = await tenantWithToken(database.db, ['messages.view']);
    const b = await tenantWithToken(database.db, ['messages.view']);
    const tagged = await enqueueTagged(a.tenantId, 3, { campaign_id: 'spring-sale', segment: 'vip' });
    // Same name, other value; the value under another name; a non-string value; no tags: none matches.
    await enqueueTagged(a.tenantId, 2, { campaign_id: 'autumn', segment: 'spring-sale' });
    await enqueueTagged(a.tenantId, 1, { campaign_id: ['spring-sale'], n: 7 });
    await insertMessages(a.tenantId, 2);
    const other = await enqueueTagged(b.tenantId, 2, { campaign_id: 'spring-sale' });
    // A message without a job names itself.
    const [lone] = await enqueueTagged(a.tenantId, 1, { campaign_id: 'spring-sale' }, { job: false });
    const get = (token: string, q: string) => call(api.baseUrl, 'GET', `/v1/messages${q}`, { token });
    const page = await get(a.token, `?tag=${encodeURIComponent('campaign_id:spring-sale')}`);
    expect(page.status).toBe(200);
    expect(page.json.data.map((m: { id: string }) => m.id).sort()).toEqual([...tagged, lone].sort());
    expect((await get(a.token, '?tag=segment:vip&limit=2')).json.pagination.has_more).toBe(true);
    expect((await get(a.token, '?tag=n:7')).json.data).toEqual([]);
    expect((await get(b.token, '?tag=campaign_id:spring-sale')).json.data.map((m: { id: string }) => m.id).sort()).toEqual([...other].sort());
    expect((await get(a.token, '?tag=campaign_id:')).json.data).toEqual([]);
    const bad = await get(a.token, '?tag=no-colon');
    expect(bad.status).toBe(422);
    expect(bad.json).toMatchObject({ error: 'validation_failed', message: expect.stringContaining('name:value'), request_id: expect.any(String) });
    // One row per job and tag, whatever the number of its messages.
    const { rows } = await database.db.query('SELECT count(*)::int AS n FROM message_tags WHERE tenant_id = $1', [a.tenantId]);
    expect(rows[0].n).toBe(2 + 2 + 1);
    // A tag of more sources than listMessages lists is tested per message: same answer.
    const bulk = new Set(await enqueueTagged(a.tenantId, 1001, { bulk: 'yes' }, { job: false }));
    await enqueueTagged(b.tenantId, 3, { bulk: 'yes' });
    const first = await get(a.token, '?tag=bulk:yes&limit=200');
    expect(first.json.data).toHaveLength(200);
    expect(first.json.data.every((m: { id: string }) => bulk.has(m.id))).toBe(true);
    const { seen } = await allPages(a.token, '/v1/messages?tag=bulk:yes&limit=200');
    expect(new Set(seen.map((m: { id: string }) => m.id))).toEqual(bulk);
  });

  it('masks recipients unless the credential has analytics.search.recipients; the recipient filter needs it', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['messages.view']);
    await insertMessages(tenantId, 1, { recipient: 'Alice.Smith@example.com' });
    const masked = await call(api.baseUrl, 'GET', '/v1/messages', { token });
    expect(masked.json.data[0].to).toBe('A***@example.com');
    expect(masked.text).not.toContain('Alice.Smith');
    const refused = await call(api.baseUrl, 'GET', '/v1/messages?recipient=Alice.Smith%40example.com', { token });
    expect(refused.status).toBe(403);
    expect(refused.json.error).toBe('invalid_scope');

    const key = await createApiKey(database.db, tenantId, ['messages.view', 'analytics.search.recipients'], { environment: 'live' });
    const open = await call(api.baseUrl, 'GET', '/v1/messages?recipient=Alice.Smith%40example.com', { token: key.secret });
    expect(open.json.data.map((m: any) => m.to)).toEqual(['Alice.Smith@example.com']);
    // Exact, case-sensitive match as the reference says.
    expect((await call(api.baseUrl, 'GET', '/v1/messages?recipient=alice.smith%40example.com', { token: key.secret })).json.data).toEqual([]);
  });
});

describe('one message, its events, one recipient', () => {
  it('finds a message by our id or the provider id, lists its timeline, and answers 404 to other tenants', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['messages.view']);
    const [id] = await insertMessages(tenantId, 1, { recipient: 'bob@example.com' });
    const { rows } = await database.db.query(`SELECT provider_message_id FROM messages WHERE id = $1`, [id]);
    const providerId = rows[0].provider_message_id;
    await database.db.query(
      `INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, data) VALUES
         (uuid_v7(), $1, $2, 'send', now() - interval '3 minutes', '{}'),
         (uuid_v7(), $1, $2, 'delivery', now() - interval '2 minutes', '{"smtp_response": "250 ok", "recipient": "bob@example.com"}'),
         (uuid_v7(), $1, $2, 'open', now() - interval '1 minute', '{"ip_address": "198.51.100.1", "user_agent": "UA"}')`,
      [tenantId, id],
    );
    const byId = await call(api.baseUrl, 'GET', `/v1/messages/${id}`, { token });
    expect(byId.status).toBe(200);
    expect(byId.json).toMatchObject({ id, provider_message_id: providerId, to: 'b***@example.com', status: 'sent', channel: 'transactional', subject: 'Hello' });
    expect(byId.json.last_event_at).toBeTruthy();
    expect((await call(api.baseUrl, 'GET', `/v1/messages/${providerId}`, { token })).json.id).toBe(id);

    const events = await call(api.baseUrl, 'GET', `/v1/messages/${providerId}/events`, { token });
    expect(events.json.data.map((e: any) => e.type)).toEqual(['Send', 'Delivery', 'Open']);
    expect(events.json.data[0].metadata).toBeUndefined();
    expect(events.json.data[1].metadata).toMatchObject({ smtp_response: '250 ok', recipient: 'b***@example.com' });
    expect(events.json.data[2].metadata).toMatchObject({ ip_address: '198.51.100.1', user_agent: 'UA' });

    const other = await tenantWithToken(database.db, ['messages.view', 'analytics.search.recipients']);
    for (const path of [`/v1/messages/${id}`, `/v1/messages/${providerId}`, `/v1/messages/${id}/events`]) {
      const res = await call(api.baseUrl, 'GET', path, { token: other.token });
      expect(res.status, path).toBe(404);
      expect(res.json.error).toBe('not_found');
    }
    expect((await call(api.baseUrl, 'GET', `/v1/recipients/bob%40example.com/messages`, { token: other.token })).json.data).toEqual([]);
  });

  it('GET /v1/recipients/{email}/messages needs analytics.search.recipients only and pages that address', async () => {
    const { tenantId, token } = await tenantWithToken(database.db, ['messages.view']);
    await insertMessages(tenantId, 5, { recipient: 'carol@example.com' });
    await insertMessages(tenantId, 3);
    expect((await call(api.baseUrl, 'GET', '/v1/recipients/carol%40example.com/messages', { token })).status).toBe(403);
    const key = await createApiKey(database.db, tenantId, ['analytics.search.recipients'], { environment: 'live' });
    const { seen } = await allPages(key.secret, '/v1/recipients/carol%40example.com/messages?limit=2');
    expect(seen).toHaveLength(5);
    expect(new Set(seen.map((m) => m.to))).toEqual(new Set(['carol@example.com']));
    expect((await call(api.baseUrl, 'GET', '/v1/recipients/nobody%40example.com/messages', { token: key.secret })).json.data).toEqual([]);
  });
});
