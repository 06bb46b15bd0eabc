import { randomBytes } from 'node:crypto';
import type { Queryable } from '../db/pool.ts';
import { DomainError } from '../errors.ts';
import { newId } from '../ids.ts';
import { NONCE_PATTERN, parseSignatureHeader, signatureMatches } from './signature.ts';

export interface WebhookClientSecret {
  clientId: string;
  tenantId: string;
  secret: string;
}

const newSecret = () => `whsec_${randomBytes(32).toString('base64url')}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function createWebhookClient(db: Queryable, tenantId: string): Promise<WebhookClientSecret> {
  const secret = newSecret();
  const { rows } = await db.query<{ id: string }>(
    'INSERT INTO webhook_clients (id, tenant_id, secrets) VALUES ($1, $2, ARRAY[$3]) RETURNING id',
    [newId(), tenantId, secret],
  );
  return { clientId: rows[0].id, tenantId, secret };
}

/**
 * Starts a rotation: a new secret becomes the first, the newest previous one stays valid
 * beside it (an older second one is dropped). Finish with retireOldSecret once the Member
 * Center signs with the new secret.
 */
export async function rotateWebhookSecret(db: Queryable, clientId: string, tenantId?: string): Promise<WebhookClientSecret> {
  if (!UUID.test(clientId)) throw new DomainError('not_found', 'not_found', `webhook client ${clientId} not found`);
  const secret = newSecret();
  const { rows } = await db.query<{ tenant_id: string }>(
    'UPDATE webhook_clients SET secrets = ARRAY[$2, secrets[1]], rotated_at = now() WHERE id = $1 AND ($3::uuid IS NULL OR tenant_id = $3) RETURNING tenant_id',
    [clientId, secret, tenantId ?? null],
  );
  if (!rows.length) throw new DomainError('not_found', 'not_found', `webhook client ${clientId} not found`);
  return { clientId, tenantId: rows[0].tenant_id, secret };
}

/** Ends a rotation: only the newest secret stays valid. */
export async function retireOldSecret(db: Queryable, clientId: string, tenantId?: string): Promise<void> {
  if (!UUID.test(clientId)) throw new DomainError('not_found', 'not_found', `webhook client ${clientId} not found`);
  const { rowCount } = await db.query('UPDATE webhook_clients SET secrets = secrets[1:1] WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)', [clientId, tenantId ?? null]);
  if (!rowCount) throw new DomainError('not_found', 'not_found', `webhook client ${clientId} not found`);
}

/** A tenant's webhook clients (never their secrets): `rotating` while an old secret is still valid. */
export async function listWebhookClients(db: Queryable, tenantId: string) {
  const { rows } = await db.query<{ id: string; created_at: Date; rotated_at: Date | null; n: number }>(
    'SELECT id, created_at, rotated_at, cardinality(secrets) AS n FROM webhook_clients WHERE tenant_id = $1 ORDER BY created_at, id',
    [tenantId],
  );
  return rows.map((r) => ({ client_id: r.id, created_at: r.created_at.toISOString(), rotated_at: r.rotated_at?.toISOString() ?? null, rotating: r.n > 1 }));
}

/** Why a webhook request was refused; always answered 401. */
export class WebhookAuthError extends Error {
  constructor(
    readonly code: 'missing_signature' | 'invalid_signature' | 'stale_timestamp' | 'replayed_nonce',
    message: string,
  ) {
    super(message);
  }
}

export interface WebhookRequestHeaders {
  clientId?: string;
  timestamp?: string;
  nonce?: string;
  signature?: string;
}

export interface VerifiedWebhook {
  clientId: string;
  tenantId: string;
}

let lastPurge = 0;
const PURGE_EVERY_MS = 60_000;

/** Deletes nonces whose requests could no longer be accepted anyway. Safe to schedule. */
export async function purgeExpiredNonces(db: Queryable, now = new Date()): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM webhook_nonces WHERE expires_at < $1', [now]);
  return rowCount ?? 0;
}

/**
 * Checks a webhook request: known client, timestamp within ±toleranceSeconds, a signature over
 * the raw bytes by one of the client's secrets, and a nonce not seen inside the window.
 * The nonce is only recorded once the signature holds, so nobody else can burn a nonce.
 */
export async function verifyWebhookRequest(
  db: Queryable,
  headers: WebhookRequestHeaders,
  rawBody: Uint8Array,
  toleranceSeconds: number,
  nowMs = Date.now(),
): Promise<VerifiedWebhook> {
  const { clientId, timestamp, nonce, signature } = headers;
  if (!clientId || !timestamp || !nonce || !signature) {
    throw new WebhookAuthError('missing_signature', 'X-Client-Id, X-Timestamp, X-Nonce and X-Signature are required');
  }
  if (!UUID.test(clientId)) throw new WebhookAuthError('invalid_signature', 'unknown client or bad signature');
  if (!/^\d{1,12}$/.test(timestamp)) throw new WebhookAuthError('stale_timestamp', 'X-Timestamp must be Unix seconds');
  const skew = Number(timestamp) - nowMs / 1000;
  if (Math.abs(skew) > toleranceSeconds) {
    throw new WebhookAuthError('stale_timestamp', `X-Timestamp is outside ±${toleranceSeconds} s of the server's clock`);
  }
  if (!NONCE_PATTERN.test(nonce)) throw new WebhookAuthError('missing_signature', 'X-Nonce must be 8-128 characters of [A-Za-z0-9._~+/=-]');
  const offered = parseSignatureHeader(signature);

  const { rows } = await db.query<{ tenant_id: string; secrets: string[] }>(
    'SELECT tenant_id, secrets FROM webhook_clients WHERE id = $1',
    [clientId],
  );
  // Unknown client and bad signature answer alike, so client ids cannot be probed.
  if (!rows.length || !offered.length || !signatureMatches(rows[0].secrets, timestamp, nonce, rawBody, offered)) {
    throw new WebhookAuthError('invalid_signature', 'unknown client or bad signature');
  }

  // A nonce row outlives the window its timestamp is accepted in (plus a minute of clock skew
  // between our own processes); an expired row may be reused since the timestamp check guards it.
  const expiresAt = new Date((Number(timestamp) + toleranceSeconds + 60) * 1000);
  const inserted = await db.query(
    `INSERT INTO webhook_nonces (client_id, nonce, expires_at) VALUES ($1, $2, $3)
     ON CONFLICT (client_id, nonce) DO UPDATE SET expires_at = excluded.expires_at
       WHERE webhook_nonces.expires_at < $4
     RETURNING 1`,
    [clientId, nonce, expiresAt, new Date(nowMs)],
  );
  if (!inserted.rowCount) throw new WebhookAuthError('replayed_nonce', 'X-Nonce was already used by this client');

  if (nowMs - lastPurge > PURGE_EVERY_MS) {
    lastPurge = nowMs;
    purgeExpiredNonces(db, new Date(nowMs)).catch(() => {});
  }
  return { clientId, tenantId: rows[0].tenant_id };
}
