/**
 * The one declaration of a message's statuses and their forward-only order. The CHECK on
 * messages.status (migration 001) and the SQL function message_status_rank()
 * (src/db/functions/010_outbox.sql) mirror it; test/outbox/status.test.ts holds them equal. Events may only raise the rank; the terminal statuses share the top rank, so
 * none of them is ever replaced (a complaint still lands on a delivered, opened or clicked message,
 * which rank lower).
 */
export const MESSAGE_STATUS_RANK = {
  queued: 0,
  sending: 1,
  sent: 2,
  delivered: 3,
  opened: 4,
  clicked: 5,
  bounced: 100,
  complained: 100,
  suppressed: 100,
  failed: 100,
  expired: 100,
  cancelled: 100,
} as const;

export type MessageStatus = keyof typeof MESSAGE_STATUS_RANK;

export const MESSAGE_STATUSES = Object.keys(MESSAGE_STATUS_RANK) as MessageStatus[];

export function isMessageStatus(s: string): s is MessageStatus {
  return Object.hasOwn(MESSAGE_STATUS_RANK, s);
}
