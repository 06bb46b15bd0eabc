import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The Member Center webhook signing scheme (docs/webhooks.md). Pure functions only, so the
 * Member Center side can import signWebhook() without pulling in the engine.
 *
 *   X-Signature = hex(HMAC-SHA256(secret, `${X-Timestamp}.${X-Nonce}.` + raw body bytes))
 *
 * The key is the secret string's UTF-8 bytes. The header may carry several comma-separated
 * signatures, each optionally prefixed `v1=` (one per secret during a rotation).
 */

export const SIGNATURE_VERSION = 'v1';
/** Bounds the work a request can cause: signatures per header, bytes per nonce. */
export const MAX_SIGNATURES = 8;
export const NONCE_PATTERN = /^[A-Za-z0-9._~+/=-]{8,128}$/;

export interface SignWebhookOptions {
  clientId: string;
  /** One secret, or several during a rotation (each yields a signature). */
  secret: string | string[];
  /** The exact bytes that will be sent as the body. */
  body: string | Uint8Array;
  /** Unix seconds; defaults to now. */
  timestamp?: number;
  /** Unique per request; defaults to 16 random bytes, base64url. */
  nonce?: string;
}

export interface WebhookHeaders {
  'X-Client-Id': string;
  'X-Timestamp': string;
  'X-Nonce': string;
  'X-Signature': string;
}

function mac(secret: string, timestamp: string, nonce: string, body: string | Uint8Array): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.${nonce}.`).update(body).digest();
}

/** Hex HMAC-SHA256 of `${timestamp}.${nonce}.${body}`. */
export function computeWebhookSignature(secret: string, timestamp: number | string, nonce: string, body: string | Uint8Array): string {
  return mac(secret, String(timestamp), nonce, body).toString('hex');
}

/** The four headers a signed webhook request carries. Sign afresh for every delivery attempt. */
export function signWebhook(options: SignWebhookOptions): WebhookHeaders {
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  const nonce = options.nonce ?? randomBytes(16).toString('base64url');
  const secrets = Array.isArray(options.secret) ? options.secret : [options.secret];
  if (!secrets.length) throw new Error('signWebhook needs a secret');
  const signature = secrets.map((s) => `${SIGNATURE_VERSION}=${computeWebhookSignature(s, timestamp, nonce, options.body)}`).join(',');
  return { 'X-Client-Id': options.clientId, 'X-Timestamp': timestamp, 'X-Nonce': nonce, 'X-Signature': signature };
}

/** The 32-byte digests an X-Signature header offers; malformed or other-version entries are ignored. */
export function parseSignatureHeader(header: string): Buffer[] {
  const digests: Buffer[] = [];
  for (const part of header.split(',').slice(0, MAX_SIGNATURES)) {
    let value = part.trim();
    if (value.startsWith(`${SIGNATURE_VERSION}=`)) value = value.slice(SIGNATURE_VERSION.length + 1);
    if (/^[0-9a-fA-F]{64}$/.test(value)) digests.push(Buffer.from(value, 'hex'));
  }
  return digests;
}

/**
 * True when any offered digest matches any secret. Every pair is compared in constant time
 * and all pairs are compared, so timing tells nothing about which one matched.
 */
export function signatureMatches(secrets: string[], timestamp: string, nonce: string, body: Uint8Array, offered: Buffer[]): boolean {
  let ok = false;
  for (const secret of secrets) {
    const expected = mac(secret, timestamp, nonce, body);
    for (const digest of offered) {
      if (timingSafeEqual(expected, digest)) ok = true;
    }
  }
  return ok;
}
