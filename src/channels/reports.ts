import type { Queryable } from '../db/pool.ts';
import type { GroupBy } from '../observability/reports.ts';
import type { Window } from '../observability/cursor.ts';
import type { TextChannel } from './types.ts';

/**
 * GET /v1/reports/deliverability?channel=sms|whatsapp: the same rows as the email report, counted
 * from the channel's own messages of the window (messages_channel_created, a partial index with no
 * email rows) and their timelines: sent, delivered, failed (as `bounced`), not sent because opted
 * out or expired (as `suppressed`); complaints do not exist on these channels.
 */
export async function channelDeliverability(db: Queryable, tenantId: string, channel: TextChannel, window: Window, groupBy: GroupBy) {
  const { rows } = await db.query<{ period: Date; sent: number; delivered: number; failed: number; suppressed: number }>(
    `SELECT date_trunc($4, e.occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period,
            count(*) FILTER (WHERE e.type = 'send')::int AS sent,
            count(*) FILTER (WHERE e.type = 'delivery')::int AS delivered,
            count(*) FILTER (WHERE e.type = 'failure')::int AS failed,
            count(*) FILTER (WHERE e.type IN ('suppressed', 'expired'))::int AS suppressed
       FROM messages m JOIN message_events e ON e.message_id = m.id
      WHERE m.tenant_id = $1 AND m.channel = $5 AND m.created_at <= $3 AND m.created_at >= $2::timestamptz - interval '3 days'
        AND e.occurred_at >= $2 AND e.occurred_at <= $3
      GROUP BY 1 ORDER BY 1`,
    [tenantId, window.from, window.to, groupBy, channel],
  );
  return rows.map((r) => ({
    period: r.period.toISOString(), sent: r.sent, delivered: r.delivered, bounced: r.failed, complained: 0, suppressed: r.suppressed,
    delivery_rate: r.sent > 0 ? r.delivered / r.sent : 0,
  }));
}
