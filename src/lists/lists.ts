import type { Queryable } from '../db/pool.ts';
import type { SyncState } from './sync.ts';

export interface ListSyncView {
  sync_id: string;
  state: SyncState;
  occurred_at: string;
  batch_total: number;
  batches_received: number;
  subscribers_received: number;
  removed: number | null;
  /** Members this sync listed as active who stay unsubscribed after an engine opt-out. */
  kept_unsubscribed: number;
  started_at: string;
  completed_at: string | null;
}

export interface ListView {
  id: string;
  created_at: string;
  /** occurred_at of the newest completed sync: the list is exact as of then. */
  synced_at: string | null;
  members: { total: number; active: number; unsubscribed: number; bounced: number; complaint: number; suppressed: number };
  /** The most recently started sync, so an operator can follow its progress. */
  last_sync: ListSyncView | null;
}

/** A tenant's list with member counts by status and its last sync; null for another tenant's. */
export async function getList(db: Queryable, tenantId: string, listId: string): Promise<ListView | null> {
  const { rows } = await db.query<{ created_at: Date; synced_at: Date | null; counts: Record<string, number> | null; last_sync: Record<string, unknown> | null }>(
    `SELECT l.created_at, l.synced_at,
            (SELECT jsonb_object_agg(status, n) FROM (
               SELECT status, count(*) AS n FROM list_members
                WHERE tenant_id = l.tenant_id AND list_id = l.id GROUP BY status) c) AS counts,
            (SELECT to_jsonb(s) FROM (
               SELECT id AS sync_id, state, occurred_at, batch_total, batches_received, subscribers_received,
                      removed_count AS removed, kept_unsubscribed, started_at, completed_at
                 FROM list_syncs WHERE tenant_id = l.tenant_id AND list_id = l.id
                ORDER BY started_at DESC, occurred_at DESC LIMIT 1) s) AS last_sync
       FROM lists l WHERE l.tenant_id = $1 AND l.id = $2`,
    [tenantId, listId],
  );
  if (!rows.length) return null;
  const row = rows[0];
  const counts = row.counts ?? {};
  const members = {
    total: 0,
    active: counts.active ?? 0,
    unsubscribed: counts.unsubscribed ?? 0,
    bounced: counts.bounced ?? 0,
    complaint: counts.complaint ?? 0,
    suppressed: counts.suppressed ?? 0,
  };
  members.total = members.active + members.unsubscribed + members.bounced + members.complaint + members.suppressed;
  const sync = row.last_sync;
  return {
    id: listId.toLowerCase(),
    created_at: row.created_at.toISOString(),
    synced_at: row.synced_at?.toISOString() ?? null,
    members,
    last_sync: sync
      ? {
          sync_id: sync.sync_id as string,
          state: sync.state as SyncState,
          occurred_at: new Date(sync.occurred_at as string).toISOString(),
          batch_total: sync.batch_total as number,
          batches_received: sync.batches_received as number,
          subscribers_received: sync.subscribers_received as number,
          removed: (sync.removed as number | null) ?? null,
          kept_unsubscribed: sync.kept_unsubscribed as number,
          started_at: new Date(sync.started_at as string).toISOString(),
          completed_at: sync.completed_at ? new Date(sync.completed_at as string).toISOString() : null,
        }
      : null,
  };
}

export interface ListSummary {
  id: string;
  created_at: string;
  synced_at: string | null;
}

/** A tenant's lists, newest first (member counts are per list: getList). */
export async function listLists(db: Queryable, tenantId: string, limit = 200): Promise<ListSummary[]> {
  const { rows } = await db.query<{ id: string; created_at: Date; synced_at: Date | null }>(
    'SELECT id, created_at, synced_at FROM lists WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2',
    [tenantId, limit],
  );
  return rows.map((r) => ({ id: r.id, created_at: r.created_at.toISOString(), synced_at: r.synced_at?.toISOString() ?? null }));
}

/** A list's full syncs, newest first (bounded): the dashboard's sync history. */
export async function listSyncHistory(db: Queryable, tenantId: string, listId: string, limit = 50): Promise<ListSyncView[]> {
  const { rows } = await db.query<{ sync_id: string; state: SyncState; occurred_at: Date; batch_total: number; batches_received: number; subscribers_received: number; removed: number | null; kept_unsubscribed: number; started_at: Date; completed_at: Date | null }>(
    `SELECT id AS sync_id, state, occurred_at, batch_total, batches_received, subscribers_received, removed_count AS removed,
            kept_unsubscribed, started_at, completed_at
       FROM list_syncs WHERE tenant_id = $1 AND list_id = $2 ORDER BY started_at DESC, occurred_at DESC LIMIT $3`,
    [tenantId, listId, limit],
  );
  return rows.map((r) => ({
    ...r,
    occurred_at: r.occurred_at.toISOString(),
    started_at: r.started_at.toISOString(),
    completed_at: r.completed_at?.toISOString() ?? null,
  }));
}
