import { withTransaction, type Db } from '../db/pool.ts';
import { newId } from '../ids.ts';
import { lockListShared } from '../lists/store.ts';

export interface OneClickUnsubscribe {
  tenantId: string;
  listId: string;
  subscriberId: string;
  messageId?: string;
}

export type UnsubscribeOutcome = 'unsubscribed' | 'already' | 'not_member';

/**
 * Unsubscribes a member from one list at once (RFC 8058 one-click) and queues the
 * subscription.unsubscribed outbound event for the Member Center, in one statement.
 *
 * The membership is a last-writer-wins register (see src/lists/store.ts): the write is stamped
 * now() and applies only over an active status written no later than now, so a repeat, or a
 * member already unsubscribed, bounced or complained, changes nothing and queues nothing.
 * src/lists has no single-member status write (its upsert also rewrites the subscriber from a
 * full payload), hence this statement; it takes the list's shared lock like every other
 * membership writer, so a completing full sync never interleaves with it. When the link names
 * a message, the payload carries its message_id and the message's timeline gets an
 * `unsubscribe` event.
 */
export async function unsubscribeOneClick(db: Db, u: OneClickUnsubscribe): Promise<UnsubscribeOutcome> {
  return withTransaction(db, async (client) => {
    await lockListShared(client, u.tenantId, u.listId);
    const { rows } = await client.query<{ member: boolean; changed: boolean }>(
      `WITH upd AS (
         UPDATE list_members m
            SET status = 'unsubscribed', reason = 'one_click', source_id = $4, status_at = now(), updated_at = now()
          WHERE m.tenant_id = $1 AND m.list_id = $2 AND m.subscriber_id = $3
            AND m.status = 'active' AND m.status_at <= now()
         RETURNING m.tenant_id, m.list_id, m.subscriber_id, m.status_at
       ), ev AS (
         INSERT INTO outbound_events (id, tenant_id, type, payload)
         SELECT $5, upd.tenant_id, 'subscription.unsubscribed',
                jsonb_build_object('list_id', upd.list_id, 'subscriber_id', upd.subscriber_id, 'email', s.email,
                                   'occurred_at', to_char(upd.status_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                   'source', 'one_click') || jsonb_strip_nulls(jsonb_build_object('message_id', $6::uuid))
           FROM upd
           LEFT JOIN subscribers s ON s.tenant_id = upd.tenant_id AND s.id = upd.subscriber_id
         RETURNING id
       ), timeline AS (
         -- On the message's timeline too, when the link named one of this tenant's messages.
         INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, data, dedupe_key)
         SELECT $7, msg.tenant_id, msg.id, 'unsubscribe', upd.status_at,
                jsonb_build_object('list_id', upd.list_id, 'source', 'one_click'), 'unsubscribe:' || msg.id
           FROM upd JOIN messages msg ON msg.id = $6::uuid AND msg.tenant_id = upd.tenant_id
         ON CONFLICT (dedupe_key) DO NOTHING
       )
       SELECT EXISTS (SELECT 1 FROM list_members WHERE tenant_id = $1 AND list_id = $2 AND subscriber_id = $3) AS member,
              EXISTS (SELECT 1 FROM ev) AS changed`,
      [u.tenantId, u.listId, u.subscriberId, newId(), newId(), u.messageId ?? null, newId()],
    );
    const r = rows[0];
    return r.changed ? 'unsubscribed' : r.member ? 'already' : 'not_member';
  });
}
