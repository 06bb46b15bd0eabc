import type { Db } from '../db/pool.ts';
import { DomainError } from '../errors.ts';
import {
  ensureList,
  inListTransaction,
  lockListShared,
  mayPredateSync,
  reapplySyncRemoval,
  SUPPRESSING_STATUSES,
  upsertMembers,
  type SubscriberPayload,
  type SubscriberStatus,
} from './store.ts';

export type SubscriptionEventType = 'subscription.activated' | 'subscription.unsubscribed' | 'preferences.updated';

export interface SubscriptionEvent {
  event_id: string;
  event_type: SubscriptionEventType;
  tenant_id: string;
  list_id: string;
  subscriber: SubscriberPayload;
  occurred_at: string;
}

/**
 * The membership status an event states. The event type decides between active and
 * unsubscribed; a bounced/complaint/suppressed subscriber keeps that status whatever the type.
 * preferences.updated carries the subscriber's status as the Member Center sees it.
 */
export function membershipStatusOf(event: Pick<SubscriptionEvent, 'event_type' | 'subscriber'>): SubscriberStatus {
  const status = event.subscriber.status;
  if (SUPPRESSING_STATUSES.has(status)) return status;
  if (event.event_type === 'subscription.activated') return 'active';
  if (event.event_type === 'subscription.unsubscribed') return 'unsubscribed';
  return status;
}

export interface EventResult {
  /** false when the membership already reflected something newer (recorded, nothing changed). */
  applied: boolean;
}

/**
 * Records a subscription event and applies it to the subscriber and the membership.
 * A repeated event_id is a conflict and changes nothing.
 */
export async function applySubscriptionEvent(db: Db, tenantId: string, clientId: string, event: SubscriptionEvent): Promise<EventResult> {
  const subscriber = { ...event.subscriber, status: membershipStatusOf(event) };
  const subscribersJson = JSON.stringify([subscriber]);
  return inListTransaction(db, async (client) => {
    await lockListShared(client, tenantId, event.list_id);
    const recorded = await client.query(
      `INSERT INTO subscription_events (tenant_id, event_id, event_type, list_id, subscriber_id, subscriber, occurred_at, applied, client_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, false, $8)
       ON CONFLICT (tenant_id, event_id) DO NOTHING`,
      [tenantId, event.event_id, event.event_type, event.list_id, event.subscriber.id, JSON.stringify(event.subscriber), event.occurred_at, clientId],
    );
    if (!recorded.rowCount) throw new DomainError('conflict', 'duplicate_event', `duplicate event: ${event.event_id} was already received`);

    const floor = await ensureList(client, tenantId, event.list_id);
    const { changed } = await upsertMembers(client, {
      tenantId,
      listId: event.list_id,
      occurredAt: event.occurred_at,
      reason: event.event_type,
      sourceId: event.event_id,
      syncId: null,
      subscribersJson,
    });
    if (mayPredateSync(floor, event.occurred_at)) await reapplySyncRemoval(client, tenantId, event.list_id, subscribersJson);
    if (changed) {
      await client.query('UPDATE subscription_events SET applied = true WHERE tenant_id = $1 AND event_id = $2', [tenantId, event.event_id]);
    }
    return { applied: changed > 0 };
  });
}
