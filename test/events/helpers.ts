import { createHmac, createSign } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Db } from '../../src/db/pool.ts';
import type { SnsEnvelope, SnsFetcher } from '../../src/events/sns.ts';
import { stringToSign } from '../../src/events/sns.ts';
import { buildApp } from '../../src/http/app.ts';
import { newId } from '../../src/ids.ts';
import { createLogger } from '../../src/log.ts';
import { testConfig } from '../helpers/app.ts';

export const WEBHOOK_SECRET = 'forwarder-secret-0123456789abcdef';
export const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:ses-events';
export const CERT_URL = 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem';

/** A throwaway RSA key and self-signed certificate made by the openssl CLI (node cannot self-sign). */
export function makeSigningKey(): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'se-sns-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      '-days', '2', '-subj', '/CN=sns.amazonaws.com'], { stdio: 'ignore' });
    return { key: readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Serves certificates from memory and records every URL asked for. */
export function fakeFetcher(files: Record<string, string>) {
  const calls: string[] = [];
  const fetcher: SnsFetcher = async (url) => {
    calls.push(url);
    return url in files ? { status: 200, body: files[url] } : { status: 404, body: 'not found' };
  };
  return { fetcher, calls };
}

export function signEnvelope(fields: Omit<SnsEnvelope, 'Signature' | 'SignatureVersion' | 'SigningCertURL'> & Partial<SnsEnvelope>, key: string, version: '1' | '2' = '1'): SnsEnvelope {
  const m = { SignatureVersion: version, SigningCertURL: CERT_URL, Signature: '', ...fields } as SnsEnvelope;
  const signer = createSign(version === '2' ? 'RSA-SHA256' : 'RSA-SHA1');
  signer.update(stringToSign(m));
  m.Signature = signer.sign(key, 'base64');
  return m;
}

export function notification(sesEvent: unknown, key: string, version: '1' | '2' = '1', extra: Partial<SnsEnvelope> = {}): SnsEnvelope {
  return signEnvelope({ Type: 'Notification', MessageId: newId(), TopicArn: TOPIC, Message: JSON.stringify(sesEvent), Timestamp: new Date().toISOString(), ...extra }, key, version);
}

export const hmac = (body: string, secret = WEBHOOK_SECRET) => createHmac('sha256', secret).update(body).digest('hex');

/** The app with an in-memory certificate fetcher, listening on 127.0.0.1. */
export async function startEventsApp(db: Db, url: string, fetcher: SnsFetcher, env: Record<string, string> = {}) {
  const config = testConfig(url, { SES_WEBHOOK_SECRET: WEBHOOK_SECRET, SNS_TOPIC_ARNS: `${TOPIC},arn:aws:sns:us-east-1:123456789012:other`, ...env });
  const app = await buildApp({ config, db, logger: createLogger('silent'), snsFetcher: fetcher });
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, baseUrl, close: () => app.close() };
}

export async function postSns(baseUrl: string, envelope: unknown, type = (envelope as SnsEnvelope).Type) {
  const res = await fetch(`${baseUrl}/webhooks/ses`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': type },
    body: JSON.stringify(envelope),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

export async function postSigned(baseUrl: string, body: unknown, signature?: string) {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(`${baseUrl}/webhooks/ses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-amz-sns-signature': signature ?? hmac(raw) },
    body: raw,
  });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, requestId: res.headers.get('x-request-id') };
}

export interface Seeded {
  jobId: string;
  ids: string[];
  recipients: string[];
}

/** A proxy job and n messages in status `sent`, inserted directly as the dispatcher would leave them. */
export async function seedMessages(db: Db, tenantId: string, n: number, options: { messageType?: 'newsletter' | 'transactional'; status?: string; domain?: string } = {}): Promise<Seeded> {
  const jobId = newId();
  await db.query(
    `INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, idempotency_key)
     VALUES ($1, $2, $3, 'news@example.com', 'Hello', '<p>hi</p>', 'hi', $4)`,
    [jobId, tenantId, options.messageType ?? 'newsletter', jobId],
  );
  const ids = Array.from({ length: n }, () => newId());
  const recipients = ids.map((id) => `User.${id.slice(-12)}@${options.domain ?? 'example.org'}`);
  const status = options.status ?? 'sent';
  await db.query(
    `INSERT INTO messages (id, tenant_id, proxy_job_id, recipient, status, provider_message_id, sent_at)
     SELECT id, $1, $2, r, $5, CASE WHEN $5 = 'queued' THEN NULL ELSE 'ses-' || id END, CASE WHEN $5 = 'queued' THEN NULL ELSE now() END
       FROM unnest($3::uuid[], $4::text[]) AS u(id, r)`,
    [tenantId, jobId, ids, recipients, status],
  );
  return { jobId, ids, recipients };
}

export async function messageRow(db: Db, id: string) {
  const { rows } = await db.query('SELECT status, provider_message_id FROM messages WHERE id = $1', [id]);
  return rows[0];
}

export async function timeline(db: Db, id: string) {
  const { rows } = await db.query('SELECT type, data, occurred_at FROM message_events WHERE message_id = $1 ORDER BY occurred_at, recorded_at', [id]);
  return rows;
}

export async function suppression(db: Db, tenantId: string, email: string) {
  const { rows } = await db.query('SELECT reason, source, source_event_id, diagnostic FROM suppressions WHERE tenant_id = $1 AND email = $2', [tenantId, email.toLowerCase()]);
  return rows[0];
}

/** An SES event-publishing record for one message. */
export function sesRecord(eventType: string, providerId: string, recipient: string, detail: Record<string, unknown> = {}, headers: { name: string; value: string }[] = []) {
  return {
    eventType,
    mail: { timestamp: '2025-03-01T10:00:00.000Z', messageId: providerId, source: 'news@example.com', destination: [recipient], headersTruncated: false, headers },
    ...detail,
  };
}
