import { createHash, randomBytes } from 'node:crypto';
import type { Db, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { newId } from '../ids.ts';
import { CredentialCache, DEFAULT_AUTH_CACHE_SECONDS } from './credential-cache.ts';
import type { Principal } from './jwt.ts';
import type { Scope } from './scopes.ts';

export type KeyEnvironment = 'live' | 'test';

const KEY_FORMAT = /^se_(live|test)_[A-Za-z0-9_-]{43}$/;
/** Rotation grace: the old secret keeps working this long. */
export const ROTATION_GRACE_HOURS = 24;

export class ApiKeyError extends Error {}

export interface IssuedKey {
  key_id: string;
  secret: string;
  prefix: string;
  scopes: string[];
  environment: KeyEnvironment;
}

export const isApiKeyToken = (token: string) => token.startsWith('se_live_') || token.startsWith('se_test_');

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest();

function mintSecret(environment: KeyEnvironment) {
  const secret = `se_${environment}_${randomBytes(32).toString('base64url')}`;
  // The environment prefix plus 8 characters identify a key in listings without exposing it.
  return { secret, prefix: secret.slice(0, `se_${environment}_`.length + 8), hash: hashSecret(secret) };
}

async function insertKey(db: Queryable, k: { tenantId: string; name: string; scopes: string[]; environment: KeyEnvironment; rotatedFrom?: string }): Promise<IssuedKey> {
  const { secret, prefix, hash } = mintSecret(k.environment);
  const id = newId();
  await db.query(
    `INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, scopes, environment, rotated_from)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [id, k.tenantId, k.name, prefix, hash, k.scopes, k.environment, k.rotatedFrom ?? null],
  );
  return { key_id: id, secret, prefix, scopes: k.scopes, environment: k.environment };
}

export async function createApiKey(db: Db, tenantId: string, scopes: Scope[], options: { environment: KeyEnvironment; name?: string }): Promise<IssuedKey> {
  const { rowCount } = await db.query('SELECT 1 FROM tenants WHERE id = $1', [tenantId]);
  if (!rowCount) throw new ApiKeyError(`tenant ${tenantId} not found`);
  return insertKey(db, { tenantId, name: options.name ?? 'api key', scopes, environment: options.environment });
}

/**
 * A new secret with the same name, scopes and environment; the old one expires after the grace.
 * Given a tenant (the admin API), a key of another tenant is not found.
 */
export async function rotateApiKey(db: Db, keyId: string, tenantId?: string): Promise<IssuedKey & { old_key_expires_at: string }> {
  return withTransaction(db, async (client) => {
    // tenantId (the dashboard): another tenant's key is not found.
    const { rows } = await client.query<{ tenant_id: string; name: string; scopes: string[]; environment: KeyEnvironment; expires_at: Date }>(
      `UPDATE api_keys SET expires_at = LEAST(coalesce(expires_at, 'infinity'), now() + make_interval(hours => $2))
        WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) AND ($3::uuid IS NULL OR tenant_id = $3)
        RETURNING tenant_id, name, scopes, environment, expires_at`,
      [keyId, ROTATION_GRACE_HOURS, tenantId ?? null],
    );
    if (!rows.length) throw new ApiKeyError(`key ${keyId} not found, revoked or expired`);
    const old = rows[0];
    const issued = await insertKey(client, { tenantId: old.tenant_id, name: old.name, scopes: old.scopes, environment: old.environment, rotatedFrom: keyId });
    return { ...issued, old_key_expires_at: old.expires_at.toISOString() };
  });
}

export async function revokeApiKey(db: Db, keyId: string, tenantId?: string): Promise<void> {
  const { rowCount } = await db.query(
    'UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)',
    [keyId, tenantId ?? null],
  );
  if (!rowCount) throw new ApiKeyError(`key ${keyId} not found`);
}

export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  environment: KeyEnvironment;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  rotated_from: string | null;
}

/** A tenant's keys, newest first (bounded: keys are few); never a secret, only the display prefix. */
export async function listApiKeys(db: Queryable, tenantId: string, limit = 200): Promise<ApiKeyView[]> {
  const { rows } = await db.query<{ id: string; name: string; prefix: string; scopes: string[]; environment: KeyEnvironment; created_at: Date; expires_at: Date | null; revoked_at: Date | null; rotated_from: string | null }>(
    `SELECT id, name, prefix, scopes, environment, created_at, expires_at, revoked_at, rotated_from
       FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
    [tenantId, limit],
  );
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return rows.map((r) => ({ ...r, created_at: r.created_at.toISOString(), expires_at: iso(r.expires_at), revoked_at: iso(r.revoked_at) }));
}

/**
 * The principal of a live key by its id: a dashboard session keeps the key id, never the secret,
 * and asks again on every request, so a revoked or expired key ends its sessions at once.
 */
export async function principalOfKey(db: Queryable, keyId: string): Promise<Principal | null> {
  const { rows } = await db.query<{ id: string; tenant_id: string; prefix: string; scopes: string[]; environment: KeyEnvironment }>(
    `SELECT id, tenant_id, prefix, scopes, environment FROM api_keys
      WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
    [keyId],
  );
  const row = rows[0];
  return row ? { tenantId: row.tenant_id, scopes: new Set(row.scopes), subject: `api_key:${row.id}`, keyId: row.id, keyPrefix: row.prefix, environment: row.environment } : null;
}

/**
 * Resolves API-key bearer tokens to principals. Lookups go by the SHA-256 of the secret (an
 * index probe, nothing to compare in variable time). The answer (a principal, or none for an
 * unknown key) is cached per process by that hash (CredentialCache), never past the key's own
 * expiry: revocation and expiry take effect within `cacheSeconds` (AUTH_CACHE_SECONDS).
 */
export function createApiKeyVerifier(db: Db, cacheSeconds = DEFAULT_AUTH_CACHE_SECONDS) {
  const cache = new CredentialCache(cacheSeconds * 1000);
  return async (token: string): Promise<Principal | null> => {
    if (!KEY_FORMAT.test(token)) return null;
    const hash = hashSecret(token);
    const cacheKey = hash.toString('base64');
    const hit = cache.get(cacheKey);
    if (hit !== undefined) return hit;
    const { rows } = await db.query<{ id: string; tenant_id: string; prefix: string; scopes: string[]; environment: KeyEnvironment; expires_at: Date | null }>(
      `SELECT id, tenant_id, prefix, scopes, environment, expires_at FROM api_keys
        WHERE secret_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
      [hash],
    );
    const row = rows[0];
    const principal: Principal | null = row
      ? { tenantId: row.tenant_id, scopes: new Set(row.scopes), subject: `api_key:${row.id}`, keyId: row.id, keyPrefix: row.prefix, environment: row.environment }
      : null;
    cache.set(cacheKey, principal, row?.expires_at ? row.expires_at.getTime() : Infinity);
    return principal;
  };
}
