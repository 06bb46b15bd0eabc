import type { Db, DbClient, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { DomainError, invalid } from '../errors.ts';

/**
 * The SQL shared by subscription events and full-sync batches. Every membership write is a
 * last-writer-wins register stamped with the writer's occurred_at (ties: non-active beats
 * active, see list_status_rank), so the result does not depend on delivery order. On top of
 * it, an engine opt-out stands against every write but a later subscription.activated
 * (list_status_wins, migration 011; src/lists/opt-out.ts).
 */

export type SubscriberStatus = 'active' | 'unsubscribed' | 'bounced' | 'complaint' | 'suppressed';
/** A membership's statuses (the CHECK on list_members.status): 'pending' awaits a double opt-in confirmation. */
export const MEMBER_STATUSES = ['active', 'pending', 'unsubscribed', 'bounced', 'complaint', 'suppressed'] as const;
export type MemberStatus = (typeof MEMBER_STATUSES)[number];
export const SUPPRESSING_STATUSES: ReadonlySet<SubscriberStatus> = new Set(['bounced', 'complaint', 'suppressed']);

export interface SubscriberPayload {
  id: string;
  email: string;
  status: SubscriberStatus;
  preferences?: Record<string, unknown>;
}

// Advisory lock space for lists ('LIST'). Writers of one list share it; completing a sync
// takes it exclusively, so no write can slip between a sync's removal step and its commit.
const LIST_LOCK_CLASS = 0x4c495354;

// Lower-cased: the same uuid may arrive in either case, and both must take the same lock.
const listLockKey = (tenantId: string, listId: string) => `${tenantId}/${listId}`.toLowerCase();

export async function lockListShared(client: Queryable, tenantId: string, listId: string) {
  await client.query('SELECT pg_advisory_xact_lock_shared($1, hashtext($2))', [LIST_LOCK_CLASS, listLockKey(tenantId, listId)]);
}

export async function lockListExclusive(client: Queryable, tenantId: string, listId: string) {
  await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LIST_LOCK_CLASS, listLockKey(tenantId, listId)]);
}

export interface ListSyncFloor {
  lastSyncId: string | null;
  syncedAt: Date | null;
}

/**
 * Creates the list on first use; returns its newest completed sync. A list the API owns
 * (src/lists/contacts.ts) is refused: one source of truth per list.
 */
