import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';
import { clickBodyPrefix, clickBodySuffix, clickUrl, openPixelUrl, signBody, signJson, unsubscribeUrl, type TrackingSettings } from '../../src/tracking/links.ts';
import { createLinkRewriter } from '../../src/tracking/rewrite.ts';
import { startTestApp, tenantWithToken, type TestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let database: TestDatabase;
let api: TestApp;
let s: TrackingSettings;
let tenantA: string;
let tenantB: string;

const TRACKING_SECRET = 'tracking-secret-for-tests-0123456789abcdef';

beforeAll(async () => {
  database = await createTestDatabase();
  api = await startTestApp(database.db, database.url, { TRACKING_SECRET });
  // Links point at this test server; the secret is the one the app was configured with.
  s = { baseUrl: api.baseUrl, secret: api.config.tracking.secret };
  tenantA = (await tenantWithToken(database.db)).tenantId;
  tenantB = (await tenantWithToken(database.db)).tenantId;
});
afterAll(async () => {
  await api?.close();
  await database?.drop();
});

async function message(tenantId: string, status: string): Promise<string> {
  const id = newId();
  await database.db.query('INSERT INTO messages (id, tenant_id, recipient, status) VALUES ($1, $2, $3, $4)', [id, tenantId, `r-${id}@example.com`, status]);
  return id;
}

async function statusOf(id: string): Promise<string> {
  return (await database.db.query('SELECT status FROM messages WHERE id = $1', [id])).rows[0].status;
}

async function eventsOf(id: string) {
  return (await database.db.query('SELECT tenant_id, type, data, dedupe_key FROM message_events WHERE message_id = $1 ORDER BY recorded_at, id', [id])).rows;
}

const get = (url: string, headers: Record<string, string> = {}) => fetch(url, { redirect: 'manual', headers });

function tamper(url: string, where: 'payload' | 'signature'): string {
  const slash = url.lastIndexOf('/') + 1;
  const token = url.slice(slash);
  const i = where === 'payload' ? 5 : token.length - 3;
  const c = token[i] === 'A' ? 'B' : 'A';
  return url.slice(0, slash) + token.slice(0, i) + c + token.slice(i + 1);
}

async function expectInvalid(res: Response) {
  expect(res.status).toBe(400);
  expect(res.headers.get('location')).toBeNull();
  const body = await res.json();
  expect(body).toMatchObject({ error: 'invalid_token', request_id: res.headers.get('x-request-id'), status: 400 });
  expect(typeof body.message).toBe('string');
}

describe('GET /t/o/:token (open pixel)', () => {
  it('answers a 43-byte transparent GIF, uncached, and records every open under the message tenant', async () => {
    const id = await message(tenantA, 'delivered');
    const res = await get(openPixelUrl(s, id), { 'user-agent': 'MailClient/1.0' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/gif');
    expect(res.headers.get('cache-control')).toMatch(/no-store/);
    const gif = Buffer.from(await res.arrayBuffer());
    expect(gif.length).toBe(43);
    expect(gif.subarray(0, 6).toString('latin1')).toBe('GIF89a');
    expect(await statusOf(id)).toBe('opened');

    await get(openPixelUrl(s, id));
    const events = await eventsOf(id);
    expect(events).toHaveLength(2);
    expect(events.every((e) => e.type === 'open' && e.tenant_id === tenantA && e.dedupe_key === null)).toBe(true);
    expect(events[0].data.user_agent).toBe('MailClient/1.0');
    // The counters trigger counts them like provider opens.
    const counters = await database.db.query('SELECT sum(opened)::int AS opened FROM tenant_event_counters WHERE tenant_id = $1', [tenantA]);
    expect(counters.rows[0].opened).toBeGreaterThanOrEqual(2);
  });

  it('moves status forward only: sent -> opened; never from clicked, bounced or not yet sent', async () => {
    const cases: Array<[string, string]> = [['sent', 'opened'], ['opened', 'opened'], ['clicked', 'clicked'], ['bounced', 'bounced'], ['complained', 'complained'], ['queued', 'queued'], ['sending', 'sending']];
    for (const [from, to] of cases) {
      const id = await message(tenantB, from);
      expect((await get(openPixelUrl(s, id))).status).toBe(200);
      expect(await statusOf(id), `${from} + open`).toBe(to);
      expect(await eventsOf(id)).toHaveLength(1);
    }
  });

  it('refuses tampered tokens and other kinds of token with 400, recording nothing', async () => {
    const id = await message(tenantA, 'delivered');
    await expectInvalid(await get(tamper(openPixelUrl(s, id), 'payload')));
    await expectInvalid(await get(tamper(openPixelUrl(s, id), 'signature')));
    await expectInvalid(await get(s.baseUrl + '/t/o/' + clickUrl(s, id, 'https://x.example/').split('/t/c/')[1]));
    await expectInvalid(await get(s.baseUrl + '/t/o/' + unsubscribeUrl(s, { tenantId: tenantA, listId: newId(), subscriberId: newId(), messageId: id }).split('/u/')[1]));
    await expectInvalid(await get(`${s.baseUrl}/t/o/not-a-token`));
    const other = { ...s, secret: 'some-other-secret-that-is-long-enough!!' };
    await expectInvalid(await get(openPixelUrl(other, id)));
    expect(await eventsOf(id)).toHaveLength(0);
    expect(await statusOf(id)).toBe('delivered');
  });

  it('still answers the pixel for a validly signed token whose message is gone', async () => {
    const res = await get(openPixelUrl(s, newId()));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/gif');
  });
});

describe('GET /t/c/:token (click redirect)', () => {
  it('redirects (302) to the signed target and records the click with URL and user agent', async () => {
    const id = await message(tenantA, 'opened');
    const target = 'https://shop.example/landing/' + 'x'.repeat(300) + '?utm=news&a=%20b';
    const res = await get(clickUrl(s, id, target), { 'user-agent': 'Browser/2.0' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(target);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(await statusOf(id)).toBe('clicked');
    const [event] = await eventsOf(id);
    expect(event).toMatchObject({ type: 'click', tenant_id: tenantA, data: { url: target, user_agent: 'Browser/2.0' } });
    expect((await get(clickUrl(s, id, target))).status).toBe(302);
    expect(await eventsOf(id)).toHaveLength(2);
  });

  it('follows links the rewriter produced, and counts the pixel it added', async () => {
    const id = await message(tenantA, 'delivered');
    const html = createLinkRewriter(s, { click: true, open: true }).apply('<body><a href="https://news.example/a?x=1&amp;y=2">a</a></body>', id);
    const link = html.match(/href="([^"]+)"/)![1];
    const pixel = html.match(/<img src="([^"]+)"/)![1];
    expect((await get(pixel)).status).toBe(200);
    const res = await get(link);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://news.example/a?x=1&y=2');
    expect((await eventsOf(id)).map((e) => e.type)).toEqual(['open', 'click']);
    expect(await statusOf(id)).toBe('clicked');
  });

  it.each([
    ['a non-ASCII path', 'https://acme.example/日本', 'https://acme.example/%E6%97%A5%E6%9C%AC'],
    ['an href broken over two lines', 'https://acme.example/a\n/b?x=1', 'https://acme.example/a/b?x=1'],
    ['spaces and an accented query', ' https://acme.example/a b?q=café ', 'https://acme.example/a%20b?q=caf%C3%A9'],
    ['an international host', 'https://bücher.example/x#teil 2', 'https://xn--bcher-kva.example/x#teil%202'],
  ])('%s: the rewriter signs the WHATWG-normalised link and the redirect is that, percent-encoded', async (_name, href, expected) => {
    const id = await message(tenantA, 'delivered');
    const html = createLinkRewriter(s, { click: true, open: false }).apply(`<a href="${href}">x</a>`, id);
    const link = html.match(/href="([^"]+)"/)![1];
    expect(link.startsWith(`${s.baseUrl}/t/c/`)).toBe(true);
    const res = await get(link);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(expected);
    expect((await eventsOf(id))[0].data.url).toBe(expected);
  });

  it('redirects a link signed before normalisation (raw non-ASCII, a newline) to its percent-encoded form', async () => {
    const id = await message(tenantA, 'delivered');
    for (const [raw, expected] of [['https://acme.example/日本', 'https://acme.example/%E6%97%A5%E6%9C%AC'], ['https://acme.example/a\nb c', 'https://acme.example/ab%20c']]) {
      const token = signBody(s.secret, clickBodyPrefix(id) + clickBodySuffix(raw));
      const res = await get(`${s.baseUrl}/t/c/${token}`);
      expect(res.status, raw).toBe(302);
      expect(res.headers.get('location')).toBe(expected);
    }
  });

  it('moves delivered -> clicked but never a bounced message', async () => {
    const delivered = await message(tenantB, 'delivered');
    const bounced = await message(tenantB, 'bounced');
    await get(clickUrl(s, delivered, 'https://x.example/'));
    await get(clickUrl(s, bounced, 'https://x.example/'));
    expect(await statusOf(delivered)).toBe('clicked');
    expect(await statusOf(bounced)).toBe('bounced');
  });

  it('never redirects on a tampered token, another kind of token, or a signed non-http target', async () => {
    const id = await message(tenantA, 'delivered');
    const url = clickUrl(s, id, 'https://shop.example/ok');
    await expectInvalid(await get(tamper(url, 'payload')));
    await expectInvalid(await get(tamper(url, 'signature')));
    await expectInvalid(await get(s.baseUrl + '/t/c/' + openPixelUrl(s, id).split('/t/o/')[1]));
    await expectInvalid(await get(s.baseUrl + '/t/c/' + unsubscribeUrl(s, { tenantId: tenantA, listId: newId(), subscriberId: newId() }).split('/u/')[1]));
    const m = Buffer.from(id.replace(/-/g, ''), 'hex').toString('base64url');
    for (const target of ['javascript:alert(1)', '//evil.example/', 'data:text/html,<script>x</script>', 'ftp://files.example/']) {
      await expectInvalid(await get(`${s.baseUrl}/t/c/${signJson(s.secret, JSON.stringify({ t: 'c', m, u: target }))}`));
    }
    expect(await eventsOf(id)).toHaveLength(0);
  });
});

describe('unsubscribe (GET page, RFC 8058 one-click POST)', () => {
  async function member(tenantId: string, listId: string, subscriberId = newId(), status = 'active') {
    await database.db.query('INSERT INTO lists (tenant_id, id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [tenantId, listId]);
    await database.db.query(
      `INSERT INTO subscribers (tenant_id, id, email, status, updated_at) VALUES ($1, $2, $3, 'active', now() - interval '1 day')
       ON CONFLICT DO NOTHING`,
      [tenantId, subscriberId, `sub-${subscriberId}@example.com`],
    );
    await database.db.query(
      `INSERT INTO list_members (tenant_id, list_id, subscriber_id, status, reason, source_id, status_at)
       VALUES ($1, $2, $3, $4, 'subscription.activated', $5, now() - interval '1 day')`,
      [tenantId, listId, subscriberId, status, newId()],
    );
    return { tenantId, listId, subscriberId };
  }
  const membership = async (m: { tenantId: string; listId: string; subscriberId: string }) =>
    (await database.db.query('SELECT status, reason, source_id, status_at FROM list_members WHERE tenant_id = $1 AND list_id = $2 AND subscriber_id = $3', [m.tenantId, m.listId, m.subscriberId])).rows[0];
  const outbound = async (tenantId: string) =>
    (await database.db.query('SELECT tenant_id, type, payload, delivered_at FROM outbound_events WHERE tenant_id = $1 ORDER BY created_at', [tenantId])).rows;

  const oneClick = (url: string, init: { body?: BodyInit; headers?: Record<string, string> } = {}) =>
    fetch(url, { method: 'POST', redirect: 'manual', body: init.body ?? 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded', ...init.headers } });

  it('GET shows a confirmation page with a form posting back, and changes nothing', async () => {
    const m = await member(tenantA, newId());
    const url = unsubscribeUrl(s, m);
    const res = await get(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<form method="post" action="\?source=link">/);
    expect(html).toContain('name="List-Unsubscribe" value="One-Click"');
    expect((await membership(m)).status).toBe('active');

    const bad = await get(tamper(url, 'signature'));
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await bad.text()).toContain(bad.headers.get('x-request-id')!);
  });

  it('one-click POST unsubscribes at once with 200 (no redirect, no cookies), idempotently, with one outbound event', async () => {
    const tenant = (await tenantWithToken(database.db)).tenantId;
    const m = await member(tenant, newId());
    const bystander = await member(tenant, m.listId);
    const msgId = await message(tenant, 'delivered');
    const url = unsubscribeUrl(s, { ...m, messageId: msgId });

    const res = await oneClick(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('set-cookie')).toBeNull();
    const after = await membership(m);
    expect(after).toMatchObject({ status: 'unsubscribed', reason: 'one_click' });
    expect(Math.abs(after.status_at.getTime() - Date.now())).toBeLessThan(60_000);
    expect((await membership(bystander)).status).toBe('active');

    const events = await outbound(tenant);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'subscription.unsubscribed',
      delivered_at: null,
      payload: { list_id: m.listId, subscriber_id: m.subscriberId, email: `sub-${m.subscriberId}@example.com`, source: 'one_click', message_id: msgId },
    });
    expect(Date.parse(events[0].payload.occurred_at)).toBe(after.status_at.getTime());
    expect((await eventsOf(msgId)).map((e) => e.type)).toEqual(['unsubscribe']);

    // Repeats (a mail provider retrying, the user clicking again) answer 200 and change nothing.
    const sourceId = after.source_id;
    for (let i = 0; i < 3; i++) expect((await oneClick(url)).status).toBe(200);
    expect((await membership(m)).source_id).toBe(sourceId);
    expect(await outbound(tenant)).toHaveLength(1);
  });

  it('accepts an empty body, multipart and the HTML form post; answers the browser with a page', async () => {
    const tenant = (await tenantWithToken(database.db)).tenantId;
    const list = newId();
    const [a, b, c] = [await member(tenant, list), await member(tenant, list), await member(tenant, list)];

    const empty = await fetch(unsubscribeUrl(s, a), { method: 'POST' });
    expect(empty.status).toBe(200);
    const form = new FormData();
    form.set('List-Unsubscribe', 'One-Click');
    const multipart = await fetch(unsubscribeUrl(s, b), { method: 'POST', body: form });
    expect(multipart.status).toBe(200);
    const browser = await oneClick(unsubscribeUrl(s, c), { headers: { accept: 'text/html,application/xhtml+xml' } });
    expect(browser.status).toBe(200);
    expect(browser.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await browser.text()).toMatch(/unsubscribed/i);
    for (const m of [a, b, c]) expect((await membership(m)).status).toBe('unsubscribed');
    expect(await outbound(tenant)).toHaveLength(3);
  });

  it('only touches the signed tenant, list and subscriber; tampered POSTs change nothing', async () => {
    const list = newId();
    const subscriber = newId();
    const inA = await member(tenantA, list, subscriber);
    const inB = await member(tenantB, list, subscriber); // same ids under another tenant
    const otherList = await member(tenantA, newId(), subscriber);
    const url = unsubscribeUrl(s, inA);

    for (const bad of [tamper(url, 'payload'), tamper(url, 'signature'), `${s.baseUrl}/u/${openPixelUrl(s, newId()).split('/t/o/')[1]}`]) {
      const res = await oneClick(bad);
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body).toMatchObject({ error: 'invalid_token', request_id: res.headers.get('x-request-id') });
    }
    expect((await membership(inA)).status).toBe('active');

    expect((await oneClick(url)).status).toBe(200);
    expect((await membership(inA)).status).toBe('unsubscribed');
    expect((await membership(inB)).status).toBe('active');
    expect((await membership(otherList)).status).toBe('active');
  });

  it('never turns a bounced or complained member into unsubscribed; unknown members answer 200', async () => {
    const tenant = (await tenantWithToken(database.db)).tenantId;
    const bounced = await member(tenant, newId(), newId(), 'bounced');
    expect((await oneClick(unsubscribeUrl(s, bounced))).status).toBe(200);
    expect((await membership(bounced)).status).toBe('bounced');
    expect((await oneClick(unsubscribeUrl(s, { tenantId: tenant, listId: newId(), subscriberId: newId() }))).status).toBe(200);
    expect(await outbound(tenant)).toHaveLength(0);
  });
});

describe('public routes', () => {
  it('answer unknown paths under /t with the 404 error body', async () => {
    const res = await get(`${s.baseUrl}/t/x/abc`);
    expect(res.status).toBe(404);
    expect((await res.json()).request_id).toBe(res.headers.get('x-request-id'));
  });

  it('do not count a HEAD (link checkers) as a click or an open', async () => {
    const id = await message(tenantA, 'delivered');
    const click = await fetch(clickUrl(s, id, 'https://x.example/'), { method: 'HEAD', redirect: 'manual' });
    expect(click.status).toBe(302);
    expect((await fetch(openPixelUrl(s, id), { method: 'HEAD' })).status).toBe(200);
    expect(await eventsOf(id)).toHaveLength(0);
    expect(await statusOf(id)).toBe('delivered');
  });

  it('sign with the configured TRACKING_SECRET', () => {
    expect(api.config.tracking.secret).toBe(TRACKING_SECRET);
  });
});
