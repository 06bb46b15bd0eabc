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

/** The decisions for `count` requests of one bucket, in order: the first ones that fit are allowed. */
export async function hitRateLimit(db: Queryable, bucket: string, limit: number, count = 1): Promise<RateDecision[]> {
  const { rows } = await db.query<HitRow>({ name: 'rate_hit_v2', text: HIT_SQL, values: [bucket, limit, WINDOW_SECONDS, count] });
  const r = rows[0];
  const nowSecond = Math.floor(r.now);
  const oldest = r.oldest === null ? (r.added ? nowSecond : null) : Math.min(Number(r.oldest), nowSecond);
  const resetSeconds = oldest === null ? 0 : Math.max(1, Math.ceil(oldest + WINDOW_SECONDS - r.now));
  // With nothing counted yet in the window (a limit below the batch), the current second frees first.
  const retryAfterSeconds = Math.max(1, Math.ceil(Number(r.frees_at ?? nowSecond) + WINDOW_SECONDS - r.now));
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

/**
 * Group commit for rate decisions: requests for a bucket that arrive while its statement is
 * running wait and are decided together by the next one. A busy tenant's requests then cost one
 * statement per round trip instead of one each, all queuing on the same counter row.
 */
export function createRateCounter(db: Queryable) {
  const waiting = new Map<string, { limit: number; resolve: (d: RateDecision) => void; reject: (e: unknown) => void }[]>();
  const running = new Set<string>();

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
          const decisions = await hitRateLimit(db, bucket, limit, now.length);
          now.forEach((w, i) => w.resolve(decisions[i]));
        } catch (err) {
          now.forEach((w) => w.reject(err));
        }
      }
    } finally {
      running.delete(bucket);
    }
  }

  return {
    hit(bucket: string, limit: number): Promise<RateDecision> {
      const decision = new Promise<RateDecision>((resolve, reject) => {
        const queue = waiting.get(bucket) ?? [];
        queue.push({ limit, resolve, reject });
        waiting.set(bucket, queue);
      });
      if (!running.has(bucket)) void drain(bucket);
      return decision;
    },
  };
}

/** Counters older than the window are never read again. */
export async function pruneRateCounters(db: Queryable): Promise<void> {
  await db.query(`DELETE FROM api_rate_counters WHERE second < extract(epoch FROM now())::bigint - $1`, [WINDOW_SECONDS * 2]);
}
