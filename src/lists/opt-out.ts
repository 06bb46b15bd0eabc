import type { Db } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { lockListShared } from './store.ts';

/**
 * Opt-outs that start at the engine. They are final (migration 011, list_status_wins): no full
 * sync and no event undoes one, except a `subscription.activated` whose occurred_at is later.
 * Each one that changes a membership queues a `subscription.unsubscribed` outbound event in the
 * same statement, for the webhook delivery to bring to the Member Center.
 */

/** Where an opt-out came from; mirrored by the CHECK on list_members.opt_out_source. */
export const OPT_OUT_SOURCES = ['one_click', 'link', 'complaint', 'api'] as const;
export type OptOutSource = (typeof OPT_OUT_SOURCES)[number];

/**
 * Whether the opt-out of membership row `m` stands: then no API write (upsert, import, double
 * opt-in confirmation) re-subscribes it; only a later subscription.activated ends it (migration 011).
 */
export const OPT_OUT_STANDS = 'm.opted_out_at IS NOT NULL';

/** The outbound event type every opt-out queues. */
export const SUBSCRIPTION_UNSUBSCRIBED = 'subscription.unsubscribed';

/** Data of a `subscription.unsubscribed` outbound event (outbound_events.payload). */
export interface SubscriptionUnsubscribedData {
  list_id: string;
  subscriber_id: string;
  email: string;
  /** ISO 8601 UTC, microseconds: the opt-out's time, which a re-activation must be later than. */
  occurred_at: string;
  source: OptOutSource;
  message_id?: string;
}

/**
 * CTEs applying opt-outs to the rows of a CTE the caller defines first:
 *   opt_out_targets(tenant_id uuid, list_id uuid, subscriber_id uuid, source text, message_id uuid)
 * They define `opted_out` (the memberships changed, with their opt-out time) and
 * `opt_out_events` (the outbound rows queued). Set-based: one UPDATE and one INSERT for the set.
 *
 * Only active members change (a repeat, or an unsubscribed, bounced or complained member,
 * changes nothing and queues nothing). A multi-list opt-out (a complaint) takes no list
 * advisory lock: it only moves active members to unsubscribed, stamped now, which no step of a
 * concurrent sync can misorder (row locks serialise them). The write is stamped now(), or the stored status_at when
 * that is later (a Member Center clock ahead of ours): the opt-out always lands, and it beats
 * the activation it replaces by the tie rule. Rows are locked in key order, the order full-sync
 * batches use, so a multi-list opt-out (a complaint) does not deadlock with them.
 */
export const OPT_OUT_CTES = `
opt_out_locked AS (
  SELECT m.tenant_id, m.list_id, m.subscriber_id, greatest(now(), m.status_at) AS at, t.source, t.message_id, uuid_v7() AS event_id
    FROM opt_out_targets t
    JOIN list_members m ON m.tenant_id = t.tenant_id AND m.list_id = t.list_id AND m.subscriber_id = t.subscriber_id
   WHERE m.status = 'active'
   ORDER BY m.tenant_id, m.list_id, m.subscriber_id
     FOR UPDATE OF m
), opted_out AS (
  UPDATE list_members m
     SET status = 'unsubscribed', reason = l.source, source_id = l.event_id, status_at = l.at,
         opted_out_at = l.at, opt_out_source = l.source, updated_at = now()
    FROM opt_out_locked l
   WHERE m.tenant_id = l.tenant_id AND m.list_id = l.list_id AND m.subscriber_id = l.subscriber_id
     AND m.status = 'active'
  RETURNING m.tenant_id, m.list_id, m.subscriber_id, m.opted_out_at, m.opt_out_source, l.message_id, l.event_id
), opt_out_events AS (
  INSERT INTO outbound_events (id, tenant_id, type, payload)
  SELECT o.event_id, o.tenant_id, '${SUBSCRIPTION_UNSUBSCRIBED}',
         jsonb_build_object('list_id', o.list_id, 'subscriber_id', o.subscriber_id, 'email', s.email,
                            'occurred_at', to_char(o.opted_out_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                            'source', o.opt_out_source)
           || jsonb_strip_nulls(jsonb_build_object('message_id', o.message_id))
    FROM opted_out o
    LEFT JOIN subscribers s ON s.tenant_id = o.tenant_id AND s.id = o.subscriber_id
  RETURNING id
)`;

export interface MemberOptOut {
  tenantId: string;
  listId: string;
  subscriberId: string;
  source: OptOutSource;
  /** The message whose link was used, when there is one (one-click, link). */
  messageId?: string;
}

export interface MemberOptOutResult {
  /** false: no such membership for this tenant and list. */
  member: boolean;
  /** true when this call moved the member from active to unsubscribed. */
  changed: boolean;
  status: string | null;
  optedOutAt: Date | null;
  optOutSource: OptOutSource | null;
}

/**
 * Opts one member out of one list, under the list's shared lock like every membership writer
 * (so a completing full sync never interleaves). `extraCtes` may add statements over `opted_out`
 * that belong in the same statement (the message timeline, for tracked links).
 */
export async function optOutMember(db: Db, o: MemberOptOut, extraCtes = ''): Promise<MemberOptOutResult> {
  return withTransaction(db, async (client) => {
    await lockListShared(client, o.tenantId, o.listId);
    const changed = await client.query(
      `WITH opt_out_targets AS (
         SELECT $1::uuid AS tenant_id, $2::uuid AS list_id, $3::uuid AS subscriber_id, $4::text AS source, $5::uuid AS message_id
       ), ${OPT_OUT_CTES}${extraCtes}
       SELECT 1 FROM opted_out`,
      [o.tenantId, o.listId, o.subscriberId, o.source, o.messageId ?? null],
    );
    // Read afresh (not the statement's snapshot): a concurrent opt-out of the same member shows.
    const { rows } = await client.query<{ status: string; opted_out_at: Date | null; opt_out_source: OptOutSource | null }>(
      'SELECT status, opted_out_at, opt_out_source FROM list_members WHERE tenant_id = $1 AND list_id = $2 AND subscriber_id = $3',
      [o.tenantId, o.listId, o.subscriberId],
    );
    const m = rows[0];
    return { member: Boolean(m), changed: Boolean(changed.rowCount), status: m?.status ?? null, optedOutAt: m?.opted_out_at ?? null, optOutSource: m?.opt_out_source ?? null };
  });
}
