import type { Db, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { DomainError, invalid } from '../errors.ts';
import {
  ensureList,
  inListTransaction,
  lockListExclusive,
  lockListShared,
  mayPredateSync,
  reapplySyncRemoval,
  upsertMembers,
  type SubscriberPayload,
} from './store.ts';

export interface FullSyncBatch {
  sync_id: string;
  batch_no: number;
  batch_total: number;
  tenant_id: string;
  list_id: string;
  subscribers: SubscriberPayload[];
  occurred_at: string;
}

export type SyncState = 'receiving' | 'completed' | 'superseded';

export interface BatchResult {
  syncState: SyncState;
  batchesReceived: number;
  batchTotal: number;
  /** Members marked removed by this sync's completion (only on the batch that completed it). */
  removed?: number;
  /** Members this sync listed as active, so far, who stay unsubscribed after an engine opt-out. */
  keptUnsubscribed: number;
}

interface SyncRow {
  tenant_id: string;
  list_id: string;
  batch_total: number;
  occurred_at: Date;
  state: SyncState;
}

/**
 * Applies one batch of a full sync: registers the sync on its first batch (a newer sync marks
 * older incomplete ones superseded), refuses a repeated batch, upserts the batch's subscribers
 * in one statement, and completes the sync once its last batch is in.
 */
export async function applySyncBatch(db: Db, tenantId: string, batch: FullSyncBatch): Promise<BatchResult> {
  if (batch.batch_no > batch.batch_total) throw invalid(`batch_no ${batch.batch_no} is beyond batch_total ${batch.batch_total}`);
  const subscribersJson = JSON.stringify(batch.subscribers);
  let counts: { batches_received: number; batch_total: number; state: SyncState; kept_unsubscribed: number };
  try {
    counts = await inListTransaction(db, async (client) => {
      await lockListShared(client, tenantId, batch.list_id);
      const floor = await ensureList(client, tenantId, batch.list_id);
      await registerSync(client, tenantId, batch);
      const fresh = await client.query(
        'INSERT INTO list_sync_batches (sync_id, batch_no, subscribers) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
        [batch.sync_id, batch.batch_no, batch.subscribers.length],
      );
      if (!fresh.rowCount) {
        throw new DomainError('conflict', 'duplicate_batch', `duplicate batch: batch ${batch.batch_no} of sync ${batch.sync_id} was already received`);
      }
      const { received, kept_unsubscribed: kept } = await upsertMembers(client, {
        tenantId,
        listId: batch.list_id,
        occurredAt: batch.occurred_at,
        reason: 'sync',
        sourceId: batch.sync_id,
        syncId: batch.sync_id,
        subscribersJson,
      });
      // A late batch of a sync older than the list's last completed one must not re-add members.
      if (mayPredateSync(floor, batch.occurred_at)) await reapplySyncRemoval(client, tenantId, batch.list_id, subscribersJson);
      // Last statement before COMMIT: the row lock it takes orders the batches of one sync, so
      // exactly one of them sees the final count, and only after the others have committed.
      const { rows } = await client.query<{ batches_received: number; batch_total: number; state: SyncState; kept_unsubscribed: number }>(
        `UPDATE list_syncs SET batches_received = batches_received + 1, subscribers_received = subscribers_received + $2,
                kept_unsubscribed = kept_unsubscribed + $3
          WHERE id = $1 RETURNING batches_received, batch_total, state, kept_unsubscribed`,
        [batch.sync_id, received, kept],
      );
      return rows[0];
    });
  } catch (err) {
    // A repeat of the last batch may be a retry after completion failed midway: finish it now.
    if (err instanceof DomainError && err.code === 'duplicate_batch') await completeSync(db, batch.sync_id).catch(() => {});
    throw err;
  }
  if (counts.batches_received < counts.batch_total) {
    return { syncState: counts.state, batchesReceived: counts.batches_received, batchTotal: counts.batch_total, keptUnsubscribed: counts.kept_unsubscribed };
  }
  const done = await completeSync(db, batch.sync_id);
  return {
    syncState: done.state,
    batchesReceived: counts.batches_received,
    batchTotal: counts.batch_total,
    removed: done.removed,
    keptUnsubscribed: counts.kept_unsubscribed,
  };
}

async function registerSync(client: Queryable, tenantId: string, batch: FullSyncBatch) {
  const created = await client.query<SyncRow>(
    `INSERT INTO list_syncs (id, tenant_id, list_id, batch_total, occurred_at, state)
     SELECT $1, $2, $3, $4, $5,
            CASE WHEN EXISTS (SELECT 1 FROM list_syncs o WHERE o.tenant_id = $2 AND o.list_id = $3
                               AND (o.occurred_at, o.id) > ($5::timestamptz, $1::uuid))
                 THEN 'superseded' ELSE 'receiving' END
     ON CONFLICT (id) DO NOTHING
     RETURNING state`,
    [batch.sync_id, tenantId, batch.list_id, batch.batch_total, batch.occurred_at],
  );
  if (created.rowCount) {
    // For operators: an older sync still receiving will never complete as the list's truth.
    await client.query(
      `UPDATE list_syncs SET state = 'superseded'
        WHERE tenant_id = $1 AND list_id = $2 AND state = 'receiving' AND (occurred_at, id) < ($3::timestamptz, $4::uuid)`,
      [tenantId, batch.list_id, batch.occurred_at, batch.sync_id],
    );
    return;
  }
  const { rows } = await client.query<SyncRow & { same_time: boolean }>(
    'SELECT tenant_id, list_id, batch_total, occurred_at = $2::timestamptz AS same_time FROM list_syncs WHERE id = $1',
    [batch.sync_id, batch.occurred_at],
  );
  const sync = rows[0];
  if (sync.tenant_id !== tenantId.toLowerCase() || sync.list_id !== batch.list_id.toLowerCase()) {
    throw invalid(`sync ${batch.sync_id} belongs to another tenant or list than this batch names`, 'sync_mismatch');
  }
  if (sync.batch_total !== batch.batch_total) {
    throw invalid(`batch_total ${batch.batch_total} disagrees with the sync's first batch (${sync.batch_total})`, 'sync_mismatch');
  }
  if (!sync.same_time) throw invalid("occurred_at disagrees with the sync's first batch", 'sync_mismatch');
}

/**
 * Completes a sync whose batches are all in: unless a newer sync exists for the list, members
 * it did not include are marked unsubscribed/sync_removed (never deleted), except those whose
 * status was written after the sync's occurred_at. Idempotent; safe to call again.
 */
export async function completeSync(db: Db, syncId: string): Promise<{ state: SyncState; removed?: number }> {
  const head = await db.query<{ tenant_id: string; list_id: string }>('SELECT tenant_id, list_id FROM list_syncs WHERE id = $1', [syncId]);
  if (!head.rowCount) throw new DomainError('not_found', 'not_found', `sync ${syncId} not found`);
  const { tenant_id: tenantId, list_id: listId } = head.rows[0];
  return withTransaction(db, async (client) => {
    // Exclusive: waits for in-flight writes of this list and keeps new ones out until COMMIT.
    await lockListExclusive(client, tenantId, listId);
    const { rows } = await client.query<{ state: SyncState; occurred_at: Date; complete: boolean; removed_count: number | null; completed_at: Date | null; newer: boolean }>(
      `SELECT s.state, s.occurred_at, s.batches_received >= s.batch_total AS complete, s.removed_count, s.completed_at,
              EXISTS (SELECT 1 FROM list_syncs o WHERE o.tenant_id = s.tenant_id AND o.list_id = s.list_id
                       AND (o.occurred_at, o.id) > (s.occurred_at, s.id)) AS newer
         FROM list_syncs s WHERE s.id = $1 FOR UPDATE`,
      [syncId],
    );
    const sync = rows[0];
    if (!sync.complete || sync.completed_at) return { state: sync.state, removed: sync.removed_count ?? undefined };
    if (sync.newer) {
      // An older sync finishing after a newer one started says nothing about the current list.
      await client.query(`UPDATE list_syncs SET state = 'superseded', completed_at = now(), removed_count = 0 WHERE id = $1`, [syncId]);
      return { state: 'superseded', removed: 0 };
    }
    // Set-based: one UPDATE over the list's members. A status written at or after the sync's
    // occurred_at (by an event) wins over the sync, with the same tie rule as every write.
    const removed = await client.query(
      `UPDATE list_members
          SET status = 'unsubscribed', reason = 'sync_removed', source_id = $3, status_at = $4, updated_at = now()
        WHERE tenant_id = $1 AND list_id = $2 AND seen_sync_id <> $3
          AND (status_at, list_status_rank(status)) < ($4::timestamptz, 1)`,
      [tenantId, listId, syncId, sync.occurred_at],
    );
    await client.query(
      `UPDATE list_syncs SET state = 'completed', completed_at = now(), removed_count = $2 WHERE id = $1`,
      [syncId, removed.rowCount ?? 0],
    );
    await client.query(
      `UPDATE list_syncs SET state = 'superseded'
        WHERE tenant_id = $1 AND list_id = $2 AND state = 'receiving' AND id <> $3 AND (occurred_at, id) < ($4::timestamptz, $3::uuid)`,
      [tenantId, listId, syncId, sync.occurred_at],
    );
    await client.query('UPDATE lists SET last_sync_id = $3, synced_at = $4 WHERE tenant_id = $1 AND id = $2', [tenantId, listId, syncId, sync.occurred_at]);
    return { state: 'completed', removed: removed.rowCount ?? 0 };
  });
}

/** Completes syncs left fully received but not completed (a crash between the two). Schedulable. */
export async function completePendingSyncs(db: Db): Promise<number> {
  const { rows } = await db.query<{ id: string }>(
    'SELECT id FROM list_syncs WHERE completed_at IS NULL AND batches_received >= batch_total ORDER BY occurred_at',
  );
  for (const row of rows) await completeSync(db, row.id);
  return rows.length;
}
