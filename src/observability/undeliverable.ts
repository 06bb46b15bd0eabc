import { createHash } from 'node:crypto';
import type { Queryable } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import type { Page } from './messages.ts';

/**
 * Undeliverable recipients: the per-address state migration 008 keeps (classification in SQL,
 * undeliverable_apply), folded from the queue the event trigger fills by the worker's applier
 * and before every read; and the operator exclusion that turns a row into a tombstone when its
 * suppression is removed.
 */

/** Highest priority first: the wire reason is the highest-priority rule an address matched. */
export const UNDELIVERABLE_REASONS = ['permanent_bounce', 'complaint', 'rejected', 'repeated_transient', 'undetermined', 'soft_bounce_accumulation'] as const;
export type UndeliverableReason = (typeof UNDELIVERABLE_REASONS)[number];

/** Listed rows carry the classification; excluded ones only the exclusion (the reference's shape). */
export type UndeliverableView =
  | {
      email: string;
      status: 'listed';
      reason: string;
      subtype?: string;
      first_seen_at: string;
      last_seen_at: string;
      last_changed_at: string;
      event_count: number;
      last_diagnostic?: string;
      last_sender_identity?: string;
    }
  | { email: string; status: 'excluded'; last_changed_at: string; excluded_at: string; excluded_by?: string; exclusion_reason?: string };

interface Row {
  email: string;
  status: 'listed' | 'excluded';
  reason: string;
  subtype: string | null;
  first_seen_at: Date;
  last_seen_at: Date;
  last_changed_at: Date;
  position: string;
  event_count: number;
  last_diagnostic: string | null;
  last_sender_identity: string | null;
  excluded_at: Date | null;
  excluded_by: string | null;
  exclusion_reason: string | null;
}

/** Absent rather than null, as in the reference's example. */
const present = <T extends Record<string, unknown>>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined)) as T;

function view(r: Row): UndeliverableView {
  if (r.status === 'excluded') {
    return present({
      email: r.email,
      status: 'excluded' as const,
      last_changed_at: r.last_changed_at.toISOString(),
      excluded_at: (r.excluded_at ?? r.last_changed_at).toISOString(),
      excluded_by: r.excluded_by ?? undefined,
      exclusion_reason: r.exclusion_reason ?? undefined,
    });
  }
  return present({
    email: r.email,
    status: 'listed' as const,
    reason: r.reason,
    subtype: r.subtype ?? undefined,
    first_seen_at: r.first_seen_at.toISOString(),
    last_seen_at: r.last_seen_at.toISOString(),
    last_changed_at: r.last_changed_at.toISOString(),
    event_count: r.event_count,
    last_diagnostic: r.last_diagnostic ?? undefined,
    last_sender_identity: r.last_sender_identity ?? undefined,
  });
}

export interface UndeliverableFilters {
  since?: Date;
  status?: 'listed' | 'excluded' | 'all';
  reason?: UndeliverableReason;
  email?: string;
  minEvents?: number;
}

/**
 * Oldest change first, keyset on (last_changed_at, email). Changes of a tenant commit in
 * last_changed_at order (undeliverable_clock, migration 008), so a row changed while a client
 * pages moves past its cursor: unchanged rows are never repeated or skipped, changed ones are
 * served again in their new state, which is what a suppression-list sync wants.
 */
export async function listUndeliverable(
  db: Queryable,
  tenantId: string,
  filters: UndeliverableFilters,
  options: { limit: number; cursor?: string },
): Promise<Page<UndeliverableView>> {
  const params: unknown[] = [tenantId];
  const where = ['tenant_id = $1'];
  const add = (value: unknown) => `$${params.push(value)}`;

  // Snapshot without `since`, sync with it; an explicit status wins.
  const status = filters.status ?? (filters.since ? 'all' : 'listed');
  if (status !== 'all') where.push(`status = ${add(status)}`);
  if (filters.since) {
    // Inclusive on the second: a one-row overlap is possible and harmless (rows apply idempotently).
    where.push(`last_changed_at >= ${add(new Date(Math.floor(filters.since.getTime() / 1000) * 1000))}`);
  }
  // The reason filter applies to listed rows; tombstones pass through it.
  if (filters.reason) where.push(`(status = 'excluded' OR reason = ${add(filters.reason)})`);
  if (filters.email !== undefined && filters.email !== '') {
    where.push(`email LIKE ${add(`%${filters.email.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`)}`);
  }
  if (filters.minEvents !== undefined && filters.minEvents > 1) where.push(`status = 'listed' AND event_count >= ${add(filters.minEvents)}`);

  // Stale or malformed cursors start over at page 1, as the reference says for this list.
  let after: { t: string; e: string } | undefined;
  try {
    after = decodeCursor(options.cursor, { t: 'time', e: 'text' });
  } catch {
    after = undefined;
  }
  if (after) where.push(`(last_changed_at, email) > (${add(after.t)}::timestamptz, ${add(after.e)})`);

  const { rows } = await db.query<Row>(
    `SELECT email, status, reason, subtype, first_seen_at, last_seen_at, last_changed_at, last_changed_at::text AS position,
            event_count, last_diagnostic, last_sender_identity, excluded_at, excluded_by, exclusion_reason
       FROM undeliverable
      WHERE ${where.join(' AND ')}
      ORDER BY last_changed_at, email
      LIMIT ${add(options.limit + 1)}`,
    params,
  );
  const more = rows.length > options.limit;
  const page = more ? rows.slice(0, options.limit) : rows;
  const last = page[page.length - 1];
  return { data: page.map(view), nextCursor: more ? encodeCursor({ t: last.position, e: last.email }) : null };
}

const DRAIN_BATCH = 5000;

/**
 * Folds every queued feedback event into `undeliverable` (migration 008: the event trigger only
 * queues them, so ingestion never waits on the change clock). Returns how many were folded.
 */
export async function drainUndeliverable(db: Queryable): Promise<number> {
  let total = 0;
  for (;;) {
    const { rows } = await db.query<{ n: number }>('SELECT undeliverable_drain($1) AS n', [DRAIN_BATCH]);
    total += rows[0].n;
    if (rows[0].n < DRAIN_BATCH) return total;
  }
}

/**
 * The worker's applier: drains the queue every `everyMs` so the list stays current between reads
 * (a read drains first anyway). stop() waits for a drain in progress.
 */
export function startUndeliverableApplier(db: Queryable, logger: Logger, everyMs = 1000): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    running = drainUndeliverable(db)
      .catch((err) => logger.warn({ err }, 'undeliverable applier: drain failed, retrying'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, everyMs);
      });
  };
  timer = setTimeout(tick, everyMs);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/**
 * Operator exclusion: the address's row (if it has one) becomes a tombstone. Runs inside the
 * caller's transaction (the suppression removal and its audit row), after taking the tenant's
 * change clock like every writer of `undeliverable`.
 */
