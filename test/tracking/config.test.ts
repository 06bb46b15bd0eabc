import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { withEmbeddedDefaults } from '../../src/runtime.ts';
import { newId } from '../../src/ids.ts';
import { deriveTrackingSecret, openPixelUrl, verifyToken } from '../../src/tracking/links.ts';

const JWT = 'a-jwt-secret-that-is-long-enough-0123456789';

describe('tracking configuration', () => {
  it('defaults PUBLIC_BASE_URL to this server and normalises a trailing slash', () => {
    expect(loadConfig({ PORT: '4100' }).tracking.baseUrl).toBe('http://127.0.0.1:4100');
    expect(loadConfig({ PUBLIC_BASE_URL: 'https://mail.acme.example/' }).tracking.baseUrl).toBe('https://mail.acme.example');
    expect(loadConfig({ PUBLIC_BASE_URL: 'https://acme.example/mail/' }).tracking.baseUrl).toBe('https://acme.example/mail');
    for (const bad of ['mail.acme.example', 'ftp://x.example', 'https://x.example/?a=1', 'https://user:pw@x.example']) {
      expect(() => loadConfig({ PUBLIC_BASE_URL: bad }), bad).toThrow(ConfigError);
    }
  });

  it('takes TRACKING_SECRET (>= 32 characters), else derives one from JWT_SECRET', () => {
    const secret = 'x'.repeat(32);
    expect(loadConfig({ DATABASE_URL: 'postgres://h/db', JWT_SECRET: JWT, TRACKING_SECRET: secret }).tracking.secret).toBe(secret);
    expect(() => loadConfig({ TRACKING_SECRET: 'short' })).toThrow(/TRACKING_SECRET/);
    expect(loadConfig({ DATABASE_URL: 'postgres://h/db', JWT_SECRET: JWT }).tracking.secret).toBe(deriveTrackingSecret(JWT));
  });

  it('refuses to start on DATABASE_URL without TRACKING_SECRET when there is no JWT_SECRET to derive from', async () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://h/db', JWT_JWKS_URL: 'https://idp.example/jwks' });
    expect(config.tracking.secret).toBe('');
    await expect(withEmbeddedDefaults(config)).rejects.toThrow(/TRACKING_SECRET/);
    const ok = await withEmbeddedDefaults(loadConfig({ DATABASE_URL: 'postgres://h/db', JWT_JWKS_URL: 'https://idp.example/jwks', TRACKING_SECRET: 'y'.repeat(32) }));
    expect(ok.tracking.secret).toBe('y'.repeat(32));
  });

  it('never signs or verifies with a short or empty key', () => {
    const s = { baseUrl: 'https://x.example', secret: '' };
    expect(() => openPixelUrl(s, newId())).toThrow(/32/);
    const token = openPixelUrl({ ...s, secret: 'z'.repeat(32) }, newId()).split('/t/o/')[1];
    expect(verifyToken('', token)).toBeUndefined();
  });

  it('embedded mode derives a stable secret from the generated one, also with JWKS', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'se-tracking-'));
    try {
      const first = await withEmbeddedDefaults(loadConfig({ SEND_ENGINE_DATA_DIR: dataDir }));
      const again = await withEmbeddedDefaults(loadConfig({ SEND_ENGINE_DATA_DIR: dataDir }));
      expect(first.tracking.secret.length).toBeGreaterThanOrEqual(32);
      expect(again.tracking.secret).toBe(first.tracking.secret);
      expect(first.tracking.secret).toBe(deriveTrackingSecret(first.jwt.secret!));
      const jwks = await withEmbeddedDefaults(loadConfig({ SEND_ENGINE_DATA_DIR: dataDir, JWT_JWKS_URL: 'https://idp.example/jwks' }));
      expect(jwks.jwt.secret).toBeUndefined();
      expect(jwks.tracking.secret).toBe(first.tracking.secret);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
