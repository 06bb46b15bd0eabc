import type { Db } from '../db/pool.ts';
import { optOutMember, type OptOutSource } from '../lists/opt-out.ts';

export interface LinkUnsubscribe {
  tenantId: string;
  listId: string;
  subscriberId: string;
  messageId?: string;
}

/** The sources a signed unsubscribe link can claim: the RFC 8058 POST or the page's form. */
export type LinkOptOutSource = Extract<OptOutSource, 'one_click' | 'link'>;

export type UnsubscribeOutcome = 'unsubscribed' | 'already' | 'not_member';

// When the link named one of this tenant's messages, the opt-out goes on its timeline too.
const TIMELINE_CTE = `, timeline AS (
  INSERT INTO message_events (id, tenant_id, message_id, type, occurred_at, data, dedupe_key)
  SELECT uuid_v7(), msg.tenant_id, msg.id, 'unsubscribe', o.opted_out_at,
         jsonb_build_object('list_id', o.list_id, 'source', o.opt_out_source), 'unsubscribe:' || msg.id
    FROM opted_out o JOIN messages msg ON msg.id = o.message_id AND msg.tenant_id = o.tenant_id
  ON CONFLICT (dedupe_key) DO NOTHING
)`;

/**
 * Unsubscribes a member from the one list a signed link names (RFC 8058 one-click, or the
 * unsubscribe page's form): an engine opt-out (src/lists/opt-out.ts), final against full syncs,
 * with its subscription.unsubscribed outbound event and the message's `unsubscribe` timeline
 * event in the same statement. A repeat, or a member not active, changes nothing.
 */
export async function unsubscribeByLink(db: Db, u: LinkUnsubscribe, source: LinkOptOutSource): Promise<UnsubscribeOutcome> {
  const r = await optOutMember(db, { ...u, source }, TIMELINE_CTE);
  return r.changed ? 'unsubscribed' : r.member ? 'already' : 'not_member';
}
