import type { Queryable } from '../../db/pool.ts';
import { invalid } from '../../errors.ts';
import { enqueueChannelMessage, type Accepted } from '../enqueue.ts';
import { FLOW_PRIORITY, type SmsFlow } from '../types.ts';
import { e164 } from './phone.ts';
import { countSegments } from './segments.ts';
import { assertApprovedSenderId } from './sender-ids.ts';

/** POST /v1/sms/send. */
export interface SmsSendRequest {
  to: string;
  body: string;
  senderId: string;
  flow: SmsFlow;
  idempotency_key?: string;
}

export interface SmsSettings {
  /** An OTP not sent within this many seconds expires. */
  otpValiditySeconds: number;
  /** Longest accepted text, in segments. */
  maxSegments: number;
  idempotencyTtlHours: number;
}

/**
 * Validates (E.164 recipient, approved sender id, length in segments) and queues one SMS. OTPs go
 * ahead of STANDARD messages in the claim and expire when not sent within their validity.
 */
export async function sendSms(db: Queryable, tenantId: string, req: SmsSendRequest, settings: SmsSettings): Promise<Accepted & { segments: number; encoding: string }> {
  const to = e164(req.to);
  if (!req.body.trim()) throw invalid('body must not be empty');
  const { segments, encoding } = countSegments(req.body);
  if (segments > settings.maxSegments) throw invalid(`body is ${segments} segments; at most ${settings.maxSegments} are accepted`, 'body_too_long');
  await assertApprovedSenderId(db, tenantId, req.senderId);
  const accepted = await enqueueChannelMessage(
    db,
    tenantId,
    {
      channel: 'sms', recipient: to, priority: FLOW_PRIORITY[req.flow], body: req.body, senderId: req.senderId, flow: req.flow,
      segments, encoding, expiresInSeconds: req.flow === 'OTP' ? settings.otpValiditySeconds : undefined,
    },
    { key: req.idempotency_key, request: req, ttlHours: settings.idempotencyTtlHours },
  );
  return { ...accepted, segments, encoding };
}
