/**
 * The forward-only status move shared by provider events (src/events/ingest.ts) and engagement
 * (src/tracking/record.ts), as a statement for the caller's own CTE chain. `source` names rows
 * (message_id, target_status, learn_provider_id): each message moves to its target when that ranks
 * higher (message_status_rank, src/outbox/status.ts), and learns a provider id it lacked.
 * `floor`: only messages at or above this status move (engagement: only what was sent).
 * RETURNING m.id.
 */
export function advanceStatusSql(source: string, options: { floor?: 'sent' } = {}): string {
  const floor = options.floor ? `AND message_status_rank(m.status) >= message_status_rank('${options.floor}')` : '';
  return `UPDATE messages m
     SET status = CASE WHEN message_status_rank(m.status) < message_status_rank(s.target_status) THEN s.target_status ELSE m.status END,
         provider_message_id = COALESCE(m.provider_message_id, s.learn_provider_id),
         updated_at = now()
    FROM ${source} s
   WHERE m.id = s.message_id ${floor}
     AND (message_status_rank(m.status) < message_status_rank(s.target_status)
          OR (m.provider_message_id IS NULL AND s.learn_provider_id IS NOT NULL))
  RETURNING m.id`;
}
