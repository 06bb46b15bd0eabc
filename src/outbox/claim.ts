import type { Channel, ChannelContent } from '../channels/types.ts';
import type { Queryable } from '../db/pool.ts';
import type { ContactFields } from '../jobs/render.ts';
import type { MessageToCompose } from '../sending/compose.ts';

/** Why a claimed message must not be sent after all (its state changed since it was queued). */
export type SkipReason = 'suppressed' | 'cancelled' | 'expired' | 'unsubscribed' | 'opted_out';

export interface ClaimedMessage {
  id: string;
  tenantId: string;
  recipient: string;
  attempts: number;
  /** Local time after which this worker must not start the send: the lease may be gone. */
  leaseDeadline: number;
  /** Local time at which the message's send window closes (a list job's window_end), if any. */
  expiresAt: number | null;
  skip: SkipReason | null;
  channel: Channel;
  /** An SMS or WhatsApp message's content (channel_messages); sent by its channel's transport. */
  content?: ChannelContent;
  /** A proxy send's content, as submitted; `attachmentsOf` names the send whose attachments it carries. */
  proxy?: Omit<MessageToCompose, 'id' | 'recipient'> & { attachmentsOf?: string };
  /** A list send job's message: rendered per recipient from the job's template. */
  list?: { jobId: string; listId: string; subscriberId: string; preferences: Record<string, unknown>; contact?: ContactFields };
}

/**
 * Claims up to `limit` due messages, plus any whose lease expired (their worker died), in one
 * statement: SKIP LOCKED lets any number of workers claim side by side without waiting on each
 * other. The claim sets the lease and counts the attempt (given back by releaseMessages when the
 * send never starts); the content comes back with it. `held` are the messages this worker still
 * has in hand (sending, or its outcome not yet written): never reclaimed by it, even past their lease.
 */
/** The claim: $1 limit, $2 worker id, $3 lease seconds, $4 ids this worker still holds. */
const CLAIM_SQL = `WITH urgent AS (
  -- OTP SMS (priority > 0) go first, from an index that holds only them (migration 021).
  SELECT id FROM messages m WHERE status = 'queued' AND priority > 0 AND next_attempt_at <= now()
  ORDER BY priority DESC, next_attempt_at LIMIT $1 FOR UPDATE OF m SKIP LOCKED
), due AS (
  SELECT id FROM messages m WHERE status = 'queued' AND priority = 0 AND next_attempt_at <= now()
    -- Guardrail (src/events/guardrail.ts): a paused tenant's newsletters wait; transactional goes on.
    AND NOT EXISTS (SELECT 1 FROM tenants t
                     WHERE t.id = m.tenant_id AND t.newsletter_paused_at IS NOT NULL
                       AND (m.send_job_id IS NOT NULL
                            OR EXISTS (SELECT 1 FROM proxy_jobs j WHERE j.id = m.proxy_job_id AND j.message_type = 'newsletter')))
    -- A paused campaign's messages wait where they are (src/jobs/campaigns.ts).
    AND NOT EXISTS (SELECT 1 FROM send_jobs pj WHERE pj.id = m.send_job_id AND pj.status = 'paused')
  -- A message past its expires_at (an OTP, a closed window) is claimed too, to be settled as expired below.
  ORDER BY next_attempt_at LIMIT greatest(0, $1 - (SELECT count(*) FROM urgent)) FOR UPDATE OF m SKIP LOCKED
), expired AS (
  SELECT id FROM messages WHERE status = 'sending' AND lease_until < now()
    AND NOT (leased_by = $2 AND id = ANY($4::uuid[]))
  LIMIT $1 FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE messages m
     SET status = 'sending', attempts = m.attempts + 1, leased_by = $2,
         lease_until = now() + make_interval(secs => $3), updated_at = now()
   WHERE m.id IN (SELECT id FROM urgent UNION ALL SELECT id FROM due UNION ALL SELECT id FROM expired)
  RETURNING m.id, m.tenant_id, m.proxy_job_id, m.send_job_id, m.subscriber_id, m.recipient, m.headers, m.attempts, m.expires_at, m.channel
)
-- Checked again at send time: a suppression, an unsubscribe, a cancel or the window's end
-- since the message was queued means it is not sent.
SELECT c.id, c.tenant_id, c.recipient, c.headers, c.attempts,
       -- Relative, so the worker's deadline does not depend on its clock agreeing with ours.
       (extract(epoch FROM c.expires_at - now()) * 1000)::float8 AS expires_in_ms,
       j.from_address, j.subject, j.html, j.text_body, j.list_unsubscribe,
       j.to_header, j.cc_header, j.reply_to, CASE WHEN j.attachment_count > 0 THEN j.id END AS attachments_of,
       c.send_job_id, sj.list_id, c.subscriber_id, lm.preferences, ct.first_name, ct.last_name, ct.properties,
       c.channel, ch.body, ch.sender_id, ch.flow, ch.segments, ch.template, ch.phone_number_id,
       CASE WHEN sup.email IS NOT NULL THEN 'suppressed'
            WHEN c.channel = 'sms' AND EXISTS (SELECT 1 FROM sms_opt_outs o WHERE o.tenant_id = c.tenant_id AND o.phone = c.recipient) THEN 'opted_out'
            WHEN c.expires_at <= now() THEN 'expired'
            WHEN sj.id IS NOT NULL AND sj.status NOT IN ('running', 'paused') THEN 'cancelled'
            WHEN sj.id IS NOT NULL AND lm.status IS DISTINCT FROM 'active' THEN 'unsubscribed'
       END AS skip
  FROM claimed c
  LEFT JOIN proxy_jobs j ON j.id = c.proxy_job_id
  LEFT JOIN send_jobs sj ON sj.id = c.send_job_id
  LEFT JOIN list_members lm ON lm.tenant_id = c.tenant_id AND lm.list_id = sj.list_id AND lm.subscriber_id = c.subscriber_id
  LEFT JOIN channel_messages ch ON ch.message_id = c.id
  LEFT JOIN subscribers ct ON ct.tenant_id = c.tenant_id AND ct.id = c.subscriber_id
  LEFT JOIN suppressions sup ON sup.tenant_id = c.tenant_id AND sup.email = lower(c.recipient)`;

