import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockedAddressError, isBlockedAddress, parseRetryAfter, WebhookHttpClient } from '../../src/webhooks/http-client.ts';

let server: http.Server;
let port: number;
let hits = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    hits++;
    if (req.url === '/redirect') {
      res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' });
      return res.end();
    }
    if (req.url === '/big') {
      res.writeHead(200);
      return res.end('x'.repeat(20_000));
    }
    res.writeHead(200, { 'retry-after': '7' });
    res.end('hello');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const guarded = (resolve?: ConstructorParameters<typeof WebhookHttpClient>[0]['resolve']) =>
  new WebhookHttpClient({ allowPrivate: false, timeoutMs: 2000, maxSocketsPerHost: 2, resolve });

describe('SSRF guard', () => {
  it('classifies loopback, private, CGNAT, link-local, metadata, ULA and unspecified addresses as blocked, public ones not', () => {
    for (const a of ['127.0.0.1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '100.64.0.1', '169.254.169.254', '0.0.0.0', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1']) {
      expect(isBlockedAddress(a), a).toBe(true);
    }
    for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8']) expect(isBlockedAddress(a), a).toBe(false);
  });

  it('refuses literal private and metadata addresses and plain http before connecting', async () => {
    const client = guarded();
    const before = hits;
    for (const url of [`https://127.0.0.1:${port}/`, 'https://10.0.0.1/', 'https://169.254.169.254/latest/meta-data/', `http://127.0.0.1:${port}/`, 'http://hooks.example.com/']) {
      await expect(client.post(url, {}, '{}'), url).rejects.toBeInstanceOf(BlockedAddressError);
    }
    expect(hits).toBe(before);
    client.close();
  });

  it('checks the address resolved at connection time: localhost, and a name rebinding to a private address', async () => {
    const client = guarded();
    await expect(client.post(`https://localhost:${port}/`, {}, '{}')).rejects.toThrow(/private, loopback/);
    client.close();
    // First answer public, then private: the connection-time answer is the one that counts.
    let calls = 0;
    const rebinding = guarded(async () => [{ address: calls++ === 0 ? '93.184.216.34' : '10.0.0.7', family: 4 }]);
    await rebinding.post('https://rebind.example/', {}, '{}').catch(() => {});
    await expect(rebinding.post('https://rebind.example/', {}, '{}')).rejects.toBeInstanceOf(BlockedAddressError);
    rebinding.close();
    expect(hits).toBe(0);
  });

  it('with WEBHOOK_ALLOW_PRIVATE reaches a local receiver, follows no redirect and caps the body read', async () => {
    const client = new WebhookHttpClient({ allowPrivate: true, timeoutMs: 2000, maxSocketsPerHost: 2 });
    const ok = await client.post(`http://127.0.0.1:${port}/`, { 'content-type': 'application/json' }, '{}');
    expect(ok).toMatchObject({ status: 200, excerpt: 'hello', retryAfterMs: 7000 });
    const redirected = await client.post(`http://127.0.0.1:${port}/redirect`, {}, '{}');
    expect(redirected.status).toBe(302);
    const big = await client.post(`http://127.0.0.1:${port}/big`, {}, '{}');
    expect(big.excerpt.length).toBe(4096);
    expect(hits).toBe(3);
    client.close();
  });

  it('parses Retry-After as seconds or a date, clamped', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter('0')).toBe(1000);
    expect(parseRetryAfter(new Date(Date.now() + 60_000).toUTCString(), Date.now())).toBeGreaterThan(55_000);
    expect(parseRetryAfter('999999999')).toBe(86_400_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});
