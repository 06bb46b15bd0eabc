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
  -- The due index read in order up to the limit, what waits left out (src/db/functions/010_outbox.sql).
  SELECT outbox_due(($1 - (SELECT count(*) FROM urgent))::integer) AS id
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
  -- Each lookup is by key for the claimed rows only (OFFSET 0 keeps it a per-row index probe): a
  -- join the planner turns into hashing all of list_members or proxy_jobs costs O(table) per claim.
  FROM claimed c
  LEFT JOIN LATERAL (SELECT * FROM proxy_jobs j WHERE j.id = c.proxy_job_id OFFSET 0) j ON true
  LEFT JOIN LATERAL (SELECT sj.id, sj.list_id, sj.status FROM send_jobs sj WHERE sj.id = c.send_job_id OFFSET 0) sj ON true
  LEFT JOIN LATERAL (SELECT lm.preferences, lm.status FROM list_members lm
                      WHERE lm.tenant_id = c.tenant_id AND lm.list_id = sj.list_id AND lm.subscriber_id = c.subscriber_id OFFSET 0) lm ON true
  LEFT JOIN LATERAL (SELECT * FROM channel_messages ch WHERE ch.message_id = c.id OFFSET 0) ch ON true
  LEFT JOIN LATERAL (SELECT ct.first_name, ct.last_name, ct.properties FROM subscribers ct
                      WHERE ct.tenant_id = c.tenant_id AND ct.id = c.subscriber_id OFFSET 0) ct ON true
  LEFT JOIN LATERAL (SELECT sup.email FROM suppressions sup WHERE sup.tenant_id = c.tenant_id AND sup.email = lower(c.recipient) OFFSET 0) sup ON true`;

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
  const { rows } = await db.query<ClaimRow>({ name: 'outbox_claim_v4', text: CLAIM_SQL, values: [limit, workerId, leaseSeconds, held] });
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
