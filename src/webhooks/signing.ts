import { createHmac } from 'node:crypto';

/**
 * Standard Webhooks signing (standardwebhooks.com): HMAC-SHA256 over "{id}.{timestamp}.{body}"
 * keyed with the base64-decoded part of the secret after `whsec_`; `v1,<base64>` signatures,
 * space-separated when several secrets sign (a rotation's grace period).
 */
export function signatureHeader(secrets: string[], id: string, timestamp: number, body: string): string {
  return secrets
    .map((secret) => {
      const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
      return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
    })
    .join(' ');
}

export function webhookHeaders(secrets: string[], id: string, body: string, now = Date.now()): Record<string, string> {
  const timestamp = Math.floor(now / 1000);
  return {
    'content-type': 'application/json',
    'user-agent': 'send-engine-webhooks/1',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatureHeader(secrets, id, timestamp, body),
  };
}
