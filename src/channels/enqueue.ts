import type { Queryable } from '../db/pool.ts';
import { DomainError } from '../errors.ts';
import { newId } from '../ids.ts';
import { requestHash } from '../sending/idempotency.ts';
import { ENQUEUE_WAKE, enqueueCtes } from '../outbox/enqueue.ts';
import type { SmsFlow, TextChannel, WhatsAppTemplate } from './types.ts';

export interface ChannelMessageInput {
  channel: TextChannel;
  recipient: string;
  /** Claim order (FLOW_PRIORITY); 0 by default. */
  priority?: number;
  /** Not sent after this many seconds: the message ends `expired` (OTP validity). */
  expiresInSeconds?: number;
  body?: string;
  senderId?: string;
  flow?: SmsFlow;
  segments?: number;
  encoding?: 'GSM-7' | 'UCS-2';
  template?: WhatsAppTemplate;
  phoneNumberId?: string;
}

export interface Accepted {
  messageId: string;
  /** The idempotency key matched an earlier identical request: nothing new was queued. */
  replayed: boolean;
}

/**
 * Accepts one SMS or WhatsApp message in ONE statement, as src/sending/submit.ts does for email:
 * the idempotency record (keys are namespaced by channel, so `abc` for SMS and for email are two
 * keys; the record's proxy_job_id holds the message id), the outbox's enqueue (the message, with its
 * channel and priority, and the NOTIFY that wakes the dispatcher at commit) and its content. Without
 * a key, the message is always accepted.
 */
const ENQUEUE_SQL = `
WITH key AS (
  INSERT INTO idempotency_keys (tenant_id, key, request_hash, proxy_job_id, expires_at)
  SELECT $1, $2, $3, $4, now() + make_interval(hours => $5) WHERE $2::text IS NOT NULL
  ON CONFLICT (tenant_id, key) DO UPDATE
    SET request_hash = EXCLUDED.request_hash, proxy_job_id = EXCLUDED.proxy_job_id,
        created_at = now(), expires_at = EXCLUDED.expires_at
    WHERE idempotency_keys.expires_at <= now()
  RETURNING proxy_job_id
), go AS (
  SELECT 1 FROM key UNION ALL SELECT 1 WHERE $2::text IS NULL
), ${enqueueCtes(`
  SELECT $4::uuid AS id, $1::uuid AS tenant_id, NULL::uuid AS proxy_job_id, NULL::uuid AS send_job_id, NULL::uuid AS subscriber_id,
         $7::text AS recipient, '{}'::jsonb AS tags, '{}'::jsonb AS headers, now() AS next_attempt_at,
         now() + make_interval(secs => $9::int) AS expires_at, $6::text AS channel, $8::smallint AS priority
    FROM go`, { channel: true })}, content AS (
  INSERT INTO channel_messages (message_id, tenant_id, channel, body, sender_id, flow, segments, encoding, template, phone_number_id)
  SELECT id, $1, $6, $10, $11, $12, $13, $14, $15, $16 FROM enqueued
)
SELECT EXISTS (SELECT 1 FROM go) AS taken, ${ENQUEUE_WAKE}`;

export async function enqueueChannelMessage(
  db: Queryable,
  tenantId: string,
  input: ChannelMessageInput,
  idempotency: { key?: string; request: unknown; ttlHours: number },
): Promise<Accepted> {
  const messageId = newId();
  const key = idempotency.key === undefined ? null : `${input.channel}:${idempotency.key}`;
  const hash = requestHash(idempotency.request);
  const { rows } = await db.query<{ taken: boolean }>(ENQUEUE_SQL, [
    tenantId, key, hash, messageId, idempotency.ttlHours,
    input.channel, input.recipient, input.priority ?? 0, input.expiresInSeconds ?? null,
    input.body ?? null, input.senderId ?? null, input.flow ?? null, input.segments ?? null, input.encoding ?? null,
    input.template ?? null, input.phoneNumberId ?? null,
  ]);
  if (rows[0].taken) return { messageId, replayed: false };
  const existing = await db.query<{ request_hash: string; proxy_job_id: string }>(
    'SELECT request_hash, proxy_job_id FROM idempotency_keys WHERE tenant_id = $1 AND key = $2',
    [tenantId, key],
  );
  if (existing.rows[0]?.request_hash === hash) return { messageId: existing.rows[0].proxy_job_id, replayed: true };
  throw new DomainError('conflict', 'idempotency_conflict', 'idempotency_key was already used with a different request body');
}
