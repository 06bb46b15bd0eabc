import type { Queryable } from '../db/pool.ts';
import type { Window } from './cursor.ts';

export type GroupBy = 'day' | 'week' | 'month';

/**
 * Reports read the per-day roll-ups the message_events trigger keeps as events arrive
 * (tenant_event_counters, template_event_counters: migrations 003 and 007), never the raw
 * timeline. Days are UTC days of arrival. The window selects whole UTC days: a day belongs if it
 * overlaps [from, to] ($2, $3 below).
 */
const WINDOW_DAYS = `day >= ($2::timestamptz AT TIME ZONE 'UTC')::date AND day <= ($3::timestamptz AT TIME ZONE 'UTC')::date`;

/** Rate with the reference's rule: 0 (never null or NaN) when the denominator is 0. */
const ratio = (n: number, d: number) => (d > 0 ? n / d : 0);

/**
 * Sums of roll-up columns per bucket (`date_trunc`: weeks start on Monday, months on the 1st),
 * oldest first. A bucket whose columns all sum to 0 is empty and omitted, as the reference says.
 */
async function bucketedCounters<K extends string>(db: Queryable, tenantId: string, window: Window, groupBy: GroupBy, columns: Record<K, string>, identity?: string) {
  const sums = Object.entries<string>(columns).map(([name, expr]) => `sum(${expr})::bigint AS ${name}`);
  const any = Object.values<string>(columns).join(' + ');
  // One identity's totals are its template = '' rows of the identity roll-up (migration 012), same columns.
  const source = identity === undefined ? 'tenant_event_counters WHERE tenant_id = $1' : `identity_event_counters WHERE tenant_id = $1 AND identity = $5 AND template = ''`;
  const { rows } = await db.query<Record<K, number> & { period: Date }>(
    `SELECT date_trunc($4, day::timestamp) AT TIME ZONE 'UTC' AS period, ${sums.join(', ')}
       FROM ${source} AND ${WINDOW_DAYS}
      GROUP BY 1
     HAVING sum(${any}) > 0
      ORDER BY 1`,
    identity === undefined ? [tenantId, window.from, window.to, groupBy] : [tenantId, window.from, window.to, groupBy, identity],
  );
  return rows;
}

/**
 * Deliverability buckets. `bounced` = hard + soft bounces, `suppressed` = provider-suppressed
 * events, delivery_rate = delivered / sent.
 */
export async function deliverabilityReport(db: Queryable, tenantId: string, window: Window, groupBy: GroupBy, identity?: string) {
  const rows = await bucketedCounters(db, tenantId, window, groupBy, {
    sent: 'sent', delivered: 'delivered', bounced: 'hard_bounced + soft_bounced', complained: 'complained', suppressed: 'provider_suppressed',
  }, identity);
  return rows.map((r) => ({
    period: r.period.toISOString(),
    sent: r.sent,
    delivered: r.delivered,
    bounced: r.bounced,
    complained: r.complained,
    suppressed: r.suppressed,
    delivery_rate: ratio(r.delivered, r.sent),
  }));
}

/**
 * Engagement buckets. opens/clicks count every event; unique_* count distinct recipients
 * (lower-cased address) per UTC day, kept by the trigger. A week or month bucket sums its days'
 * uniques, so a recipient engaging on several days of the bucket counts once per day: the
 * reference's documented caveat. open_rate = unique_opens / delivered, click_rate =
 * unique_clicks / delivered.
 */
export async function engagementReport(db: Queryable, tenantId: string, window: Window, groupBy: GroupBy, identity?: string) {
  const rows = await bucketedCounters(db, tenantId, window, groupBy, {
    sent: 'sent', delivered: 'delivered', opens: 'opened', unique_opens: 'unique_opened', clicks: 'clicked', unique_clicks: 'unique_clicked',
  }, identity);
  return rows.map((r) => ({
    period: r.period.toISOString(),
    sent: r.sent,
    delivered: r.delivered,
    opens: r.opens,
    unique_opens: r.unique_opens,
    clicks: r.clicks,
    unique_clicks: r.unique_clicks,
    open_rate: ratio(r.unique_opens, r.delivered),
    click_rate: ratio(r.unique_clicks, r.delivered),
  }));
}

/** The identity roll-up's named-template rows in template_event_counters' shape ($5: the identity). */
const TEMPLATES_OF_IDENTITY = `(SELECT tenant_id, day, template, sent, delivered, hard_bounced + soft_bounced AS bounced, complained,
                                      opened, unique_opened, clicked, unique_clicked
                                 FROM identity_event_counters WHERE identity = $5 AND template <> '') AS t`;

/** A roll-up key naming a stored template's version (template_report_key, db/functions/020_event_counters.sql). */
const STORED_KEY = `'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}#[0-9]+$'`;

