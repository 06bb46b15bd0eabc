import type { Queryable } from '../db/pool.ts';
import type { Window } from './cursor.ts';

export type GroupBy = 'day' | 'week' | 'month';

/**
 * Deliverability buckets from the per-tenant-per-day roll-up (tenant_event_counters, kept by a
 * trigger as events arrive), never from the raw timeline. Days are UTC days of arrival; weeks
 * start on Monday (ISO, date_trunc's week) and months on the 1st. Empty buckets are omitted.
 * The window selects whole UTC days: a day belongs if it overlaps [from, to].
 */
export async function deliverabilityReport(db: Queryable, tenantId: string, window: Window, groupBy: GroupBy) {
  const { rows } = await db.query<{ period: Date; sent: number; delivered: number; bounced: number; complained: number; suppressed: number }>(
    `SELECT date_trunc($4, day::timestamp) AT TIME ZONE 'UTC' AS period,
            sum(sent)::bigint AS sent, sum(delivered)::bigint AS delivered,
            sum(hard_bounced + soft_bounced)::bigint AS bounced, sum(complained)::bigint AS complained,
            sum(provider_suppressed)::bigint AS suppressed
       FROM tenant_event_counters
      WHERE tenant_id = $1 AND day >= ($2::timestamptz AT TIME ZONE 'UTC')::date AND day <= ($3::timestamptz AT TIME ZONE 'UTC')::date
      GROUP BY 1
     HAVING sum(sent + delivered + hard_bounced + soft_bounced + complained + provider_suppressed) > 0
      ORDER BY 1`,
    [tenantId, window.from, window.to, groupBy],
  );
  // delivery_rate = delivered / sent, 0 when nothing was sent (never null).
  return rows.map((r) => ({
    period: r.period.toISOString(),
    sent: r.sent,
    delivered: r.delivered,
    bounced: r.bounced,
    complained: r.complained,
    suppressed: r.suppressed,
    delivery_rate: r.sent > 0 ? r.delivered / r.sent : 0,
  }));
}
