import type { Queryable } from '../db/pool.ts';
import { newId } from '../ids.ts';
import { advanceStatusSql } from '../outbox/advance.ts';

export type EngagementType = 'open' | 'click';

const TARGET: Record<EngagementType, string> = { open: 'opened', click: 'clicked' };

/**
 * Records one open or click of a message, under the message's own tenant, and moves its status
 * forward in the same statement. Every request is a row (recipients really do open twice; unique
 * opens are counted per message when reading), so dedupe_key stays NULL.
 *
 * The move is the outbox's advanceStatusSql (forward only, shared with provider events), with a
 * floor: only a message that has been sent (rank >= sent) moves. src/events'
 * applyEvents() would also raise queued/sending messages, and a `sending` one turned `opened`
 * would make the dispatcher's write-back (which expects sending) drop its send record.
 *
 * Returns false when the message does not exist (nothing is written).
 */
export async function recordEngagement(
  db: Queryable,
  messageId: string,
  type: EngagementType,
  data: Record<string, unknown>,
): Promise<boolean> {
  const { rows } = await db.query<{ recorded: boolean }>({
    name: 'tracking_record_v2',
    text: `WITH msg AS (
             SELECT id, tenant_id FROM messages WHERE id = $1
           ), ev AS (
             INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, data, dedupe_key)
             SELECT $2, tenant_id, id, $3, now(), $4::jsonb, NULL FROM msg
             RETURNING id
           ), target AS (
             SELECT id AS message_id, $5::text AS target_status, NULL::text AS learn_provider_id FROM msg
           ), moved AS (
             ${advanceStatusSql('target', { floor: 'sent' })}
           )
           SELECT EXISTS (SELECT 1 FROM ev) AS recorded, (SELECT count(*) FROM moved) AS moved`,
    values: [messageId, newId(), type, JSON.stringify(data), TARGET[type]],
  });
  return rows[0].recorded;
}
