import { createHmac, timingSafeEqual } from 'node:crypto';

/** Where tracking URLs point and the key that signs them (config.tracking). */
export interface TrackingSettings {
  /** Public origin of this engine, without a trailing slash, e.g. https://mail.acme.example. */
  baseUrl: string;
  /** HMAC key, at least 32 characters. */
  secret: string;
}

/** What a valid token says. The kind is signed with the rest, so one kind never passes for another. */
export type TokenPayload =
  | { type: 'o'; messageId: string }
  | { type: 'c'; messageId: string; url: string }
  | { type: 'u'; tenantId: string; listId: string; subscriberId: string; messageId?: string };

/**
 * Token: base64url(JSON payload) "." base64url(HMAC-SHA256(secret, first part)) truncated to
 * 128 bits. Keys are one letter and UUIDs travel as 22 base64url characters (their 16 bytes),
 * so an open token is about 60 characters and an unsubscribe token about 150.
 */
const MAC_CHARS = 22; // 16 bytes
const MAX_TOKEN_CHARS = 8192;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COMPACT_UUID = /^[A-Za-z0-9_-]{21}[AQgw]$/; // 16 bytes: the last character carries 2 bits

/** A stable tracking key derived from another secret (embedded mode), domain-separated by label. */
export function deriveTrackingSecret(from: string): string {
  return createHmac('sha256', from).update('send-engine/tracking-secret/v1').digest('base64url');
}

function compactUuid(id: string): string {
  if (!UUID.test(id)) throw new TypeError('tracking ids must be UUIDs');
  return Buffer.from(id.replace(/-/g, ''), 'hex').toString('base64url');
}

function expandUuid(c: unknown): string | undefined {
  if (typeof c !== 'string' || !COMPACT_UUID.test(c)) return undefined;
  const h = Buffer.from(c, 'base64url').toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Below this a key is refused on both sides: a misconfigured (empty) key must never sign or verify. */
export const MIN_SECRET_CHARS = 32;

function mac(secret: string, body: string): string {
  if (typeof secret !== 'string' || secret.length < MIN_SECRET_CHARS) throw new TypeError(`the tracking secret must be at least ${MIN_SECRET_CHARS} characters`);
  return createHmac('sha256', secret).update(body).digest().subarray(0, 16).toString('base64url');
}

/** Signs a payload already serialised as JSON. */
export function signJson(secret: string, json: string): string {
  return signBody(secret, Buffer.from(json).toString('base64url'));
}

/** Signs a payload already base64url-encoded (the rewriter assembles it from cached pieces). */
export function signBody(secret: string, body: string): string {
  return `${body}.${mac(secret, body)}`;
}

/**
 * An absolute http(s) URL as a browser would follow it: parsed and serialised by the WHATWG URL
 * standard, so tabs and newlines inside are dropped, spaces and non-ASCII characters are
 * percent-encoded (UTF-8) and an international host is in punycode. The result is plain ASCII,
 * always a valid `Location`. Undefined for anything else.
 */
export function normalizeLink(target: string): string | undefined {
  const trimmed = target.trim();
  if (!/^https?:\/\//i.test(trimmed)) return undefined;
  try {
    const u = new URL(trimmed);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' ? u.href : undefined;
  } catch {
    return undefined;
  }
}

export function openToken(secret: string, messageId: string): string {
  return signJson(secret, `{"t":"o","m":"${compactUuid(messageId)}"}`);
}

/**
 * A click payload is `{"t":"c","m":"<id>","u":<url json>}`, encoded in two pieces: the message
 * part, padded with JSON whitespace to a multiple of 3 bytes so that its base64 ends on a group
 * boundary, and the target part. The base64 of each can then be computed once (per message,
 * per job) and concatenated.
 */
export function clickBodyPrefix(messageId: string): string {
  let json = `{"t":"c","m":"${compactUuid(messageId)}","u":`;
  while (json.length % 3) json += ' ';
  return Buffer.from(json).toString('base64url');
}

export function clickBodySuffix(target: string): string {
  return Buffer.from(JSON.stringify(target) + '}').toString('base64url');
}

export function openPixelUrl(s: TrackingSettings, messageId: string): string {
  return `${s.baseUrl}/t/o/${openToken(s.secret, messageId)}`;
}

export function clickUrl(s: TrackingSettings, messageId: string, target: string): string {
  const url = normalizeLink(target);
  if (url === undefined) throw new TypeError('click targets must be absolute http(s) URLs');
  return `${s.baseUrl}/t/c/${signBody(s.secret, clickBodyPrefix(messageId) + clickBodySuffix(url))}`;
}

export function unsubscribeUrl(
  s: TrackingSettings,
  u: { tenantId: string; listId: string; subscriberId: string; messageId?: string },
): string {
  const m = u.messageId ? `,"m":"${compactUuid(u.messageId)}"` : '';
  const json = `{"t":"u","n":"${compactUuid(u.tenantId)}","l":"${compactUuid(u.listId)}","s":"${compactUuid(u.subscriberId)}"${m}}`;
  return `${s.baseUrl}/u/${signJson(s.secret, json)}`;
}

/**
 * Checks the signature (constant time, over the token's own characters: base64url decoding is
 * lenient about trailing bits, so decoded bytes are never compared) and returns the payload, or
 * undefined for anything malformed or tampered with.
 */
export function verifyToken(secret: string, token: string): TokenPayload | undefined {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS || !TOKEN_SHAPE.test(token)) return undefined;
  if (typeof secret !== 'string' || secret.length < MIN_SECRET_CHARS) return undefined;
  const dot = token.length - MAC_CHARS - 1;
  const body = token.slice(0, dot);
  const expected = Buffer.from(mac(secret, body));
  const given = Buffer.from(token.slice(dot + 1));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;

  let p: Record<string, unknown>;
  try {
    p = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!p || typeof p !== 'object') return undefined;
  switch (p.t) {
    case 'o': {
      const messageId = expandUuid(p.m);
      return messageId ? { type: 'o', messageId } : undefined;
    }
    case 'c': {
      // Normalised again: links signed before normalisation existed may carry raw non-ASCII.
      const messageId = expandUuid(p.m);
      const url = typeof p.u === 'string' ? normalizeLink(p.u) : undefined;
      return messageId && url ? { type: 'c', messageId, url } : undefined;
    }
    case 'u': {
      const tenantId = expandUuid(p.n);
      const listId = expandUuid(p.l);
      const subscriberId = expandUuid(p.s);
      if (!tenantId || !listId || !subscriberId) return undefined;
      if (p.m === undefined) return { type: 'u', tenantId, listId, subscriberId };
      const messageId = expandUuid(p.m);
      return messageId ? { type: 'u', tenantId, listId, subscriberId, messageId } : undefined;
    }
    default:
      return undefined;
  }
}
