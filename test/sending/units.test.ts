import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { retryDelayMs } from '../../src/dispatch/dispatcher.ts';
import { maskEmail } from '../../src/log.ts';
import { composeMessage } from '../../src/sending/compose.ts';
import { canonicalJson, requestHash } from '../../src/sending/idempotency.ts';

describe('canonical request hashing', () => {
  it('ignores key order at every depth and nothing else', () => {
    const a = { b: 1, a: { y: [1, { q: 1, p: 2 }], x: 'z' } };
    const b = { a: { x: 'z', y: [1, { p: 2, q: 1 }] }, b: 1 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(requestHash(a)).toBe(requestHash(b));
    expect(requestHash({ ...a, b: 2 })).not.toBe(requestHash(a));
    expect(requestHash({ list: [1, 2] })).not.toBe(requestHash({ list: [2, 1] }));
  });

  it('hashes a body as every earlier version did (stored idempotency records must still match a replay)', () => {
    const body = {
      message_type: 'transactional', from: 'receipts@acme.test', to: ['user1@example.com', null, 'b'], subject: 'Your receipt #1 \u00e9 "q"',
      html: '<p>x</p>', text: '', tags: { campaign_id: 'receipts', site_id: 'shop', n: 1.5, t: true, nested: { z: [], a: {} } },
      idempotency_key: 'bench-1', 'we"ird': null,
    };
    expect(canonicalJson(body)).toBe(
      '{"from":"receipts@acme.test","html":"<p>x</p>","idempotency_key":"bench-1","message_type":"transactional","subject":"Your receipt #1 \u00e9 \\"q\\"",' +
        '"tags":{"campaign_id":"receipts","n":1.5,"nested":{"a":{},"z":[]},"site_id":"shop","t":true},"text":"","to":["user1@example.com",null,"b"],"we\\"ird":null}',
    );
    expect(requestHash(body)).toBe('f7c4c1481d653c68c2fa1ee8c6d84500af0fe68244999d1f43f187d25ee871bb');
  });
});

describe('retry backoff', () => {
  it('doubles per attempt, stays between 50% and 100% of the step, and is capped', () => {
    expect(retryDelayMs(1, 1000, 60_000, () => 0)).toBe(500);
    expect(retryDelayMs(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(retryDelayMs(4, 1000, 60_000, () => 1)).toBe(8000);
    expect(retryDelayMs(30, 1000, 60_000, () => 1)).toBe(60_000);
    const spread = new Set(Array.from({ length: 50 }, () => retryDelayMs(3, 1000, 60_000)));
    expect(spread.size).toBeGreaterThan(40);
    for (const d of spread) expect(d >= 2000 && d <= 4000).toBe(true);
  });
});

describe('composeMessage', () => {
  it('builds MIME with a stable Message-ID, our id header, the caller headers, and encodes non-ASCII', async () => {
    const base = { id: '01890000-0000-7000-8000-000000000001', recipient: 'zoë@example.com', from: 'news@acme.test', subject: 'Grüße', html: '<p>Hallo</p>', text: 'Hallo', headers: { 'X-Campaign': 'spring' }, listUnsubscribe: null };
    const one = await composeMessage(base);
    const two = await composeMessage(base);
    const parsed = await simpleParser(one.raw);
    expect(parsed.messageId).toBe('<01890000-0000-7000-8000-000000000001@acme.test>');
    expect((await simpleParser(two.raw)).messageId).toBe(parsed.messageId);
    expect(parsed.subject).toBe('Grüße');
    expect(one.raw.toString()).toMatch(/^X-Campaign: spring\r?$/m);
    expect(one.raw.toString()).not.toMatch(/^List-Unsubscribe/im);
    expect(one).toMatchObject({ from: 'news@acme.test', to: 'zoë@example.com' });
  });

  it('never writes a control character into a header: a rendered subject or stored header value gets spaces', async () => {
    const m = await composeMessage({ id: '01890000-0000-7000-8000-000000000002', recipient: 'a@example.com', from: 'news@acme.test', subject: 'Hi\x1b[31m\x0bthere\x7f', html: null, text: 'x', headers: { 'X-Note': 'a\x0bb\x1bc' }, listUnsubscribe: null });
    const head = m.raw.toString().split('\r\n\r\n')[0];
    expect(head).not.toMatch(/[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]/);
    expect(head).toMatch(/^X-Note: a b c\r?$/m);
  });
});

describe('loadConfig', () => {
  it('defaults to embedded mode with the capture transport', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 3000, transport: 'capture', databaseUrl: undefined });
    expect(config.dataDir).toMatch(/\.send-engine$/);
  });

  it.each([
    [{ PORT: 'abc' }, /PORT/],
    [{ SEND_ENGINE_TRANSPORT: 'carrier-pigeon' }, /SEND_ENGINE_TRANSPORT/],
    [{ DATABASE_URL: 'postgres://x@h/db' }, /JWT_SECRET/],
    [{ JWT_SECRET: 'short' }, /at least 32/],
    [{ DKIM_DOMAIN: 'acme.test' }, /DKIM/],
  ])('refuses %o with a clear message', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('never echoes transport credentials in its errors', () => {
    let message = '';
    try {
      loadConfig({ SEND_ENGINE_TRANSPORT: 'ftp://user:hunter2@host' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('SEND_ENGINE_TRANSPORT');
    expect(message).not.toContain('hunter2');
  });
});

describe('maskEmail', () => {
  it('keeps the first letter and the domain only', () => {
    expect(maskEmail('alice@example.com')).toBe('a***@example.com');
    expect(maskEmail('nonsense')).toBe('***');
  });
});