export async function ensureList(client: Queryable, tenantId: string, listId: string): Promise<ListSyncFloor> {
  // DO NOTHING (not a no-op update) so that busy lists are not rewritten by every batch.
  await client.query('INSERT INTO lists (tenant_id, id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [tenantId, listId]);
  const { rows } = await client.query<{ last_sync_id: string | null; synced_at: Date | null; owner: string }>(
    'SELECT last_sync_id, synced_at, owner FROM lists WHERE tenant_id = $1 AND id = $2',
    [tenantId, listId],
  );
  if (rows[0].owner === 'api') {
    throw new DomainError('conflict', 'list_owned_by_api', `list ${listId} is owned by the API (/v1/lists): the Member Center cannot write it`);
  }
  return { lastSyncId: rows[0].last_sync_id, syncedAt: rows[0].synced_at };
}

export interface MemberWrite {
  tenantId: string;
  listId: string;
  /** occurred_at of the event or sync, as sent (PostgreSQL keeps its microseconds). */
  occurredAt: string;
  /** Why the status is what it is: the event type, or 'sync'. */
  reason: string;
  /** The event id or the sync id. */
  sourceId: string;
  /** Set for sync batches: marks the members the sync included. */
  syncId: string | null;
  /** JSON array of subscriber payloads, statuses already resolved. */
  subscribersJson: string;
}

/** Whether the incoming membership status replaces the stored one (migration 011). */
const WINS = 'list_status_wins(excluded.status, excluded.status_at, excluded.reason, m.status, m.status_at, m.opted_out_at)';
/** Whether it ends a standing opt-out, even if a newer status keeps it from winning (migration 011). */
const ENDS_OPT_OUT = 'list_opt_out_ends(excluded.status, excluded.status_at, excluded.reason, m.opted_out_at)';

export interface MemberWriteResult {
  received: number;
  changed: number;
  /** Members the write states as active whose engine opt-out stands (they stay unsubscribed). */
  kept_unsubscribed: number;
}

/**
 * One set-based statement: upserts subscribers (email and status, newest wins), memberships
 * (status and preferences registers, newest wins) and suppressions for bounced/complaint/
 * suppressed addresses (insert only: an existing suppression, the engine's own included, is
 * never changed). Rows are deduplicated by id (last wins) and written in id order, which
 * keeps concurrent batches from locking the same members in opposite orders. An engine opt-out
 * (src/lists/opt-out.ts) is never undone here except by a later subscription.activated.
 */
export async function upsertMembers(client: Queryable, w: MemberWrite): Promise<MemberWriteResult> {
  const { rows } = await client.query<MemberWriteResult>(
    `WITH input AS (
       SELECT DISTINCT ON (r.id) r.id, r.email, r.status, r.preferences
       FROM ROWS FROM (jsonb_to_recordset($7::jsonb) AS (id uuid, email text, status text, preferences jsonb))
            WITH ORDINALITY AS r(id, email, status, preferences, ord)
       ORDER BY r.id, r.ord DESC
     ),
     subs AS (
       INSERT INTO subscribers AS s (tenant_id, id, email, status, updated_at)
       SELECT $1, id, email, status, $3::timestamptz FROM input
       ON CONFLICT (tenant_id, id) DO UPDATE
         SET email = excluded.email, status = excluded.status, updated_at = excluded.updated_at
         WHERE s.updated_at < excluded.updated_at
     ),
     members AS (
       INSERT INTO list_members AS m
         (tenant_id, list_id, subscriber_id, status, reason, source_id, status_at, preferences, prefs_at, seen_sync_id, seen_sync_at)
       SELECT $1, $2, id, status, $4, $5, $3::timestamptz,
              COALESCE(preferences, '{}'), CASE WHEN preferences IS NULL THEN '-infinity' ELSE $3::timestamptz END,
              COALESCE($6::uuid, '00000000-0000-0000-0000-000000000000'),
              CASE WHEN $6::uuid IS NULL THEN '-infinity' ELSE $3::timestamptz END
       FROM input
       ON CONFLICT (tenant_id, list_id, subscriber_id) DO UPDATE SET
         status    = CASE WHEN ${WINS} THEN excluded.status ELSE m.status END,
         reason    = CASE WHEN ${WINS} THEN excluded.reason ELSE m.reason END,
         source_id = CASE WHEN ${WINS} THEN excluded.source_id ELSE m.source_id END,
         status_at = CASE WHEN ${WINS} THEN excluded.status_at ELSE m.status_at END,
         opted_out_at   = CASE WHEN ${ENDS_OPT_OUT} THEN NULL ELSE m.opted_out_at END,
         opt_out_source = CASE WHEN ${ENDS_OPT_OUT} THEN NULL ELSE m.opt_out_source END,
         preferences = CASE WHEN excluded.prefs_at > m.prefs_at THEN excluded.preferences ELSE m.preferences END,
         prefs_at    = GREATEST(m.prefs_at, excluded.prefs_at),
         seen_sync_id = CASE WHEN (excluded.seen_sync_at, excluded.seen_sync_id) > (m.seen_sync_at, m.seen_sync_id) THEN excluded.seen_sync_id ELSE m.seen_sync_id END,
         seen_sync_at = GREATEST(m.seen_sync_at, excluded.seen_sync_at),
         updated_at = now()
       WHERE ${WINS}
          OR ${ENDS_OPT_OUT}
          OR excluded.prefs_at > m.prefs_at
          OR (excluded.seen_sync_at, excluded.seen_sync_id) > (m.seen_sync_at, m.seen_sync_id)
       RETURNING m.subscriber_id, m.opted_out_at IS NOT NULL AS opted_out
     ),
     supp AS (
       INSERT INTO suppressions (tenant_id, email, reason, source, source_event_id)
       SELECT $1, lower(email), status, 'member_center', $5 FROM input
       WHERE status IN ('bounced', 'complaint', 'suppressed')
       ON CONFLICT (tenant_id, email) DO NOTHING
     )
     SELECT (SELECT count(*) FROM input)::int AS received, (SELECT count(*) FROM members)::int AS changed,
            (SELECT count(*) FROM members JOIN input ON input.id = members.subscriber_id
              WHERE members.opted_out AND input.status = 'active')::int AS kept_unsubscribed`,
    [w.tenantId, w.listId, w.occurredAt, w.reason, w.sourceId, w.syncId, w.subscribersJson],
  );
  return rows[0];
}

/**
 * Re-applies the newest completed sync's removal to the given members. Needed only when a write
 * older than that sync creates a membership the sync never saw (a late event or a late batch of
 * a superseded sync): the member is then not on the list, exactly as if it had arrived in time.
 */
export async function reapplySyncRemoval(client: Queryable, tenantId: string, listId: string, subscribersJson: string) {
  await client.query(
    `UPDATE list_members m
        SET status = 'unsubscribed', reason = 'sync_removed', source_id = l.last_sync_id, status_at = l.synced_at, updated_at = now()
       FROM lists l
      WHERE l.tenant_id = $1 AND l.id = $2 AND l.synced_at IS NOT NULL
        AND m.tenant_id = $1 AND m.list_id = $2
        AND m.subscriber_id IN (SELECT (e->>'id')::uuid FROM jsonb_array_elements($3::jsonb) e)
        AND m.seen_sync_id <> l.last_sync_id
        AND (m.status_at, list_status_rank(m.status)) < (l.synced_at, 1)`,
    [tenantId, listId, subscribersJson],
  );
}

/** True when a write stamped occurredAt could be older than the list's newest completed sync. */
export function mayPredateSync(floor: ListSyncFloor, occurredAt: string): boolean {
  return floor.syncedAt !== null && Date.parse(occurredAt) <= floor.syncedAt.getTime() + 1;
}

/**
 * Runs fn in a transaction, retrying once on a deadlock or serialization failure (two writers
 * of overlapping members), and turns PostgreSQL's data errors (a value it cannot store, such as
 * \u0000 in a string or a year out of range) into a 422 instead of a 500.
 */
export async function inListTransaction<T>(db: Db, fn: (client: DbClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await withTransaction(db, fn);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code === '40P01' || code === '40001') && attempt < 3) continue;
      if (!(err instanceof DomainError) && typeof code === 'string' && code.startsWith('22')) {
        throw invalid(`a value cannot be stored: ${(err as Error).message}`);
      }
      throw err;
    }
  }
}
