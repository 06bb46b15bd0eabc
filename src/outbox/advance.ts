/**
 * The forward-only status move shared by provider events (src/events/ingest.ts), engagement
 * (src/tracking/record.ts) and SMS/WhatsApp receipts (src/channels/receipts.ts), as a statement
 * for the caller's own CTE chain. `source` names rows (message_id, target_status,
 * learn_provider_id): each message moves to its target when that ranks higher
 * (message_status_rank, src/outbox/status.ts), and learns a provider id it lacked.
 * `floor`: only messages at or above this status move (engagement: only what was sent).
 * `error`: the rows carry `error` too, the message's last_error when it moves (NULL keeps the old one).
 * RETURNING m.id.
 */
export function advanceStatusSql(source: string, options: { floor?: 'sent'; error?: boolean } = {}): string {
  const floor = options.floor ? `AND message_status_rank(m.status) >= message_status_rank('${options.floor}')` : '';
  const moves = 'message_status_rank(m.status) < message_status_rank(s.target_status)';
  const error = options.error ? `last_error = CASE WHEN ${moves} THEN COALESCE(s.error, m.last_error) ELSE m.last_error END,` : '';
  return `UPDATE messages m
     SET status = CASE WHEN ${moves} THEN s.target_status ELSE m.status END,
         provider_message_id = COALESCE(m.provider_message_id, s.learn_provider_id),
         ${error}
         updated_at = now()
    FROM ${source} s
   WHERE m.id = s.message_id ${floor}
     AND (${moves}
          OR (m.provider_message_id IS NULL AND s.learn_provider_id IS NOT NULL))
  RETURNING m.id`;
}