export async function excludeUndeliverable(client: Queryable, tenantId: string, email: string, by: string, reason: string | null): Promise<boolean> {
  // Feedback that arrived before the exclusion must be folded first, or it would list the address
  // again after the tombstone.
  await drainUndeliverable(client);
  await client.query('SELECT undeliverable_tick(ARRAY[$1::uuid])', [tenantId]);
  const { rowCount } = await client.query(
    `UPDATE undeliverable u
        SET status = 'excluded', excluded_at = now(), excluded_by = $3, exclusion_reason = $4, last_changed_at = c.changed_at
       FROM undeliverable_clock c
      WHERE c.tenant_id = $1 AND u.tenant_id = $1 AND u.email = lower($2)`,
    [tenantId, email, by, reason],
  );
  return (rowCount ?? 0) > 0;
}

export interface SoftBounceRule {
  softBounceLimit: number;
  softBounceWindowDays: number;
}

/**
 * Writes this process's soft-bounce rule where the classification trigger reads it. The rule is
 * the engine's configuration (SOFT_BOUNCE_LIMIT, SOFT_BOUNCE_WINDOW_DAYS), the same one the
 * ingestion suppresses by; updated_at moves only when the values do.
 */
export async function syncUndeliverableRules(db: Queryable, rule: SoftBounceRule): Promise<void> {
  await db.query(
    `INSERT INTO undeliverable_rules AS r (id, soft_bounce_limit, soft_bounce_window_days, updated_by)
     VALUES (true, $1, $2, 'configuration')
     ON CONFLICT (id) DO UPDATE
       SET soft_bounce_limit = EXCLUDED.soft_bounce_limit, soft_bounce_window_days = EXCLUDED.soft_bounce_window_days,
           updated_at = now(), updated_by = EXCLUDED.updated_by
       WHERE (r.soft_bounce_limit, r.soft_bounce_window_days) IS DISTINCT FROM (EXCLUDED.soft_bounce_limit, EXCLUDED.soft_bounce_window_days)`,
    [rule.softBounceLimit, rule.softBounceWindowDays],
  );
}

export interface RuleView {
  enabled: boolean;
  locked: boolean;
  events: number;
  window_days: number;
}

export interface RuleSet {
  profile: 'default' | 'custom';
  rules: Record<UndeliverableReason, RuleView>;
  version: string;
  updated_at: string;
  updated_by: string;
}

const DEFAULT_SOFT_RULE: SoftBounceRule = { softBounceLimit: 3, softBounceWindowDays: 7 };

/**
 * The rule set as applied: the three locked rules, the engine's soft-bounce rule as
 * soft_bounce_accumulation, and repeated_transient / undetermined off (the engine suppresses on
 * neither; its soft-bounce rule counts transient and undetermined bounces together).
 */
export async function undeliverableRules(db: Queryable): Promise<RuleSet> {
  const { rows } = await db.query<{ soft_bounce_limit: number; soft_bounce_window_days: number; updated_at: Date; updated_by: string }>(
    'SELECT soft_bounce_limit, soft_bounce_window_days, updated_at, updated_by FROM undeliverable_rules WHERE id',
  );
  const r = rows[0];
  const locked: RuleView = { enabled: true, locked: true, events: 0, window_days: 0 };
  const off: RuleView = { enabled: false, locked: false, events: 0, window_days: 0 };
  const rules: Record<UndeliverableReason, RuleView> = {
    permanent_bounce: locked,
    complaint: locked,
    rejected: locked,
    repeated_transient: off,
    undetermined: off,
    soft_bounce_accumulation: { enabled: true, locked: false, events: r.soft_bounce_limit, window_days: r.soft_bounce_window_days },
  };
  const profile =
    r.soft_bounce_limit === DEFAULT_SOFT_RULE.softBounceLimit && r.soft_bounce_window_days === DEFAULT_SOFT_RULE.softBounceWindowDays ? 'default' : 'custom';
  // Over the rules alone (fixed key order), so it changes exactly when the classification does.
  const canonical = JSON.stringify(UNDELIVERABLE_REASONS.map((k) => [k, rules[k].enabled, rules[k].locked, rules[k].events, rules[k].window_days]));
  const version = createHash('sha256').update(canonical).digest('hex').slice(0, 16);
  return { profile, rules, version, updated_at: r.updated_at.toISOString(), updated_by: r.updated_by };
}
