import { GroupCommit } from '../db/group-commit.ts';
import type { Db, Queryable } from '../db/pool.ts';
import { newId } from '../ids.ts';
import type { Logger } from '../log.ts';
import { OPT_OUT_CTES, type OptOutSource } from '../lists/opt-out.ts';
import { advanceStatusSql } from '../outbox/advance.ts';
import { evaluateGuardrail, type GuardrailRules } from './guardrail.ts';
import { TARGET_STATUS, type EventOutcome, type NormalizedEvent } from './types.ts';

export interface EventRules {
  softBounceLimit: number;
  softBounceWindowDays: number;
  guardrail: GuardrailRules;
}

/**
 * Applies a batch of events in one statement, set-based:
 *  - match each to a message by our id, else the provider id (and the claimed tenant, if any);
 *  - insert the timeline row keyed by the natural key; a repeat inserts nothing and changes nothing;
 *  - raise the status of messages whose events were inserted (the outbox's advanceStatusSql);
 *  - suppress addresses: at once for hard bounces, complaints and provider suppression; after
 *    `limit` soft bounces within the window (history rows plus this batch's own);
 *  - a complaint also opts the address out of every list of its tenant where it is an active
 *    member, each change queuing a subscription.unsubscribed outbound event (src/lists/opt-out.ts).
 * Counters follow from the message_events trigger. Returns one outcome per input, in order.
 */
const COMPLAINT: OptOutSource = 'complaint';
const APPLY_SQL = `
WITH e AS (
  SELECT * FROM unnest($1::int[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::uuid[], $7::text[], $8::text[],
                       $9::bool[], $10::timestamptz[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])
    AS e(ord, event_id, our_id, provider_id, learn_provider_id, claimed_tenant, type, recipient,
         recipient_strict, occurred_at, disc, target_status, suppress, diagnostic, data)
), matched AS (
  SELECT e.*, m.id AS message_id, m.tenant_id, lower(m.recipient) AS email
    FROM e CROSS JOIN LATERAL (
      SELECT x.id, x.tenant_id, x.recipient FROM (
        SELECT id, tenant_id, recipient, 1 AS pref FROM messages WHERE id = e.our_id
        UNION ALL
        SELECT id, tenant_id, recipient, 2 FROM messages WHERE provider_message_id = e.provider_id
      ) x
      WHERE (e.claimed_tenant IS NULL OR x.tenant_id = e.claimed_tenant)
        AND (NOT e.recipient_strict OR lower(x.recipient) = e.recipient)
      ORDER BY x.pref LIMIT 1
    ) m
), ins AS (
  INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, data, dedupe_key)
  SELECT event_id, tenant_id, message_id, type, occurred_at, data::jsonb,
         'ses:' || message_id || ':' || type || ':' || recipient || ':' || disc
    FROM matched
   ORDER BY ord
  ON CONFLICT (dedupe_key) DO NOTHING
  RETURNING id
), applied AS (
  SELECT mt.* FROM matched mt JOIN ins ON ins.id = mt.event_id
), best AS (
  -- Several events for one message in one batch: the highest rank wins, the earliest among equals.
  SELECT DISTINCT ON (message_id) message_id, target_status, learn_provider_id
    FROM applied
   ORDER BY message_id, message_status_rank(target_status) DESC NULLS LAST, occurred_at
), moved AS (
  ${advanceStatusSql('best')}
), soft_history AS (
  INSERT INTO soft_bounces (event_id, tenant_id, email, occurred_at)
  SELECT event_id, tenant_id, email, occurred_at FROM applied WHERE suppress = 'soft'
  RETURNING event_id
), soft_over AS (
  SELECT a.tenant_id, a.email, a.event_id, a.diagnostic, a.occurred_at
    FROM applied a
   WHERE a.suppress = 'soft'
     AND (SELECT count(*) FROM soft_bounces s
           WHERE s.tenant_id = a.tenant_id AND s.email = a.email
             AND s.occurred_at > a.occurred_at - make_interval(days => $17) AND s.occurred_at <= a.occurred_at)
       + (SELECT count(*) FROM applied b
           WHERE b.suppress = 'soft' AND b.tenant_id = a.tenant_id AND b.email = a.email
             AND b.occurred_at > a.occurred_at - make_interval(days => $17) AND b.occurred_at <= a.occurred_at) >= $16
), suppressed AS (
  INSERT INTO suppressions (tenant_id, email, reason, source, source_event_id, diagnostic)
  SELECT DISTINCT ON (tenant_id, email) tenant_id, email, reason, 'ses', event_id, diagnostic
    FROM (
      SELECT tenant_id, email, event_id, diagnostic, occurred_at, 1 AS pref,
             CASE suppress WHEN 'hard' THEN 'hard_bounce' WHEN 'complaint' THEN 'complaint' ELSE 'provider_suppressed' END AS reason
        FROM applied WHERE suppress IN ('hard', 'complaint', 'provider')
      UNION ALL
      SELECT tenant_id, email, event_id, diagnostic, occurred_at, 2, 'soft_bounce_limit' FROM soft_over
    ) c
   ORDER BY tenant_id, email, pref, occurred_at
  ON CONFLICT (tenant_id, email) DO NOTHING
  RETURNING tenant_id
), opt_out_targets AS (
  -- The address's memberships in the tenant's lists; the first complaint of the batch names the message.
  SELECT DISTINCT ON (m.tenant_id, m.list_id, m.subscriber_id)
         m.tenant_id, m.list_id, m.subscriber_id, '${COMPLAINT}'::text AS source, a.message_id
    FROM applied a
    JOIN subscribers s ON s.tenant_id = a.tenant_id AND lower(s.email) = a.email
    JOIN list_members m ON m.tenant_id = s.tenant_id AND m.subscriber_id = s.id
   WHERE a.type = 'complaint' AND m.status = 'active'
   ORDER BY m.tenant_id, m.list_id, m.subscriber_id, a.occurred_at
), ${OPT_OUT_CTES.trim()}
SELECT e.ord, mt.tenant_id, (a.event_id IS NOT NULL) AS applied
  FROM e
  LEFT JOIN matched mt ON mt.ord = e.ord
  LEFT JOIN applied a ON a.ord = e.ord
 ORDER BY e.ord`;

