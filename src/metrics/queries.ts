import type { Queryable } from '../db/pool.ts';

export interface ScrapeFigures {
  queued: number;
  oldestQueuedSeconds: number;
  sending: number;
  webhookDeliveries: Record<string, number>;
  webhookOldestDueSeconds: number;
  events: Record<string, number>;
}

const WEBHOOK_STATUSES = ['pending', 'delivering', 'succeeded', 'failed'];
const EVENT_COLUMNS = ['sent', 'delivered', 'hard_bounced', 'soft_bounced', 'complained', 'provider_suppressed', 'opened', 'clicked', 'failed', 'delayed'];

/**
 * The gauges read at scrape time, in one round trip. The outbox figures walk the partial indexes
 * messages_due and messages_leased (queued and sending rows only, never the whole table); the
 * feedback totals sum the daily roll-up (a row per tenant per day). Webhook deliveries by status
 * count that table: bounded by its retention, and cached by the caller.
 */
export async function scrapeFigures(db: Queryable): Promise<ScrapeFigures> {
  const { rows } = await db.query<{ queued: string; oldest: number | null; sending: string; deliveries: Record<string, string> | null; due: number | null; events: Record<string, string> | null }>(
    `SELECT (SELECT count(*) FROM messages WHERE status = 'queued') AS queued,
            (SELECT extract(epoch FROM now() - min(created_at))::float8 FROM messages WHERE status = 'queued') AS oldest,
            (SELECT count(*) FROM messages WHERE status = 'sending') AS sending,
            (SELECT jsonb_object_agg(status, n) FROM (SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY status) d) AS deliveries,
            (SELECT extract(epoch FROM now() - min(next_attempt_at))::float8 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()) AS due,
            (SELECT to_jsonb(t) FROM (SELECT ${EVENT_COLUMNS.map((c) => `coalesce(sum(${c}), 0) AS ${c}`).join(', ')} FROM tenant_event_counters) t) AS events`,
  );
  const r = rows[0];
  return {
    queued: Number(r.queued),
    oldestQueuedSeconds: Math.max(0, r.oldest ?? 0),
    sending: Number(r.sending),
    webhookDeliveries: Object.fromEntries(WEBHOOK_STATUSES.map((s) => [s, Number(r.deliveries?.[s] ?? 0)])),
    webhookOldestDueSeconds: Math.max(0, r.due ?? 0),
    events: Object.fromEntries(EVENT_COLUMNS.map((c) => [c, Number(r.events?.[c] ?? 0)])),
  };
}
