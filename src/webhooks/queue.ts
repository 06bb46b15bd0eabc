import type { Db, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';

/**
 * The delivery queue (webhook_deliveries, migration 010): claim with SKIP LOCKED and a lease,
 * round-robin over endpoints, and write outcomes in bulk.
 */

export interface ClaimedDelivery {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  /** Attempts made, this one included. */
  attempt: number;
  url: string;
  secretEnc: Buffer;
  /** The previous secret while a rotation's grace period lasts. */
  oldSecretEnc: Buffer | null;
  /** The request body: {id, type, created_at, tenant_id, data}. */
  body: string;
  /** Local time after which this worker must not start the request (the lease may be gone). */
  leaseDeadline: number;
}

export interface ClaimOptions {
  limit: number;
  /** At most this many per endpoint per claim: one busy endpoint cannot fill a batch. */
  perEndpoint: number;
  leaseSeconds: number;
  /** Endpoints this worker already holds enough of. */
  skipEndpoints: string[];
  /** Round-robin position: endpoints after this id are served first. */
  after: string;
}

interface ClaimRow {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  attempts: number;
  url: string;
  secret_enc: Buffer;
  old_secret_enc: Buffer | null;
  body: string;
}

/**
 * Claims due deliveries: endpoints are visited in id order starting after `after` (so every
 * endpoint, whichever tenant, gets its turn), up to `perEndpoint` due rows each, oldest first,
 * each locked with SKIP LOCKED so any number of workers claim side by side. The claim counts the
 * attempt and sets the lease; the body comes back with it.
 */
const CLAIM_SQL = `
WITH endpoints AS MATERIALIZED (
  SELECT id, url, secret_enc, CASE WHEN old_secret_expires_at > now() THEN old_secret_enc END AS old_secret_enc
    FROM webhook_endpoints
   WHERE status = 'enabled' AND id <> ALL ($5::uuid[])
   ORDER BY id <= $6::uuid, id
), picked AS (
  SELECT d.id, e.url, e.secret_enc, e.old_secret_enc
    FROM endpoints e
    CROSS JOIN LATERAL (
      SELECT id FROM webhook_deliveries d
       WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= now()
       ORDER BY d.next_attempt_at
       LIMIT $2 FOR UPDATE SKIP LOCKED) d
   LIMIT $1
), claimed AS (
  UPDATE webhook_deliveries w
     SET status = 'delivering', attempts = w.attempts + 1, leased_by = $3,
         lease_until = now() + make_interval(secs => $4), last_attempt_at = now()
    FROM picked p
   WHERE w.id = p.id
  RETURNING w.id, w.endpoint_id, w.event_id, w.event_type, w.attempts
)
SELECT c.id, c.endpoint_id, c.event_id, c.event_type, c.attempts, p.url, p.secret_enc, p.old_secret_enc,
       jsonb_build_object('id', o.id, 'type', o.type, 'created_at', webhook_time(o.created_at),
                          'tenant_id', o.tenant_id, 'data', o.payload)::text AS body
  FROM claimed c JOIN picked p ON p.id = c.id JOIN outbound_events o ON o.id = c.event_id`;

export async function claimDeliveries(db: Queryable, workerId: string, o: ClaimOptions): Promise<ClaimedDelivery[]> {
  const leaseDeadline = Date.now() + o.leaseSeconds * 1000;
  const { rows } = await db.query<ClaimRow>({
    name: 'webhooks_claim_v1',
    text: CLAIM_SQL,
    values: [o.limit, o.perEndpoint, workerId, o.leaseSeconds, o.skipEndpoints, o.after],
  });
  return rows.map((r) => ({
    id: r.id,
    endpointId: r.endpoint_id,
    eventId: r.event_id,
    eventType: r.event_type,
    attempt: r.attempts,
    url: r.url,
    secretEnc: r.secret_enc,
    oldSecretEnc: r.old_secret_enc,
    body: r.body,
    leaseDeadline,
  }));
}

/** Leases of dead workers: their deliveries are due again at once. */
export async function reclaimExpiredLeases(db: Queryable): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE webhook_deliveries SET status = 'pending', lease_until = NULL, leased_by = NULL, next_attempt_at = now()
      WHERE status = 'delivering' AND lease_until < now()`,
  );
  return rowCount ?? 0;
}

export type DeliveryOutcome =
  | { id: string; eventId: string; kind: 'ok'; status: number; latencyMs: number; excerpt: string }
  /** Failed this time; due again after delayMs. */
  | { id: string; eventId: string; kind: 'retry'; status: number | null; latencyMs: number | null; excerpt: string | null; error: string; delayMs: number }
  /** Failed for good: retries exhausted, or the endpoint answered 410 (`gone` disables it). */
  | { id: string; eventId: string; kind: 'fail' | 'gone'; status: number | null; latencyMs: number | null; excerpt: string | null; error: string }
  /** Not attempted (shutdown, lease too short): back to pending without counting the attempt. */
  | { id: string; eventId: string; kind: 'release' };

/** Consecutive failure time after which an endpoint is disabled. */
export const DISABLE_AFTER_FAILING_DAYS = 5;

/**
 * Writes outcomes in one transaction: the deliveries; endpoint health (failing_since set on the
 * first failure and cleared by a success, disabled on 410 or after five days of failures); and
 * outbound_events.delivered_at once every delivery of an event has succeeded. The events are
 * locked first (in id order) so two workers finishing the last two deliveries of one event
 * cannot both miss each other's success.
 */
const RECORD_SQL = `
WITH r AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $5::text[], $6::text[], $7::bigint[])
    AS r(id, kind, status_code, latency_ms, excerpt, error, delay_ms)
), upd AS (
  UPDATE webhook_deliveries d
     SET status = CASE r.kind WHEN 'ok' THEN 'succeeded' WHEN 'retry' THEN 'pending' WHEN 'release' THEN 'pending' ELSE 'failed' END,
         attempts = CASE WHEN r.kind = 'release' THEN d.attempts - 1 ELSE d.attempts END,
         next_attempt_at = CASE r.kind WHEN 'retry' THEN now() + make_interval(secs => r.delay_ms / 1000.0)
                                       WHEN 'release' THEN now() ELSE d.next_attempt_at END,
         response_status = CASE WHEN r.kind = 'release' THEN d.response_status ELSE r.status_code END,
         latency_ms = CASE WHEN r.kind = 'release' THEN d.latency_ms ELSE r.latency_ms END,
         response_excerpt = CASE WHEN r.kind = 'release' THEN d.response_excerpt ELSE r.excerpt END,
         last_error = CASE WHEN r.kind = 'release' THEN d.last_error ELSE r.error END,
         delivered_at = CASE WHEN r.kind = 'ok' THEN coalesce(d.delivered_at, now()) ELSE d.delivered_at END,
         lease_until = NULL, leased_by = NULL
    FROM r
   WHERE d.id = r.id
     AND ((d.status = 'delivering' AND d.leased_by = $8) OR (r.kind = 'ok' AND d.status IN ('pending', 'delivering')))
  RETURNING d.id, d.endpoint_id, d.event_id, r.kind
), health AS (
  SELECT endpoint_id, bool_or(kind = 'ok') AS ok, bool_or(kind = 'gone') AS gone
    FROM upd WHERE kind <> 'release' GROUP BY endpoint_id
), endpoints AS (
  UPDATE webhook_endpoints e
     SET failing_since = CASE WHEN h.ok AND NOT h.gone THEN NULL ELSE coalesce(e.failing_since, now()) END,
         status = CASE WHEN h.gone OR (NOT h.ok AND e.failing_since < now() - make_interval(days => $9)) THEN 'disabled' ELSE e.status END,
         disabled_reason = CASE
           WHEN h.gone THEN 'the endpoint answered 410 Gone'
           WHEN NOT h.ok AND e.failing_since < now() - make_interval(days => $9)
             THEN 'every delivery attempt failed since ' || webhook_time(e.failing_since) || ' (' || $9 || ' days)'
           ELSE e.disabled_reason END,
         updated_at = now()
    FROM health h
   WHERE e.id = h.endpoint_id
     AND (h.gone OR (h.ok AND e.failing_since IS NOT NULL)
          OR (NOT h.ok AND (e.failing_since IS NULL OR e.failing_since < now() - make_interval(days => $9))))
  RETURNING e.id
), done AS (
  UPDATE outbound_events o SET delivered_at = now()
   WHERE o.id IN (SELECT event_id FROM upd WHERE kind = 'ok') AND o.delivered_at IS NULL
     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                      WHERE d.event_id = o.id AND d.status <> 'succeeded'
                        AND d.id NOT IN (SELECT id FROM upd WHERE kind = 'ok'))
  RETURNING o.id
)
SELECT (SELECT count(*) FROM upd)::int AS recorded, (SELECT count(*) FROM endpoints)::int AS endpoints_changed`;

export async function recordDeliveryOutcomes(db: Db, workerId: string, outcomes: DeliveryOutcome[]): Promise<void> {
  if (!outcomes.length) return;
  const get = <T>(f: (o: Exclude<DeliveryOutcome, { kind: 'release' }>) => T) => outcomes.map((o) => (o.kind === 'release' ? null : f(o)));
  const succeededEvents = [...new Set(outcomes.filter((o) => o.kind === 'ok').map((o) => o.eventId))].sort();
  await withTransaction(db, async (client) => {
    if (succeededEvents.length) {
      await client.query('SELECT 1 FROM outbound_events WHERE id = ANY ($1::uuid[]) ORDER BY id FOR NO KEY UPDATE', [succeededEvents]);
    }
    await client.query({
      name: 'webhooks_record_v1',
      text: RECORD_SQL,
      values: [
        outcomes.map((o) => o.id),
        outcomes.map((o) => o.kind),
        get((o) => o.status),
        get((o) => o.latencyMs),
        get((o) => o.excerpt),
        get((o) => (o.kind === 'ok' ? null : o.error)),
        outcomes.map((o) => (o.kind === 'retry' ? Math.round(o.delayMs) : 0)),
        workerId,
        DISABLE_AFTER_FAILING_DAYS,
      ],
    });
  });
}

/**
 * Standard Webhooks' schedule after the first attempt (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h),
 * continued with 10 h steps to about three days: 13 attempts in all.
 */
export const RETRY_SCHEDULE_MS = [5e3, 3e5, 18e5, 72e5, 18e6, 36e6, 36e6, 36e6, 36e6, 36e6, 36e6, 36e6];

/** Delay before the next attempt after `attempt` failed, ±10 % jitter; undefined: give up. */
export function retryDelay(attempt: number, random = Math.random): number | undefined {
  const base = RETRY_SCHEDULE_MS[attempt - 1];
  return base === undefined ? undefined : base * (0.9 + random() * 0.2);
}
