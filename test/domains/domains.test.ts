import { authenticate } from 'mailauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDueDomains } from '../../src/domains/domains.ts';
import { dnsChecker } from '../../src/domains/dns-check.ts';
import { call, tenantWithToken } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { seedList } from '../jobs/helpers.ts';
import { startDnsServer, type TestDnsServer } from './dns-server.ts';

const DOMAIN = 'news.example.test';

let database: TestDatabase;
let dns: TestDnsServer;
let sink: SmtpSink;
let engine: TestEngine;
let tenant: { tenantId: string; token: string };
let other: { tenantId: string; token: string };

interface DnsRecord {
  type: 'TXT' | 'MX' | 'CNAME';
  name: string;
  value: string;
  priority?: number;
  purpose: string;
  required: boolean;
  status: string;
  detail: string | null;
}

beforeAll(async () => {
  database = await createTestDatabase();
  dns = await startDnsServer();
  sink = await startSmtpSink();
  engine = await startTestEngine(database.db, database.url, {
    smtpUrl: sink.url,
    env: {
      // Mail leaves through SMTP, so the verified-domain rule applies (REQUIRE_VERIFIED_DOMAIN's default).
      SEND_ENGINE_TRANSPORT: sink.url,
      DNS_SERVERS: dns.address,
      RETURN_PATH_MX: 'mx.send-engine.test',
      SPF_IP4: '127.0.0.1',
      TRACKING_CNAME_TARGET: 'links.send-engine.test',
    },
  });
  tenant = await tenantWithToken(database.db);
  other = await tenantWithToken(database.db);
});
afterAll(async () => {
  await engine?.close();
  await sink?.close();
  await dns?.close();
  await database?.drop();
});

const api = (method: string, path: string, body?: unknown, who = tenant) => call(engine.baseUrl, method, path, { token: who.token, body });

function publish(records: DnsRecord[]) {
  for (const r of records) {
    if (r.type === 'MX') dns.add(r.name, { type: 'MX', value: r.value, priority: r.priority ?? 10 });
    else dns.add(r.name, { type: r.type, value: r.value });
  }
}

const sendFrom = (from: string, key: string) =>
  api('POST', '/v1/send-jobs', {
    message_type: 'newsletter',
    from,
    to: ['reader@inbox.example'],
    subject: 'Hello',
    html: '<p>Hello</p>',
    text: 'Hello',
    list_unsubscribe: { url: 'https://news.example.test/unsubscribe?u=1' },
    tags: { campaign_id: 'c1', site_id: 's1', list_id: 'l1', segment: 'all' },
    idempotency_key: key,
  });

/** What a receiving MTA would conclude: DKIM, SPF (envelope sender from 127.0.0.1) and DMARC, all looked up in our DNS server. */
const authenticateMessage = (raw: Buffer, envelopeFrom: string) =>
  authenticate(raw, { resolver: (name, rr) => dns.resolver.resolve(name, rr), ip: '127.0.0.1', helo: 'localhost', sender: envelopeFrom, mta: 'mx.inbox.example' });

