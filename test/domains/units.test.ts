import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { addressDomain, domainAndParents, normalizeDomainName } from '../../src/domains/names.ts';
import { decryptSecret, deriveSecretsKey, encryptSecret } from '../../src/secrets.ts';

describe('secrets at rest', () => {
  const key = randomBytes(32);

  it('round-trips, with a fresh nonce each time', () => {
    const a = encryptSecret(key, 'private key', 'row-1');
    const b = encryptSecret(key, 'private key', 'row-1');
    expect(a).not.toBe(b);
    expect(a).not.toContain('private key');
    expect(decryptSecret(key, a, 'row-1')).toBe('private key');
  });

  it('refuses another key, another row (context) and a tampered ciphertext', () => {
    const sealed = encryptSecret(key, 'private key', 'row-1');
    expect(() => decryptSecret(randomBytes(32), sealed, 'row-1')).toThrow();
    expect(() => decryptSecret(key, sealed, 'row-2')).toThrow();
    const parts = sealed.split('.');
    const data = Buffer.from(parts[3], 'base64url');
    data[0] ^= 1;
    parts[3] = data.toString('base64url');
    expect(() => decryptSecret(key, parts.join('.'), 'row-1')).toThrow();
    expect(() => decryptSecret(key, 'plain text', 'row-1')).toThrow('not an encrypted secret');
  });

  it('SECRETS_KEY must be 32 bytes of base64; without it the key derives from JWT_SECRET', () => {
    expect(() => loadConfig({ SECRETS_KEY: 'short' })).toThrow(ConfigError);
    const given = randomBytes(32);
    expect(loadConfig({ SECRETS_KEY: given.toString('base64') }).secretsKey).toEqual(given);
    const jwt = 'j'.repeat(40);
    expect(loadConfig({ JWT_SECRET: jwt }).secretsKey).toEqual(deriveSecretsKey(jwt));
    expect(loadConfig({ TRACKING_SECRET: 't'.repeat(32) }).secretsKey).toEqual(deriveSecretsKey('t'.repeat(32)));
    expect(loadConfig({}).secretsKey).toBeUndefined();
  });
});

describe('domain settings', () => {
  it('defaults: verified domains required, return path bounces.<domain> to PUBLIC_BASE_URL\'s host, SPF "mx"', () => {
    const { domains } = loadConfig({ PUBLIC_BASE_URL: 'https://mail.acme.example' });
    expect(domains).toMatchObject({ requireVerified: true, returnPathSubdomain: 'bounces', returnPathMx: 'mail.acme.example', spfMechanisms: ['mx'], dnsServers: [] });
  });

  it('with SES: its custom MAIL FROM MX and SPF include', () => {
    const { domains } = loadConfig({ SEND_ENGINE_TRANSPORT: 'ses', SES_REGION: 'eu-west-1' });
    expect(domains).toMatchObject({ returnPathMx: 'feedback-smtp.eu-west-1.amazonses.com', spfMechanisms: ['include:amazonses.com'] });
  });

  it('validates DNS_SERVERS, SPF_IP4 and host names; REQUIRE_VERIFIED_DOMAIN=false turns the rule off', () => {
    expect(() => loadConfig({ DNS_SERVERS: 'dns.example.com' })).toThrow(/DNS_SERVERS/);
    expect(loadConfig({ DNS_SERVERS: '127.0.0.1:5353, 10.0.0.2' }).domains.dnsServers).toEqual(['127.0.0.1:5353', '10.0.0.2']);
    expect(() => loadConfig({ SPF_IP4: 'nope' })).toThrow(/SPF_IP4/);
    expect(() => loadConfig({ RETURN_PATH_MX: 'bad host!' })).toThrow(/RETURN_PATH_MX/);
    expect(loadConfig({ REQUIRE_VERIFIED_DOMAIN: 'false' }).domains.requireVerified).toBe(false);
  });
});

describe('domain names', () => {
  it('normalizes case, trailing dots and IDNA; finds parents and address domains', () => {
    expect(normalizeDomainName('News.Example.COM.')).toBe('news.example.com');
    expect(normalizeDomainName('bücher.example')).toBe('xn--bcher-kva.example');
    expect(domainAndParents('a.b.example.com')).toEqual(['a.b.example.com', 'b.example.com', 'example.com']);
    expect(addressDomain('Ann@Mail.Example.com')).toBe('mail.example.com');
    expect(addressDomain('no-at-sign')).toBeNull();
    expect(addressDomain('x@localhost')).toBeNull();
  });
});