interface ClaimRowCommon {
  id: string;
  tenant_id: string;
  recipient: string;
  headers: Record<string, string>;
  attempts: number;
  expires_in_ms: number | null;
  skip: SkipReason | null;
  channel: Channel;
  // An SMS or WhatsApp message's content (null for email).
  body: string | null;
  sender_id: string | null;
  flow: ChannelContent['flow'];
  segments: number | null;
  template: ChannelContent['template'];
  phone_number_id: string | null;
}

/** A proxy send's message comes with its job's content; a list job's with its member. */
type ClaimRow = ClaimRowCommon & (
  | {
      send_job_id: null; from_address: string; subject: string; html: string; text_body: string; list_unsubscribe: MessageToCompose['listUnsubscribe'];
      to_header: string[] | null; cc_header: string[] | null; reply_to: string[] | null; attachments_of: string | null;
    }
  | {
      send_job_id: string; list_id: string; subscriber_id: string; preferences: Record<string, unknown> | null;
      first_name: string | null; last_name: string | null; properties: Record<string, unknown> | null;
    }
);

export async function claimMessages(db: Queryable, workerId: string, limit: number, leaseSeconds: number, held: string[] = []): Promise<ClaimedMessage[]> {
  const now = Date.now();
  const leaseDeadline = now + leaseSeconds * 1000;
  const { rows } = await db.query<ClaimRow>({ name: 'outbox_claim_v3', text: CLAIM_SQL, values: [limit, workerId, leaseSeconds, held] });
  return rows.map((r) => ({
    id: r.id,
    tenantId: r.tenant_id,
    recipient: r.recipient,
    attempts: r.attempts,
    leaseDeadline,
    expiresAt: r.expires_in_ms === null ? null : now + r.expires_in_ms,
    skip: r.skip,
    channel: r.channel,
    ...(r.channel !== 'email'
      ? { content: { body: r.body, senderId: r.sender_id, flow: r.flow, segments: r.segments, template: r.template, phoneNumberId: r.phone_number_id } as ChannelContent }
      : r.send_job_id === null
        ? {
            proxy: {
              from: r.from_address, subject: r.subject, html: r.html, text: r.text_body, headers: r.headers, listUnsubscribe: r.list_unsubscribe,
              toHeader: r.to_header, cc: r.cc_header, replyTo: r.reply_to, attachmentsOf: r.attachments_of ?? undefined,
            },
          }
        : {
            list: {
              jobId: r.send_job_id, listId: r.list_id, subscriberId: r.subscriber_id, preferences: r.preferences ?? {},
              contact: { first_name: r.first_name, last_name: r.last_name, properties: r.properties ?? {} },
            },
          }),
  }));
}

/**
 * Gives claimed-but-unstarted messages back (graceful shutdown, too close to the lease's end) and
 * takes back the attempt their claim counted. Returns how many were still this worker's.
 */
export async function releaseMessages(db: Queryable, workerId: string, ids: string[]): Promise<number> {
  if (!ids.length) return 0;
  const { rowCount } = await db.query(
    `UPDATE messages SET status = 'queued', attempts = attempts - 1, lease_until = NULL, leased_by = NULL, updated_at = now()
      WHERE id = ANY($1::uuid[]) AND status = 'sending' AND leased_by = $2`,
    [ids, workerId],
  );
  return rowCount ?? 0;
}