describe('sending domains', () => {
  let domainId: string;
  let records: DnsRecord[];

  it('adds a domain and answers the records to publish, with our selector and key', async () => {
    const res = await api('POST', '/v1/domains', { name: 'News.Example.TEST.' });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ name: DOMAIN, status: 'not_started', return_path: `bounces.${DOMAIN}`, tracking_host: `track.${DOMAIN}` });
    domainId = res.json.id;
    records = res.json.dns_records;
    const selector = res.json.dkim_selector as string;
    expect(selector).toMatch(/^se\d{6}[0-9a-f]{6}$/);
    expect(records.map((r) => [r.purpose, r.type, r.name])).toEqual([
      ['dkim', 'TXT', `${selector}._domainkey.${DOMAIN}`],
      ['return_path', 'MX', `bounces.${DOMAIN}`],
      ['spf', 'TXT', `bounces.${DOMAIN}`],
      ['dmarc', 'TXT', `_dmarc.${DOMAIN}`],
      ['tracking', 'CNAME', `track.${DOMAIN}`],
    ]);
    expect(records[0].value).toMatch(/^v=DKIM1; k=rsa; p=MIIBIjAN[A-Za-z0-9+/=]+$/);
    expect(records[1]).toMatchObject({ value: 'mx.send-engine.test', priority: 10 });
    expect(records[2].value).toBe('v=spf1 ip4:127.0.0.1 ~all');
    expect(records.every((r) => r.status === 'not_started')).toBe(true);

    // The private key is stored encrypted, never as PEM.
    const { rows } = await database.db.query('SELECT private_key_enc FROM domain_dkim_keys k JOIN sending_domains d ON d.id = k.domain_id WHERE d.id = $1', [domainId]);
    expect(rows[0].private_key_enc).toMatch(/^v1\./);
    expect(rows[0].private_key_enc).not.toContain('PRIVATE KEY');
  });

  it('refuses mail from the domain until it is verified, saying what to do', async () => {
    const res = await sendFrom(`hello@${DOMAIN}`, 'before-verify');
    expect(res.status).toBe(422);
    expect(res.json.error).toBe('domain_not_verified');
    expect(res.json.message).toContain(DOMAIN);
    expect(res.json.message).toContain(`/v1/domains/${domainId}/verify`);
    const unknown = await sendFrom('hello@elsewhere.example', 'unknown-domain');
    expect(unknown.status).toBe(422);
    expect(unknown.json.error).toBe('domain_not_verified');
    expect(unknown.json.message).toContain('POST /v1/domains');
    const { rows } = await database.db.query('SELECT count(*)::int AS n FROM messages WHERE tenant_id = $1', [tenant.tenantId]);
    expect(rows[0].n).toBe(0);
  });

  it('stays pending while nothing is published, naming the first missing record', async () => {
    const res = await api('PUT', `/v1/domains/${domainId}/verify`);
    expect(res.status).toBe(200);
    expect(res.json.status).toBe('pending');
    expect(res.json.status_reason).toContain(`_domainkey.${DOMAIN}`);
    expect(res.json.dns_records.every((r: DnsRecord) => r.status === 'pending')).toBe(true);
  });

  it('a DNS server failure is a temporary failure, not a verdict', async () => {
    dns.failing = true;
    try {
      const res = await api('PUT', `/v1/domains/${domainId}/verify`);
      expect(res.json.status).toBe('temporary_failure');
      expect(res.json.status_reason).toContain('ESERVFAIL');
    } finally {
      dns.failing = false;
    }
  });

  it('verifies once every record is published, and lists each as verified', async () => {
    publish(records);
    const res = await api('PUT', `/v1/domains/${domainId}/verify`);
    expect(res.json.status).toBe('verified');
    expect(res.json.status_reason).toBeNull();
    expect(res.json.verified_at).not.toBeNull();
    expect(res.json.dns_records.map((r: DnsRecord) => r.status)).toEqual(['verified', 'verified', 'verified', 'verified', 'verified']);
    const listed = await api('GET', '/v1/domains');
    expect(listed.json.data.map((d: { id: string; status: string }) => [d.id, d.status])).toEqual([[domainId, 'verified']]);
  });

  it('signs mail from the domain with its key and bounces it to the return path: DKIM, SPF and DMARC pass', async () => {
    const res = await sendFrom(`hello@${DOMAIN}`, 'after-verify');
    expect(res.status).toBe(200);
    const [message] = await sink.waitFor(1);
    expect(message.envelopeFrom).toBe(`bounce@bounces.${DOMAIN}`);
    const selector = records[0].name.split('.')[0];
    const auth = await authenticateMessage(message.raw, message.envelopeFrom);
    expect(auth.dkim.results).toHaveLength(1);
    expect(auth.dkim.results[0]).toMatchObject({ signingDomain: DOMAIN, selector, status: { result: 'pass' } });
    expect(auth.spf.status.result).toBe('pass');
    expect(auth.dmarc.status.result).toBe('pass');
    // RFC 8058: the one-click header is covered by the signature.
    expect(message.raw.toString()).toMatch(/DKIM-Signature:[^]*?\bh=[^;]*List-Unsubscribe-Post/i);
  });

  it('covers subdomains of a verified domain', async () => {
    const res = await sendFrom(`hello@mail.${DOMAIN}`, 'subdomain');
    expect(res.status).toBe(200);
    const messages = await sink.waitFor(2);
    const auth = await authenticateMessage(messages[1].raw, messages[1].envelopeFrom);
    // Relaxed alignment: d=news.example.test covers From: mail.news.example.test.
    expect(auth.dkim.results[0]).toMatchObject({ signingDomain: DOMAIN, status: { result: 'pass', aligned: DOMAIN } });
  });

  it('is invisible to other tenants, and cannot be added by them while verified here', async () => {
    for (const [method, path] of [['GET', `/v1/domains/${domainId}`], ['PUT', `/v1/domains/${domainId}/verify`], ['POST', `/v1/domains/${domainId}/rotate-dkim`], ['DELETE', `/v1/domains/${domainId}`], ['GET', `/v1/identities/${DOMAIN}`]]) {
      const res = await api(method, path, undefined, other);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.json.error).toBe('not_found');
    }
    expect((await api('GET', '/v1/domains', undefined, other)).json.data).toEqual([]);
    const taken = await api('POST', '/v1/domains', { name: DOMAIN }, other);
    expect(taken.status).toBe(409);
    expect(taken.json.error).toBe('domain_taken');
    const again = await api('POST', '/v1/domains', { name: DOMAIN });
    expect(again.status).toBe(409);
    expect(again.json.error).toBe('domain_exists');
  });

  it('shows the domain in the SendOps identity and tracking-domain views', async () => {
    const identities = await api('GET', '/v1/identities');
    expect(identities.status).toBe(200);
    expect(identities.json.data).toEqual([
      expect.objectContaining({ identity: DOMAIN, type: 'domain', verification_status: 'verified', dkim_status: 'verified', mail_from_domain: `bounces.${DOMAIN}` }),
    ]);
    const one = await api('GET', `/v1/identities/${encodeURIComponent('NEWS.example.test')}`);
    expect(one.json).toMatchObject({ identity: DOMAIN, verification_status: 'verified' });
    const tracking = await api('GET', `/v1/tracking-domains/TRACK.${DOMAIN}`);
    expect(tracking.status).toBe(200);
    expect(tracking.json).toMatchObject({ domain: `track.${DOMAIN}`, status: 'verified', ssl_status: null });
    expect(tracking.json.dns_records[0]).toEqual({ type: 'CNAME', name: `track.${DOMAIN}`, value: 'links.send-engine.test' });
    expect((await api('GET', '/v1/tracking-domains')).json.data).toHaveLength(1);
    expect((await api('GET', '/v1/tracking-domains/track.nowhere.example')).status).toBe(404);
  });

  it('sets a default sender on a verified domain, used by list send jobs without from', async () => {
    const refused = await api('PATCH', '/v1/account', { default_from: 'hello@elsewhere.example' });
    expect(refused.status).toBe(422);
    expect(refused.json.error).toBe('domain_not_verified');
    const set = await api('PATCH', '/v1/account', { default_from: `editor@${DOMAIN}` });
    expect(set.status).toBe(200);
    expect((await api('GET', '/v1/account')).json.default_from).toBe(`editor@${DOMAIN}`);
    const { listId } = await seedList(database.db, tenant.tenantId, { members: [{ email: 'member@inbox.example' }] });
    const job = await api('POST', '/api/send-jobs', {
      list_id: listId, subject: 'Issue 1', body_html: '<p>Read <a href="https://shop.example/a">this</a></p>', tracking: { open: true, click: true },
    });
    expect(job.status, job.text).toBe(200);
    const { rows } = await database.db.query('SELECT from_address FROM send_jobs WHERE id = $1', [job.json.send_job_id]);
    expect(rows[0].from_address).toBe(`editor@${DOMAIN}`);
    const messages = await sink.waitFor(3);
    const auth = await authenticateMessage(messages[2].raw, messages[2].envelopeFrom);
    expect(auth.dkim.results[0]).toMatchObject({ signingDomain: DOMAIN, status: { result: 'pass' } });
    // Its verified tracking CNAME carries the open, click and unsubscribe links.
    const html = String(messages[2].parsed.html);
    expect(html).toContain(`http://track.${DOMAIN}/t/c/`);
    expect(html).toContain(`http://track.${DOMAIN}/t/o/`);
    expect(html).not.toContain('127.0.0.1');
    expect(messages[2].raw.toString()).toMatch(new RegExp(`List-Unsubscribe:\\s*<http://track\\.news\\.example\\.test/u/`));
  });

  it('rotates the key: the new selector is published, verified, then signs; the old one is dropped', async () => {
    const oldSelector = records[0].name.split('.')[0];
    const rotated = await api('POST', `/v1/domains/${domainId}/rotate-dkim`);
    expect(rotated.status).toBe(200);
    const dkim = rotated.json.dns_records.filter((r: DnsRecord) => r.purpose === 'dkim');
    expect(dkim.map((r: DnsRecord) => [r.required, r.status])).toEqual([[true, 'verified'], [false, 'not_started']]);
    expect(rotated.json.dkim_selector).toBe(oldSelector);
    const twice = await api('POST', `/v1/domains/${domainId}/rotate-dkim`);
    expect(twice.status).toBe(409);
    expect(twice.json.error).toBe('rotation_in_progress');

    publish([dkim[1]]);
    const verified = await api('PUT', `/v1/domains/${domainId}/verify`);
    const newSelector = dkim[1].name.split('.')[0];
    expect(verified.json.status).toBe('verified');
    expect(verified.json.dkim_selector).toBe(newSelector);
    expect(verified.json.dns_records.filter((r: DnsRecord) => r.purpose === 'dkim').map((r: DnsRecord) => r.name)).toEqual([dkim[1].name]);
    records = verified.json.dns_records;

    // The signer caches keys for up to 30 s; a fresh engine process would see the new one at once.
    const res = await sendFrom(`hello@${DOMAIN}`, 'after-rotation');
    expect(res.status).toBe(200);
  });

  it('a removed record demotes the domain, naming the record, and the next send is refused', async () => {
    const dkimName = records.find((r) => r.purpose === 'dkim')!.name;
    dns.remove(dkimName, 'TXT');
    const res = await api('PUT', `/v1/domains/${domainId}/verify`);
    expect(res.json.status).toBe('failed');
    expect(res.json.status_reason).toContain(dkimName);
    expect(res.json.verified_at).toBeNull();
    const refused = await sendFrom(`hello@${DOMAIN}`, 'after-demotion');
    expect(refused.status).toBe(422);
    expect(refused.json.error).toBe('domain_not_verified');
    expect(refused.json.message).toContain(dkimName);
    const bulk = await api('POST', '/api/send-jobs', { list_id: '00000000-0000-4000-8000-000000000000', subject: 'Issue 2', body_text: 'Hi' });
    expect(bulk.status).toBe(422);
    expect(bulk.json.error).toBe('domain_not_verified');
  });

  it('the scheduled check re-verifies due domains from DNS', async () => {
    publish(records.filter((r) => r.purpose === 'dkim'));
    await database.db.query('UPDATE sending_domains SET next_check_at = now() WHERE id = $1', [domainId]);
    const checked = await checkDueDomains(database.db, { settings: engine.config.domains, secretsKey: engine.config.secretsKey }, dnsChecker([dns.address]));
    expect(checked).toBe(1);
    const after = await api('GET', `/v1/domains/${domainId}`);
    expect(after.json.status).toBe('verified');
    // Verified domains are looked at again a day later.
    expect(new Date(after.json.next_check_at).getTime() - Date.now()).toBeGreaterThan(23 * 3_600_000);
  });

  it('removes a domain: mail from it is refused again', async () => {
    const res = await api('DELETE', `/v1/domains/${domainId}`);
    expect(res.status).toBe(204);
    expect((await api('GET', `/v1/domains/${domainId}`)).status).toBe(404);
    expect((await sendFrom(`hello@${DOMAIN}`, 'after-delete')).json.error).toBe('domain_not_verified');
    expect((await api('GET', '/v1/account')).json.default_from).toBeNull();
  });
});

