import type { Queryable } from '../db/pool.ts';

export const WINDOW_SECONDS = 60;

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
 * One statement per request: sum the bucket's per-second counters over the last minute (by the
 * database clock, shared by every API process) and, when under the limit, add this request to the
 * current second. Refused requests are not counted, so a client that honours Retry-After gets in.
 * Concurrent requests read the same snapshot, so a burst may overshoot by the number of
 * in-flight requests: a sliding window, not a hard semaphore.
 */
const HIT_SQL = `
WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS t),
w AS (
  SELECT second, hits FROM api_rate_counters, clock
   WHERE bucket = $1 AND second > floor(clock.t)::bigint - $3
),
prior AS (SELECT coalesce(sum(hits), 0)::int AS used, min(second) AS oldest FROM w),
up AS (
  INSERT INTO api_rate_counters AS c (bucket, second, hits)
  SELECT $1, floor(clock.t)::bigint, 1 FROM clock, prior WHERE prior.used < $2
  ON CONFLICT (bucket, second) DO UPDATE SET hits = c.hits + 1
  RETURNING 1
)
SELECT prior.used, (SELECT count(*)::int FROM up) AS added, prior.oldest, clock.t AS now,
       (SELECT min(second) FROM (SELECT second, sum(hits) OVER (ORDER BY second) AS cum FROM w) x
         WHERE cum > prior.used - $2) AS frees_at
  FROM prior, clock`;

export async function hitRateLimit(db: Queryable, bucket: string, limit: number): Promise<RateDecision> {
  const { rows } = await db.query<{ used: number; added: number; oldest: number | null; now: number; frees_at: number | null }>(HIT_SQL, [bucket, limit, WINDOW_SECONDS]);
  const r = rows[0];
  const used = r.used + r.added;
  const nowSecond = Math.floor(r.now);
  const oldest = r.oldest === null ? (r.added ? nowSecond : null) : Math.min(Number(r.oldest), nowSecond);
  const resetSeconds = oldest === null ? 0 : Math.max(1, Math.ceil(oldest + WINDOW_SECONDS - r.now));
  const retryAfterSeconds = r.added ? 0 : Math.max(1, Math.ceil(Number(r.frees_at ?? nowSecond) + WINDOW_SECONDS - r.now));
  return { allowed: r.added > 0, limit, remaining: Math.max(0, limit - used), resetSeconds, retryAfterSeconds };
}

/** Counters older than the window are never read again. */
export async function pruneRateCounters(db: Queryable): Promise<void> {
  await db.query(`DELETE FROM api_rate_counters WHERE second < extract(epoch FROM now())::bigint - $1`, [WINDOW_SECONDS * 2]);
}
