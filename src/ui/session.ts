import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config.ts';

/**
 * Dashboard sessions: a stateless token in an HttpOnly cookie, `<payload>.<HMAC-SHA256>`, with an
 * expiry inside. It names the API key (never its secret) or the operator, and the tenant the
 * operator is looking at; the key is looked up again on every request (revocation ends it).
 */
export interface Session {
  /** 'operator' (ADMIN_TOKEN) or 'key' (an API key, by id). */
  kind: 'operator' | 'key';
  keyId?: string;
  tenantId: string | null;
  /** Expiry, epoch seconds. */
  exp: number;
}

export const SESSION_COOKIE = 'se_session';

export function sessionKey(config: Pick<Config, 'ui' | 'secretsKey' | 'jwt'>): Buffer {
  const material = config.ui.sessionSecret ?? config.secretsKey ?? config.jwt.secret;
  // Nothing configured (a JWKS-only setup without SECRETS_KEY): a key of this process, so
  // sessions end at a restart and hold on one API process only. SESSION_SECRET fixes both.
  if (!material) return randomBytes(32);
  return Buffer.from(hkdfSync('sha256', material, 'send-engine', 'dashboard sessions v1', 32));
}

const mac = (key: Buffer, payload: string) => createHmac('sha256', key).update(payload).digest();

export function signSession(key: Buffer, session: Session): string {
  const payload = Buffer.from(JSON.stringify(session)).toString('base64url');
  return `${payload}.${mac(key, payload).toString('base64url')}`;
}

/** The session a cookie carries when its signature holds and it has not expired; null otherwise. */
export function readSession(key: Buffer, cookie: string | undefined, now = Date.now()): Session | null {
  if (!cookie || cookie.length > 2000) return null;
  const [payload, signature, extra] = cookie.split('.');
  if (!payload || !signature || extra !== undefined) return null;
  const given = Buffer.from(signature, 'base64url');
  const expected = mac(key, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  try {
    const s = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Session;
    if (typeof s.exp !== 'number' || s.exp * 1000 <= now || (s.kind !== 'operator' && s.kind !== 'key')) return null;
    return s;
  } catch {
    return null;
  }
}

/** Constant-time comparison of a typed operator credential with ADMIN_TOKEN (hashed first: equal lengths). */
export function isOperatorToken(config: Pick<Config, 'ui' | 'adminToken'>, given: string): boolean {
  const expected = config.adminToken;
  if (!expected) return false;
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(given), h(expected));
}
