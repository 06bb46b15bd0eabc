import type { Config } from '../config.ts';
import type { Queryable } from '../db/pool.ts';

export const WINDOW_SECONDS = 60;

/** Which budget a route spends: reads and management share `api`; sends have their own. */
export type RateBudget = 'api' | 'send';

/** The per-minute limit of a budget for a key environment (GET /v1/account shows both). */
export function budgetLimit(settings: Config['rateLimit'], budget: RateBudget, environment: 'live' | 'test'): number {
  if (budget === 'send') return environment === 'test' ? settings.sendTestPerMinute : settings.sendLivePerMinute;
  return environment === 'test' ? settings.testPerMinute : settings.livePerMinute;
}

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window has slid past every counted request (full capacity again). */
  resetSeconds: number;
  /** When refused: seconds until one request fits again. */
  retryAfterSeconds: number;
}

/**
 * One statement for `$4` requests of one bucket: sum the bucket's per-second counters over the last
 * minute (by the database clock, shared by every API process) and admit as many of them as fit
 * under the limit, adding them to the current second. Refused requests are not counted, so a
 * client that honours Retry-After gets in. Concurrent statements read the same snapshot, so a
 * burst may overshoot by the requests in flight: a sliding window, not a hard semaphore.
 */
const HIT_SQL = `
WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS t),
w AS (
  SELECT second, hits FROM api_rate_counters, clock
   WHERE bucket = $1 AND second > floor(clock.t)::bigint - $3
),
prior AS (SELECT coalesce(sum(hits), 0)::int AS used, min(second) AS oldest FROM w),
grant_ AS (SELECT least($4::int, greatest(0, $2 - prior.used))::int AS n FROM prior),
up AS (
  INSERT INTO api_rate_counters AS c (bucket, second, hits)
  SELECT $1, floor(clock.t)::bigint, grant_.n FROM clock, grant_ WHERE grant_.n > 0
  ON CONFLICT (bucket, second) DO UPDATE SET hits = c.hits + EXCLUDED.hits
  RETURNING 1
)
SELECT prior.used, grant_.n AS added, (SELECT count(*) FROM up) AS written, prior.oldest, clock.t AS now,
       (SELECT min(second) FROM (SELECT second, sum(hits) OVER (ORDER BY second) AS cum FROM w) x
         WHERE cum > prior.used - $2) AS frees_at
  FROM prior, clock, grant_`;

interface HitRow { used: number; added: number; oldest: number | null; now: number; frees_at: number | null }

/** Admits up to `count` requests of one bucket (HIT_SQL); the row says what the window held before. */
async function hitCounter(db: Queryable, bucket: string, limit: number, count: number): Promise<HitRow> {
  const { rows } = await db.query<HitRow>({ name: 'rate_hit_v2', text: HIT_SQL, values: [bucket, limit, WINDOW_SECONDS, count] });
  return rows[0];
}

/** Seconds until the window has slid past every counted request, at `now` (epoch seconds). */
function resetIn(oldest: number | null, added: number, now: number): number {
  const nowSecond = Math.floor(now);
  const first = oldest === null ? (added ? nowSecond : null) : Math.min(Number(oldest), nowSecond);
  return first === null ? 0 : Math.max(1, Math.ceil(first + WINDOW_SECONDS - now));
}

/** The decisions for `count` requests of one bucket, in order: the first ones that fit are allowed. */
export async function hitRateLimit(db: Queryable, bucket: string, limit: number, count = 1): Promise<RateDecision[]> {
  return decide(await hitCounter(db, bucket, limit, count), limit, count);
}

function decide(r: HitRow, limit: number, count: number): RateDecision[] {
  const resetSeconds = resetIn(r.oldest, r.added, r.now);
  // With nothing counted yet in the window (a limit below the batch), the current second frees first.
  const retryAfterSeconds = Math.max(1, Math.ceil(Number(r.frees_at ?? Math.floor(r.now)) + WINDOW_SECONDS - r.now));
  return Array.from({ length: count }, (_, i) => {
    const allowed = i < r.added;
    return {
      allowed,
      limit,
      remaining: Math.max(0, limit - r.used - Math.min(i + 1, r.added)),
      resetSeconds,
      retryAfterSeconds: allowed ? 0 : retryAfterSeconds,
    };
  });
}

/** Limits below this (per minute) are decided by the database on every request: exact across processes, and cheap at that rate. */
export const LOCAL_MIN_LIMIT = 1000;
/** Requests a process admitted on its own count are written to the shared counter this often. */
export const LOCAL_SYNC_MS = 250;
/** A process's view of a bucket older than this is not trusted: the database decides. */
const LOCAL_STALE_MS = 1000;
const MAX_VIEWS = 10_000;

/** What a process knows of a busy bucket: the window's total at its last statement, and its own hits since. */
interface View {
  limit: number;
  /** The window's total (every process's hits) as of `syncedAt`, this process's written hits included. */
  used: number;
  /** Admitted here, not yet written. */
  pending: number;
  oldest: number | null;
  /** The database clock (epoch seconds) at `syncedAt` (Date.now() of the statement's start). */
  dbNow: number;
  syncedAt: number;
  timer?: NodeJS.Timeout;
  flushing?: Promise<void>;
}