export interface AppliedBatch {
  outcomes: EventOutcome[];
  /** Tenants whose bounce or complaint figures moved: the guardrail looks at these. */
  reputationTenants: string[];
}

/** Applies events in one statement (see APPLY_SQL). */
export async function applyEvents(db: Queryable, events: NormalizedEvent[], rules: EventRules): Promise<AppliedBatch> {
  if (!events.length) return { outcomes: [], reputationTenants: [] };
  const col = <T>(f: (e: NormalizedEvent) => T) => events.map(f);
  // Named: parsed and planned once per connection, not per batch.
  const { rows } = await db.query<{ ord: number; tenant_id: string | null; applied: boolean }>({ name: 'events_apply_v3', text: APPLY_SQL, values: [
    events.map((_, i) => i),
    col(() => newId()),
    col((e) => e.ourId),
    col((e) => e.providerId),
    col((e) => e.learnProviderId),
    col((e) => e.claimedTenant),
    col((e) => e.type),
    col((e) => e.recipient),
    col((e) => e.recipientStrict),
    col((e) => e.occurredAt),
    col((e) => e.discriminator),
    col((e) => TARGET_STATUS[e.type]),
    col((e) => e.suppress),
    col((e) => e.diagnostic),
    col((e) => JSON.stringify(e.data)),
    rules.softBounceLimit,
    rules.softBounceWindowDays,
  ] });
  const outcomes: EventOutcome[] = rows.map((r) => (r.applied ? 'applied' : r.tenant_id ? 'duplicate' : 'unmatched'));
  const reputationTenants = new Set<string>();
  rows.forEach((r, i) => {
    const e = events[i];
    if (r.applied && r.tenant_id && (e.type === 'bounce' || e.type === 'complaint')) reputationTenants.add(r.tenant_id);
  });
  return { outcomes, reputationTenants: [...reputationTenants] };
}

const RETRYABLE = new Set(['40P01', '40001']); // deadlock, serialization failure

/**
 * Group commit for webhook requests (src/db/group-commit.ts): events arriving while earlier batches
 * are being written are applied together in the next statement, so throughput grows with load
 * while a lone request is written at once. A batch is retried whole on deadlock, otherwise split
 * by GroupCommit, so one bad event cannot fail its neighbours.
 */
export class EventWriter {
  private readonly group: GroupCommit<NormalizedEvent, EventOutcome>;

  constructor(
    private readonly db: Db,
    private readonly rules: EventRules,
    private readonly logger: Logger,
    options = { maxBatch: 500, maxConcurrent: 4 },
  ) {
    this.group = new GroupCommit((events) => this.apply(events), options);
  }

  /** One request's events share a statement. */
  write(events: NormalizedEvent[]): Promise<EventOutcome[]> {
    return this.group.submitAll(events);
  }

  private async apply(events: NormalizedEvent[], attempt = 1): Promise<EventOutcome[]> {
    let applied: AppliedBatch;
    try {
      applied = await applyEvents(this.db, events, this.rules);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code && RETRYABLE.has(code) && attempt < 4) return this.apply(events, attempt + 1);
      throw err;
    }
    if (applied.reputationTenants.length) {
      // Before the answer, so an acknowledged complaint has already paused what it should. A
      // failure here does not fail the events (they are written); the next one judges again.
      await evaluateGuardrail(this.db, applied.reputationTenants, this.rules.guardrail).then(
        (paused) => paused.forEach((p) => this.logger.warn({ tenant_id: p.tenantId, reason: p.reason }, 'newsletter sending paused by guardrail')),
        (err) => this.logger.error({ err: (err as Error).message }, 'guardrail evaluation failed'),
      );
    }
    return applied.outcomes;
  }
}