describe('domain names and scopes', () => {
  it.each([
    ['localhost', 'two labels'],
    ['-bad.example', 'labels'],
    ['a..b.example', 'labels'],
    ['  ', 'expected a host name'],
    ['10.0.0.1', 'IP address'],
    [`${'a'.repeat(64)}.example`, 'labels'],
    ['under_score.example', 'labels'],
  ])('refuses %s', async (name, why) => {
    const res = await api('POST', '/v1/domains', { name });
    expect(res.status).toBe(422);
    expect(res.json.error).toBe('invalid_domain');
    expect(res.json.message).toContain(why);
  });

  it('stores an internationalized name in its ASCII form', async () => {
    const res = await api('POST', '/v1/domains', { name: 'Bücher.example.test' });
    expect(res.status).toBe(201);
    expect(res.json.name).toBe('xn--bcher-kva.example.test');
    expect((await api('DELETE', `/v1/domains/${res.json.id}`)).status).toBe(204);
  });

  it('needs domains.manage', async () => {
    const reader = await tenantWithToken(database.db, ['messages.view']);
    const res = await api('POST', '/v1/domains', { name: 'x.example.test' }, reader);
    expect(res.status).toBe(403);
    expect(res.json.message).toContain('domains.manage');
  });

  it('answers 404 for ids that are not uuids and 422 for malformed cursors', async () => {
    expect((await api('GET', '/v1/domains/not-a-uuid')).status).toBe(404);
    expect((await api('POST', '/v1/domains/not-a-uuid/rotate-dkim')).status).toBe(404);
    for (const cursor of ['%%%', Buffer.from(JSON.stringify({ v: 1, t: '2025-13-45 10:00:00+00', i: '01900000-0000-7000-8000-000000000000' })).toString('base64url')]) {
      const bad = await api('GET', `/v1/domains?cursor=${cursor}`);
      expect(bad.status, cursor).toBe(422);
      expect(bad.json.error).toBe('validation_failed');
    }
  });
});
