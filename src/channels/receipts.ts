import type { Queryable } from '../db/pool.ts';
import { newId } from '../ids.ts';
import { advanceStatusSql } from '../outbox/advance.ts';
import type { Receipt } from './types.ts';

/**
 * Applies providers' receipts in one statement: each is matched to its message by provider id and
 * channel, written to the timeline once (natural key: message, event type), and raises the status
 * forward only (message_status_rank, migration 003): delivered, read (status `opened`), failed.
 * A `sent` receipt only confirms what the dispatcher recorded and changes nothing. The timeline
 * rows become sms.* / whatsapp.* outbound webhooks through the message_events trigger.
 * Returns the provider ids that matched no message (a receipt can overtake the dispatcher's
 * record of the send: callers try those again shortly).
 */
const APPLY_RECEIPTS_SQL = `
WITH r AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
    AS r(event_id, channel, provider_id, outcome, occurred_at, error)
), typed AS (
  SELECT r.*, CASE r.outcome WHEN 'delivered' THEN 'delivery' WHEN 'read' THEN 'read' ELSE 'failure' END AS type,
         CASE r.outcome WHEN 'delivered' THEN 'delivered' WHEN 'read' THEN 'opened' ELSE 'failed' END AS target
    FROM r WHERE r.outcome <> 'sent'
), matched AS (
  SELECT t.*, m.id AS message_id, m.tenant_id, m.sent_at
    FROM typed t JOIN messages m ON m.provider_message_id = t.provider_id AND m.channel = t.channel
), ins AS (
  INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, data, dedupe_key)
  -- Providers stamp whole seconds: a receipt is never placed before the send it reports on.
  SELECT event_id, tenant_id, message_id, type, greatest(occurred_at, sent_at),
         jsonb_strip_nulls(jsonb_build_object('provider_message_id', provider_id, 'error', error)),
         'rcpt:' || message_id || ':' || type
    FROM matched
  ON CONFLICT (dedupe_key) DO NOTHING
  RETURNING message_id
), best AS (
  SELECT DISTINCT ON (message_id) message_id, target, error FROM matched
   WHERE message_id IN (SELECT message_id FROM ins)
   ORDER BY message_id, message_status_rank(target) DESC
), moved AS (
  ${advanceStatusSql(
    `(SELECT message_id, target AS target_status, NULL::text AS learn_provider_id,
             CASE WHEN target = 'failed' THEN error END AS error FROM best)`,
    { error: true },
  )}
)
SELECT DISTINCT r.provider_id FROM r WHERE r.outcome <> 'sent'
   AND NOT EXISTS (SELECT 1 FROM matched x WHERE x.provider_id = r.provider_id AND x.channel = r.channel)`;

export async function applyReceipts(db: Queryable, receipts: Receipt[]): Promise<{ unmatched: string[] }> {
  if (!receipts.length) return { unmatched: [] };
  const { rows } = await db.query<{ provider_id: string }>(APPLY_RECEIPTS_SQL, [
    receipts.map(() => newId()),
    receipts.map((r) => r.channel),
    receipts.map((r) => r.providerMessageId),
    receipts.map((r) => r.outcome),
    receipts.map((r) => r.occurredAt ?? new Date()),
    receipts.map((r) => r.error ?? null),
  ]);
  return { unmatched: rows.map((r) => r.provider_id) };
}
