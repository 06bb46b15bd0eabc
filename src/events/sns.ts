import { createHmac, createVerify, timingSafeEqual, X509Certificate } from 'node:crypto';
import { DomainError, invalid } from '../errors.ts';

/** GETs a URL (a signing certificate, a SubscribeURL). Injectable so tests never reach the network. */
export type SnsFetcher = (url: string) => Promise<{ status: number; body: string }>;

export type SnsMessageType = 'Notification' | 'SubscriptionConfirmation' | 'UnsubscribeConfirmation';

export interface SnsEnvelope {
  Type: SnsMessageType;
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
  SignatureVersion: '1' | '2';
  Signature: string;
  SigningCertURL: string;
  Subject?: string;
  Token?: string;
  SubscribeURL?: string;
}

const TYPES: SnsMessageType[] = ['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'];
// Fields signed, in the documented order. Subject is signed only when present.
const SIGNED_FIELDS: Record<SnsMessageType, (keyof SnsEnvelope)[]> = {
  Notification: ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'],
  SubscriptionConfirmation: ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'],
  UnsubscribeConfirmation: ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'],
};

/** Checks the envelope's shape; anything off is the sender's mistake (422), never a crash later. */
export function parseSnsEnvelope(body: unknown, headerType: string): SnsEnvelope {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalid('SNS message must be a JSON object');
  const b = body as Record<string, unknown>;
  const type = b.Type as SnsMessageType;
  if (!TYPES.includes(type)) throw invalid('SNS Type must be Notification, SubscriptionConfirmation or UnsubscribeConfirmation');
  if (headerType !== type) throw invalid('x-amz-sns-message-type does not match the message Type');
  const required: (keyof SnsEnvelope)[] = ['MessageId', 'TopicArn', 'Message', 'Timestamp', 'SignatureVersion', 'Signature', 'SigningCertURL'];
  if (type !== 'Notification') required.push('Token', 'SubscribeURL');
  for (const field of required) {
    if (typeof b[field] !== 'string') throw invalid(`SNS ${field} must be a string`);
  }
  if (b.Subject !== undefined && typeof b.Subject !== 'string') throw invalid('SNS Subject must be a string');
  if (b.SignatureVersion !== '1' && b.SignatureVersion !== '2') throw invalid('SNS SignatureVersion must be "1" or "2"');
  return b as unknown as SnsEnvelope;
}

export function stringToSign(m: SnsEnvelope): string {
  let out = '';
  for (const field of SIGNED_FIELDS[m.Type]) {
    const value = m[field];
    if (value === undefined) continue;
    out += `${field}\n${value}\n`;
  }
  return out;
}

const SNS_HOST = /^sns\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com(\.cn)?$/;

/** https, an sns.<region>.amazonaws.com(.cn) host, no port or credentials. */
export function isSnsUrl(raw: string): URL | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' || url.port !== '' || url.username || url.password) return null;
  return SNS_HOST.test(url.hostname) ? url : null;
}

export function isSigningCertUrl(raw: string): boolean {
  const url = isSnsUrl(raw);
  return !!url && url.pathname.endsWith('.pem') && !url.search;
}

/** The default fetcher: short timeout, no redirects (a redirect could leave the SNS host). */
export const httpsFetcher: SnsFetcher = async (url) => {
  const res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(5000) });
  const body = await res.text();
  return { status: res.status, body: body.slice(0, 64 * 1024) };
};

const CERT_TTL_MS = 24 * 3600_000;
const CERT_CACHE_MAX = 64;

export type VerifyResult = { ok: true } | { ok: false; reason: string };

/**
 * Verifies SNS messages: topic allow-list, certificate URL, RSA-SHA1 (v1) or RSA-SHA256 (v2).
 * Certificates are cached per URL (a promise, so concurrent first requests fetch once).
 */
export class SnsVerifier {
  private certs = new Map<string, { cert: Promise<X509Certificate>; until: number }>();

  constructor(
    private readonly topicArns: readonly string[],
    private readonly fetcher: SnsFetcher = httpsFetcher,
  ) {}

  /** Unknown topics are refused before any certificate is fetched. */
  assertTopic(m: SnsEnvelope) {
    if (!this.topicArns.includes(m.TopicArn)) throw new DomainError('forbidden', 'unknown_topic', 'SNS topic is not accepted by this engine (SNS_TOPIC_ARNS)');
  }

  async verify(m: SnsEnvelope): Promise<VerifyResult> {
    if (!isSigningCertUrl(m.SigningCertURL)) return { ok: false, reason: 'SigningCertURL is not an https SNS certificate URL' };
    let cert: X509Certificate;
    try {
      cert = await this.certificate(m.SigningCertURL);
    } catch {
      return { ok: false, reason: 'signing certificate could not be obtained' };
    }
    const now = Date.now();
    if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) < now) return { ok: false, reason: 'signing certificate is not valid now' };
    try {
      const verifier = createVerify(m.SignatureVersion === '2' ? 'RSA-SHA256' : 'RSA-SHA1');
      verifier.update(stringToSign(m), 'utf8');
      if (verifier.verify(cert.publicKey, m.Signature, 'base64')) return { ok: true };
    } catch {
      // A malformed signature or key is a failed verification like any other.
    }
    return { ok: false, reason: 'SNS signature does not verify' };
  }

  private certificate(url: string): Promise<X509Certificate> {
    const hit = this.certs.get(url);
    if (hit && hit.until > Date.now()) return hit.cert;
    const cert = this.fetcher(url).then((res) => {
      if (res.status !== 200) throw new Error(`certificate fetch answered ${res.status}`);
      return new X509Certificate(res.body);
    });
    if (this.certs.size >= CERT_CACHE_MAX) this.certs.delete(this.certs.keys().next().value as string);
    this.certs.set(url, { cert, until: Date.now() + CERT_TTL_MS });
    // A failure is not remembered: the next message tries again.
    cert.catch(() => this.certs.delete(url));
    return cert;
  }

  /** GETs the SubscribeURL of a verified confirmation; only an SNS host is ever contacted. */
  async confirmSubscription(m: SnsEnvelope): Promise<void> {
    const url = m.SubscribeURL ? isSnsUrl(m.SubscribeURL) : null;
    if (!url || url.searchParams.get('Action') !== 'ConfirmSubscription') {
      throw invalid('SubscribeURL is not an https SNS ConfirmSubscription URL', 'invalid_subscribe_url');
    }
    const res = await this.fetcher(url.toString());
    if (res.status !== 200) throw new Error(`subscription confirmation answered ${res.status}`);
  }
}

/** The forwarder scheme: hex HMAC-SHA256 of the raw body, compared in constant time. */
export function verifyBodyHmac(secret: string, rawBody: Buffer, signature: string | undefined): boolean {
  if (!signature || !/^[0-9a-f]{64}$/i.test(signature)) return false;
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(signature, 'hex'));
}
