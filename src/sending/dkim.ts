import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';

/** A domain's DKIM signing key (src/domains/signing.ts decrypts it). */
export interface DkimKey {
  domainName: string;
  keySelector: string;
  /** PEM. */
  privateKey: string;
}

/**
 * Signed when present (lower case, in this order): RFC 6376 §5.4.1's list plus List-Unsubscribe-Post,
 * which RFC 8058 requires signed, and our message id.
 */
export const SIGNED_HEADERS = [
  'from', 'sender', 'reply-to', 'subject', 'date', 'message-id', 'to', 'cc', 'mime-version', 'content-type',
  'content-transfer-encoding', 'in-reply-to', 'references', 'list-id', 'list-help', 'list-unsubscribe',
  'list-unsubscribe-post', 'list-subscribe', 'list-post', 'list-owner', 'list-archive',
] as const;
const SIGNED = new Set<string>(SIGNED_HEADERS);

// Parsing a PEM costs more than a signature: once per key.
const keys = new Map<string, KeyObject>();
function keyObject(pem: string): KeyObject {
  let key = keys.get(pem);
  if (!key) {
    if (keys.size >= 1000) keys.clear();
    keys.set(pem, (key = createPrivateKey(pem)));
  }
  return key;
}

/** Relaxed header canonicalisation (RFC 6376 §3.4.2) of one `Name: value` field, folded or not. */
function relaxedHeader(field: string): string {
  const colon = field.indexOf(':');
  return `${field.slice(0, colon).trimEnd().toLowerCase()}:${field.slice(colon + 1).replace(/\r\n/g, '').replace(/[ \t]+/g, ' ').trim()}`;
}

/**
 * Relaxed body canonicalisation (RFC 6376 §3.4.4) of a CRLF body: no white space at line ends, runs
 * of it as one space, no empty lines at the end, and a final CRLF unless the body is empty.
 */
export function canonicalBodyRelaxed(body: string): string {
  // The composer's bodies (quoted-printable parts) are canonical already: skip the rewriting then.
  let out = /\t| (?: |\r\n|$)/.test(body) ? body.replace(/[ \t]+\r\n/g, '\r\n').replace(/[ \t]+$/, '').replace(/[ \t]+/g, ' ') : body;
  let end = out.length;
  while (end >= 2 && out.charCodeAt(end - 2) === 13 && out.charCodeAt(end - 1) === 10) end -= 2;
  out = end < out.length ? out.slice(0, end) : out;
  return out.length ? `${out}\r\n` : '';
}

/** bh=: base64 SHA-256 of the relaxed body. */
export function bodyHash(body: string): string {
  return createHash('sha256').update(canonicalBodyRelaxed(body), 'utf8').digest('base64');
}

/**
 * The DKIM-Signature field (relaxed/relaxed, rsa-sha256, RFC 6376 §3.5/§3.7) over `fields` (the
 * message's header fields as written, `Name: value`, possibly folded) and a body hash from bodyHash.
 * One RSA signature per call; the body hash is the caller's, so a body shared by many messages is
 * hashed once.
 */
export function dkimSignature(fields: string[], bh: string, key: DkimKey, now = Date.now()): string {
  const names: string[] = [];
  const canonical: string[] = [];
  for (const field of fields) {
    const name = field.slice(0, field.indexOf(':')).trim().toLowerCase();
    if (!SIGNED.has(name)) continue;
    names.push(name);
    canonical.push(relaxedHeader(field));
  }
  const tags = `v=1; a=rsa-sha256; c=relaxed/relaxed; d=${key.domainName}; q=dns/txt; s=${key.keySelector}; t=${Math.floor(now / 1000)}; h=${names.join(':')}; bh=${bh}; b=`;
  const head = `DKIM-Signature: ${tags}`;
  canonical.push(relaxedHeader(head));
  const b = sign('sha256', Buffer.from(canonical.join('\r\n'), 'utf8'), keyObject(key.privateKey)).toString('base64');
  // Folded at tag separators and inside b= (both ignored by relaxed canonicalisation and by b='s reader).
  return `${head.replace(/; (?=[hb]h?=)/g, ';\r\n ')}${b.replace(/.{1,72}/g, (part, at: number) => (at ? `\r\n ${part}` : part))}`;
}

/** Signs a raw message as it is (a transport-wide key for messages composed unsigned). */
export function signRaw(raw: Buffer, key: DkimKey): Buffer {
  const text = raw.toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? '' : text.slice(split + 4);
  const signature = dkimSignature(head.split(/\r\n(?![ \t])/), bodyHash(body), key);
  return Buffer.concat([Buffer.from(`${signature}\r\n`), raw]);
}
