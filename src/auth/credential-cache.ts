import { createHash } from 'node:crypto';
import type { Principal } from './jwt.ts';

/** AUTH_CACHE_SECONDS' default: how long a verified credential is trusted without checking it again. */
export const DEFAULT_AUTH_CACHE_SECONDS = 3;

/**
 * Verified credentials of this process, so a busy client's token is not verified again (HMAC/RSA
 * for a JWT, a database lookup for an API key) on every request. Keyed by the SHA-256 of the
 * credential: the raw token or key is never held. An entry lives until the credential's own expiry
 * and at most `ttlMs`, so a revoked API key is refused within `ttlMs` (AUTH_CACHE_SECONDS).
 * Least recently used entries go first once `maxEntries` are held.
 */
export class CredentialCache<V = Principal | null> {
  private readonly entries = new Map<string, { value: V; until: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  static key(credential: string | Buffer): string {
    return createHash('sha256').update(credential).digest('base64');
  }

  /** The cached value, or undefined (never cached, or expired). */
  get(key: string, now = Date.now()): V | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    this.entries.delete(key);
    if (hit.until <= now) return undefined;
    // Re-inserted: a Map iterates in insertion order, so the first key is the least recently used.
    this.entries.set(key, hit);
    return hit.value;
  }

  /** Caches `value` until `expiresAt` (ms; the credential's own expiry) or the TTL, whichever comes first. */
  set(key: string, value: V, expiresAt = Infinity, now = Date.now()): void {
    const until = Math.min(now + this.ttlMs, expiresAt);
    if (until <= now) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, until });
  }

  get size(): number {
    return this.entries.size;
  }
}