/**
 * One row per template over the whole window, sorted by sent descending, then template ascending
 * (code-point order, whatever the database collation), then version descending. A list send job
 * or a transactional send made from a stored template counts under that template's id and version
 * (`template` is its slug, the name sends use); a list send job with an inline template under the
 * job's name (`template_id` and `version` null). Messages without a template are not in the roll-up. `template` filters by
 * case-insensitive exact match. Uniques are summed over the window's days (the same caveat as
 * week/month buckets).
 */
export async function templatePerformanceReport(db: Queryable, tenantId: string, window: Window, filters: { template?: string; identity?: string } = {}) {
  const { rows } = await db.query<{
    template: string; template_id: string | null; version: number | null;
    sent: number; delivered: number; opens: number; unique_opens: number; clicks: number; unique_clicks: number; bounced: number; complained: number;
  }>(
    `SELECT coalesce(t.slug, r.key) AS template, k.template_id, k.version, r.sent, r.delivered, r.opens, r.unique_opens, r.clicks, r.unique_clicks, r.bounced, r.complained
       FROM (SELECT template AS key, sum(sent)::bigint AS sent, sum(delivered)::bigint AS delivered,
                    sum(opened)::bigint AS opens, sum(unique_opened)::bigint AS unique_opens,
                    sum(clicked)::bigint AS clicks, sum(unique_clicked)::bigint AS unique_clicks,
                    sum(bounced)::bigint AS bounced, sum(complained)::bigint AS complained
               FROM ${filters.identity === undefined ? 'template_event_counters' : TEMPLATES_OF_IDENTITY}
              WHERE tenant_id = $1 AND ${WINDOW_DAYS}
              GROUP BY template
             HAVING sum(sent + delivered + bounced + complained + opened + clicked) > 0) r
      CROSS JOIN LATERAL (SELECT CASE WHEN r.key ~ ${STORED_KEY} THEN split_part(r.key, '#', 1)::uuid END AS template_id,
                                 CASE WHEN r.key ~ ${STORED_KEY} THEN split_part(r.key, '#', 2)::int END AS version) k
       LEFT JOIN templates t ON t.tenant_id = $1 AND t.id = k.template_id
      WHERE $4::text IS NULL OR lower(coalesce(t.slug, r.key)) = lower($4)
      ORDER BY r.sent DESC, coalesce(t.slug, r.key) COLLATE "C", k.version DESC`,
    filters.identity === undefined ? [tenantId, window.from, window.to, filters.template ?? null] : [tenantId, window.from, window.to, filters.template ?? null, filters.identity],
  );
  return rows.map((r) => ({
    template: r.template,
    template_id: r.template_id,
    version: r.version,
    sent: r.sent,
    delivered: r.delivered,
    opens: r.opens,
    unique_opens: r.unique_opens,
    clicks: r.clicks,
    unique_clicks: r.unique_clicks,
    bounced: r.bounced,
    complained: r.complained,
    // The reference's asymmetric denominators: problems per send, engagement per delivery.
    bounce_rate: ratio(r.bounced, r.sent),
    complaint_rate: ratio(r.complained, r.sent),
    open_rate: ratio(r.unique_opens, r.delivered),
    click_rate: ratio(r.unique_clicks, r.delivered),
  }));
}

/**
 * One row per version of a stored template (src/templates/), newest version first: the
 * transactional sends made from it (proxy_jobs.template_id/template_version, migration 018)
 * whose job was accepted in the window, summed from their per-job counters. Per-job counters keep
 * no unique opens or clicks, so engagement rates count every open and click.
 */
export async function templateVersionPerformance(db: Queryable, tenantId: string, templateId: string, window: Window) {
  const { rows } = await db.query<{
    version: number; sends: number; sent: number; delivered: number; opens: number; clicks: number; bounced: number; complained: number;
  }>(
    `SELECT pj.template_version AS version, count(*)::int AS sends,
            coalesce(sum(c.sent), 0)::bigint AS sent, coalesce(sum(c.delivered), 0)::bigint AS delivered,
            coalesce(sum(c.opened), 0)::bigint AS opens, coalesce(sum(c.clicked), 0)::bigint AS clicks,
            coalesce(sum(c.hard_bounced + c.soft_bounced), 0)::bigint AS bounced, coalesce(sum(c.complained), 0)::bigint AS complained
       FROM proxy_jobs pj LEFT JOIN proxy_job_counters c ON c.proxy_job_id = pj.id
      WHERE pj.tenant_id = $1 AND pj.template_id = $2 AND pj.created_at >= $3 AND pj.created_at < $4
      GROUP BY pj.template_version
      ORDER BY pj.template_version DESC`,
    [tenantId, templateId, window.from, window.to],
  );
  return rows.map((r) => ({
    ...r,
    bounce_rate: ratio(r.bounced, r.sent),
    complaint_rate: ratio(r.complained, r.sent),
    open_rate: ratio(r.opens, r.delivered),
    click_rate: ratio(r.clicks, r.delivered),
  }));
}
