import type { Config } from '../config.ts';
import type { Queryable } from '../db/pool.ts';
import { budgetLimit } from './rate-limit.ts';

export interface AccountView {
  org: { id: string; name: string; created_at: string };
  transport: { kind: 'capture' | 'smtp' | 'ses' };
  aws: { account_id: null; region: string; sandbox: null } | null;
  send_quota: { max_24_hour: null; max_send_rate: number | null; sent_last_24_hours: number };
  production_access: null;
  cloudformation: null;
  plan: { tier: 'self-hosted'; retention_days: null; api_rate_limit_per_minute: number; send_rate_limit_per_minute: number };
  guardrail: {
    newsletters_paused: boolean;
    paused_at: string | null;
    reason: string | null;
    window_days: number;
    sent: number;
    complaint_rate: number;
    hard_bounce_rate: number;
    limits: { complaint_rate_percent: number; hard_bounce_rate_percent: number; min_sent: number };
  };
}

function transportKind(transport: string): AccountView['transport']['kind'] {
  if (transport === 'ses') return 'ses';
  if (transport === 'capture') return 'capture';
  return 'smtp';
}

/**
 * The reference's account snapshot, answered from what a self-hosted engine knows: the tenant, the
 * transport, the send rate and 24 h count (hourly roll-up), the API limit of the calling key's
 * environment and the newsletter guardrail (daily roll-up). Sub-objects about a hosted provider's
 * onboarding (production access, CloudFormation) are always null; `aws` is present when mail goes
 * through SES, with what we know locally (the account id and sandbox flag would need an AWS call).
 * Returns null for an unknown tenant.
 */
export async function accountSnapshot(db: Queryable, config: Config, tenantId: string, environment: 'live' | 'test'): Promise<AccountView | null> {
  const { rows } = await db.query<{
    id: string; name: string; created_at: Date; max_send_rate: string | null;
    newsletter_paused_at: Date | null; newsletter_pause_reason: string | null;
    sent_24h: string; sent_window: string; complained_window: string; bounced_window: string;
  }>(
    `SELECT t.id, t.name, t.created_at, t.max_send_rate, t.newsletter_paused_at, t.newsletter_pause_reason,
            (SELECT coalesce(sum(sent), 0) FROM tenant_hourly_sends h
              WHERE h.tenant_id = t.id AND h.hour > date_trunc('hour', now()) - interval '24 hours') AS sent_24h,
            coalesce(w.sent, 0) AS sent_window, coalesce(w.complained, 0) AS complained_window, coalesce(w.bounced, 0) AS bounced_window
       FROM tenants t
       LEFT JOIN LATERAL (
         SELECT sum(sent) AS sent, sum(complained) AS complained, sum(hard_bounced) AS bounced
           FROM tenant_event_counters c
          WHERE c.tenant_id = t.id AND c.day > (now() AT TIME ZONE 'UTC')::date - $2::int
       ) w ON true
      WHERE t.id = $1`,
    [tenantId, config.events.guardrail.windowDays],
  );
  const t = rows[0];
  if (!t) return null;
  const kind = transportKind(config.transport);
  const sent = Number(t.sent_window);
  const rate = (n: string) => (sent > 0 ? Number(n) / sent : 0);
  const maxRate = t.max_send_rate ?? config.jobs.defaultRatePerSecond ?? null;
  return {
    org: { id: t.id, name: t.name, created_at: t.created_at.toISOString() },
    transport: { kind },
    aws: kind === 'ses' ? { account_id: null, region: config.ses.region, sandbox: null } : null,
    send_quota: { max_24_hour: null, max_send_rate: maxRate === null ? null : Number(maxRate), sent_last_24_hours: Number(t.sent_24h) },
    production_access: null,
    cloudformation: null,
    plan: {
      tier: 'self-hosted',
      retention_days: null,
      api_rate_limit_per_minute: budgetLimit(config.rateLimit, 'api', environment),
      send_rate_limit_per_minute: budgetLimit(config.rateLimit, 'send', environment),
    },
    guardrail: {
      newsletters_paused: t.newsletter_paused_at !== null,
      paused_at: t.newsletter_paused_at?.toISOString() ?? null,
      reason: t.newsletter_pause_reason,
      window_days: config.events.guardrail.windowDays,
      sent,
      complaint_rate: rate(t.complained_window),
      hard_bounce_rate: rate(t.bounced_window),
      limits: {
        complaint_rate_percent: config.events.guardrail.complaintRatePercent,
        hard_bounce_rate_percent: config.events.guardrail.bounceRatePercent,
        min_sent: config.events.guardrail.minSent,
      },
    },
  };
}
