import type { Queryable } from '../db/pool.ts';

export interface GuardrailRules {
  complaintRatePercent: number;
  bounceRatePercent: number;
  /** Below this many sends in the window, rates are not judged (a handful of sends says little). */
  minSent: number;
  windowDays: number;
}

export interface PausedTenant {
  tenantId: string;
  reason: string;
}

/**
 * Pauses newsletter sending for the given tenants whose rolling complaint rate or hard-bounce rate
 * (over sends, last `windowDays` UTC days) passes the limit. Reads at most windowDays counter rows
 * per tenant; a tenant already paused is left as it is.
 */
export async function evaluateGuardrail(db: Queryable, tenantIds: string[], rules: GuardrailRules): Promise<PausedTenant[]> {
  if (!tenantIds.length) return [];
  const { rows } = await db.query<{ id: string; reason: string }>(
    `WITH w AS (
       SELECT tenant_id, sum(sent) AS sent, sum(complained) AS complained, sum(hard_bounced) AS bounced
         FROM tenant_event_counters
        WHERE tenant_id = ANY($1::uuid[]) AND day > (now() AT TIME ZONE 'UTC')::date - $2::int
        GROUP BY tenant_id
     ), judged AS (
       SELECT tenant_id, sent, complained, bounced,
              complained * 100.0 / sent > $3 AS over_complaints, bounced * 100.0 / sent > $4 AS over_bounces
         FROM w WHERE sent >= $5
     )
     UPDATE tenants t
        SET newsletter_paused_at = now(),
            newsletter_pause_reason = concat_ws('; ',
              CASE WHEN j.over_complaints THEN format('complaint rate %s%% (%s of %s sent in %s days) is above %s%%',
                round(j.complained * 100.0 / j.sent, 3), j.complained, j.sent, $2::int, $3::numeric) END,
              CASE WHEN j.over_bounces THEN format('hard-bounce rate %s%% (%s of %s sent in %s days) is above %s%%',
                round(j.bounced * 100.0 / j.sent, 3), j.bounced, j.sent, $2::int, $4::numeric) END)
       FROM judged j
      WHERE t.id = j.tenant_id AND t.newsletter_paused_at IS NULL AND (j.over_complaints OR j.over_bounces)
     RETURNING t.id, t.newsletter_pause_reason AS reason`,
    [tenantIds, rules.windowDays, rules.complaintRatePercent, rules.bounceRatePercent, rules.minSent],
  );
  return rows.map((r) => ({ tenantId: r.id, reason: r.reason }));
}

export interface NewsletterState {
  paused: boolean;
  pausedAt: Date | null;
  reason: string | null;
}

export async function newsletterState(db: Queryable, tenantId: string): Promise<NewsletterState | null> {
  const { rows } = await db.query<{ newsletter_paused_at: Date | null; newsletter_pause_reason: string | null }>(
    'SELECT newsletter_paused_at, newsletter_pause_reason FROM tenants WHERE id = $1',
    [tenantId],
  );
  if (!rows[0]) return null;
  return { paused: rows[0].newsletter_paused_at !== null, pausedAt: rows[0].newsletter_paused_at, reason: rows[0].newsletter_pause_reason };
}

/**
 * An operator's decision to send newsletters again. Returns the state before, or null when the
 * tenant does not exist. The guardrail judges again on the next bounce or complaint.
 */
export async function resumeNewsletters(db: Queryable, tenantId: string): Promise<NewsletterState | null> {
  const { rows } = await db.query<{ newsletter_paused_at: Date | null; newsletter_pause_reason: string | null }>(
    `UPDATE tenants t SET newsletter_paused_at = NULL, newsletter_pause_reason = NULL
       FROM (SELECT id, newsletter_paused_at, newsletter_pause_reason FROM tenants WHERE id = $1 FOR UPDATE) before
      WHERE t.id = before.id
     RETURNING before.newsletter_paused_at, before.newsletter_pause_reason`,
    [tenantId],
  );
  if (!rows[0]) return null;
  return { paused: rows[0].newsletter_paused_at !== null, pausedAt: rows[0].newsletter_paused_at, reason: rows[0].newsletter_pause_reason };
}
