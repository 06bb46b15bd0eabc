import type { Queryable } from '../../db/pool.ts';

/** Keywords of an inbound SMS (CTIA/carrier conventions), compared on the trimmed, upper-cased text. */
export const OPT_OUT_KEYWORDS = ['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT'] as const;
export const OPT_IN_KEYWORDS = ['START', 'UNSTOP', 'YES'] as const;

export type InboundKeyword = { action: 'opt_out' | 'opt_in'; keyword: string } | undefined;

export function keywordOf(text: string): InboundKeyword {
  const word = text.trim().toUpperCase();
  if ((OPT_OUT_KEYWORDS as readonly string[]).includes(word)) return { action: 'opt_out', keyword: word };
  if ((OPT_IN_KEYWORDS as readonly string[]).includes(word)) return { action: 'opt_in', keyword: word };
  return undefined;
}

/**
 * Records STOP / START from `phone` to `senderId` for every tenant that had outbound SMS from that
 * sender to that handset (and only those), with one sms.opt_out outbound event per change, in one
 * statement. Returns how many tenants changed.
 */
const RECORD_SQL = `
WITH tenants AS (
  SELECT DISTINCT m.tenant_id FROM messages m JOIN channel_messages c ON c.message_id = m.id
   -- A numeric sender may come back with or without its +.
   WHERE m.recipient = $1 AND m.channel = 'sms' AND ltrim(c.sender_id, '+') = ltrim($2, '+')
), added AS (
  INSERT INTO sms_opt_outs (tenant_id, phone, sender_id, keyword)
  SELECT tenant_id, $1, $2, $4 FROM tenants WHERE $3 = 'opt_out'
  ON CONFLICT (tenant_id, phone) DO NOTHING
  RETURNING tenant_id, created_at
), removed AS (
  DELETE FROM sms_opt_outs o USING tenants t
   WHERE $3 = 'opt_in' AND o.tenant_id = t.tenant_id AND o.phone = $1
  RETURNING o.tenant_id, now() AS created_at
), changed AS (
  SELECT tenant_id, created_at, 'opt_out' AS action FROM added
  UNION ALL SELECT tenant_id, created_at, 'opt_in' FROM removed
), events AS (
  INSERT INTO outbound_events (id, tenant_id, type, payload)
  SELECT uuid_v7(), tenant_id, 'sms.opt_out',
         jsonb_build_object('phone', $1::text, 'sender_id', $2::text, 'action', action, 'keyword', $4::text,
                            'occurred_at', webhook_time(created_at))
    FROM changed WHERE webhook_wanted(tenant_id, 'sms.opt_out')
)
SELECT count(*)::int AS changed FROM changed`;

export async function recordInboundKeyword(db: Queryable, phone: string, senderId: string, keyword: NonNullable<InboundKeyword>): Promise<number> {
  const { rows } = await db.query<{ changed: number }>(RECORD_SQL, [phone, senderId, keyword.action, keyword.keyword]);
  return rows[0].changed;
}