/**
 * Rate decisions per bucket. Two paths:
 * - Far from the limit (a limit of at least LOCAL_MIN_LIMIT a minute, under half of it used as
 *   this process last saw the shared counter, that view under a second old) a request is admitted
 *   on this process's own count, with no round trip; the hits admitted so are added to the shared
 *   counter every LOCAL_SYNC_MS in one statement, which also refreshes the view. A send does not
 *   wait for the database twice.
 * - Otherwise (small limits, near the limit, no fresh view) the shared counter decides, as group
 *   commit: requests for a bucket that arrive while its statement is running wait and are decided
 *   together by the next one, so a busy tenant's requests cost one statement per round trip.
 * Refusals always come from the shared counter. Across API processes, requests admitted locally are
 *   seen by the others within about LOCAL_SYNC_MS: a limit can only be overshot if the others'
 *   unseen hits exceed half the limit in that time.
 */
export function createRateCounter(db: Queryable) {
  const waiting = new Map<string, { limit: number; resolve: (d: RateDecision) => void; reject: (e: unknown) => void }[]>();
  const running = new Set<string>();
  const views = new Map<string, View>();

  function remember(bucket: string, limit: number, r: HitRow, startedAt: number) {
    const view = views.get(bucket);
    const used = r.used + r.added;
    if (view) {
      // Only a newer snapshot replaces the view (a flush and a decision may overlap).
      if (view.syncedAt > startedAt) return;
      Object.assign(view, { limit, used, oldest: r.oldest ?? (r.added ? Math.floor(r.now) : null), dbNow: r.now, syncedAt: startedAt });
      return;
    }
    if (limit < LOCAL_MIN_LIMIT) return;
    if (views.size >= MAX_VIEWS) {
      for (const [b, v] of views) if (!v.pending && !v.flushing) views.delete(b);
    }
    views.set(bucket, { limit, used, pending: 0, oldest: r.oldest ?? (r.added ? Math.floor(r.now) : null), dbNow: r.now, syncedAt: startedAt });
  }

  /** Writes the hits admitted locally (all of them: they were answered already) and refreshes the view. */
  function flush(bucket: string, view: View): Promise<void> {
    if (view.timer) clearTimeout(view.timer);
    view.timer = undefined;
    if (view.flushing) return view.flushing;
    const n = view.pending;
    if (!n) return Promise.resolve();
    const startedAt = Date.now();
    view.flushing = hitCounter(db, bucket, 2 ** 31 - 1, n)
      .then((r) => {
        view.pending -= n;
        remember(bucket, view.limit, r, startedAt);
      })
      .catch(() => {
        // Kept pending: the next flush writes them.
      })
      .finally(() => {
        view.flushing = undefined;
        if (view.pending && !view.timer) view.timer = setTimeout(() => void flush(bucket, view), LOCAL_SYNC_MS).unref();
      });
    return view.flushing;
  }

  async function drain(bucket: string) {
    running.add(bucket);
    try {
      for (let queue = waiting.get(bucket); queue?.length; queue = waiting.get(bucket)) {
        waiting.delete(bucket);
        // One statement per limit (a bucket's limit is fixed in practice).
        const limit = queue[0].limit;
        const now = queue.filter((w) => w.limit === limit);
        const later = queue.filter((w) => w.limit !== limit);
        if (later.length) waiting.set(bucket, [...later, ...(waiting.get(bucket) ?? [])]);
        try {
          // Hits admitted locally count before these are decided.
          const view = views.get(bucket);
          for (let i = 0; i < 3 && view?.pending; i++) await flush(bucket, view);
          const startedAt = Date.now();
          const r = await hitCounter(db, bucket, limit, now.length);
          remember(bucket, limit, r, startedAt);
          const decisions = decide(r, limit, now.length);
          now.forEach((w, i) => w.resolve(decisions[i]));
        } catch (err) {
          now.forEach((w) => w.reject(err));
        }
      }
    } finally {
      running.delete(bucket);
    }
  }

  /** Admits a request on this process's count when the bucket is far from its limit (see above). */
  function admitLocally(bucket: string, limit: number): RateDecision | undefined {
    const view = views.get(bucket);
    const at = Date.now();
    if (!view || view.limit !== limit || at - view.syncedAt > LOCAL_STALE_MS || (view.used + view.pending + 1) * 2 > limit) return undefined;
    view.pending++;
    view.timer ??= setTimeout(() => void flush(bucket, view), LOCAL_SYNC_MS).unref();
    const now = view.dbNow + (at - view.syncedAt) / 1000;
    return { allowed: true, limit, remaining: Math.max(0, limit - view.used - view.pending), resetSeconds: resetIn(view.oldest, 1, now), retryAfterSeconds: 0 };
  }

  return {
    hit(bucket: string, limit: number): Promise<RateDecision> {
      const local = admitLocally(bucket, limit);
      if (local) return Promise.resolve(local);
      const decision = new Promise<RateDecision>((resolve, reject) => {
        const queue = waiting.get(bucket) ?? [];
        queue.push({ limit, resolve, reject });
        waiting.set(bucket, queue);
      });
      if (!running.has(bucket)) void drain(bucket);
      return decision;
    },

    /** Writes every hit admitted locally (a stopping process). */
    async flushAll(): Promise<void> {
      await Promise.all([...views].map(([bucket, view]) => flush(bucket, view)));
    },
  };
}

/** Counters older than the window are never read again. */
export async function pruneRateCounters(db: Queryable): Promise<void> {
  await db.query(`DELETE FROM api_rate_counters WHERE second < extract(epoch FROM now())::bigint - $1`, [WINDOW_SECONDS * 2]);
}
