import { randomUUID } from 'node:crypto';
import type { Db } from '../../src/db/pool.ts';
import { signWebhook } from '../../src/index.ts';
import { createWebhookClient } from '../../src/lists/webhook-clients.ts';
import { call, tenantWithToken } from '../helpers/app.ts';

export interface Member {
  id: string;
  email: string;
  status: string;
  preferences?: Record<string, unknown>;
}

/** A tenant with a bearer token and a Member Center webhook client. */
export async function memberCenter(db: Db, baseUrl: string) {
  const { tenantId, token } = await tenantWithToken(db);
  const client = await createWebhookClient(db, tenantId);
  const post = (path: string, body: unknown, opts: { secret?: string | string[]; timestamp?: number; nonce?: string; raw?: string } = {}) => {
    const raw = opts.raw ?? JSON.stringify(body);
    const headers = signWebhook({ clientId: client.clientId, secret: opts.secret ?? client.secret, body: raw, timestamp: opts.timestamp, nonce: opts.nonce });
    return call(baseUrl, 'POST', path, { rawBody: raw, headers: { ...headers } });
  };
  const listId: string = randomUUID();
  return {
    tenantId,
    token,
    client,
    listId,
    post,
    event(type: string, subscriber: Member, occurredAt: string | Date, extra: Record<string, unknown> = {}) {
      return post('/webhooks/subscriptions', {
        event_id: randomUUID(),
        event_type: type,
        tenant_id: tenantId,
        list_id: listId,
        subscriber,
        occurred_at: new Date(occurredAt).toISOString(),
        ...extra,
      });
    },
    batch(syncId: string, batchNo: number, batchTotal: number, subscribers: Member[], occurredAt: string | Date, extra: Record<string, unknown> = {}) {
      return post('/webhooks/lists/full-sync', {
        sync_id: syncId,
        batch_no: batchNo,
        batch_total: batchTotal,
        tenant_id: tenantId,
        list_id: listId,
        subscribers,
        occurred_at: new Date(occurredAt).toISOString(),
        ...extra,
      });
    },
    getList(id = listId, token_ = token) {
      return call(baseUrl, 'GET', `/api/lists/${id}`, { token: token_ });
    },
    /** Memberships of the list as stored, by subscriber id. */
    async members(id = listId) {
      const { rows } = await db.query<{ subscriber_id: string; status: string; reason: string; preferences: Record<string, unknown>; email: string }>(
        `SELECT m.subscriber_id, m.status, m.reason, m.preferences, s.email
           FROM list_members m JOIN subscribers s ON s.tenant_id = m.tenant_id AND s.id = m.subscriber_id
          WHERE m.tenant_id = $1 AND m.list_id = $2`,
        [tenantId, id],
      );
      return new Map(rows.map((r) => [r.subscriber_id, r]));
    },
  };
}

export function person(n: number, status = 'active', preferences?: Record<string, unknown>): Member {
  const id = randomUUID();
  return { id, email: `person${n}-${id.slice(0, 8)}@example.com`, status, ...(preferences ? { preferences } : {}) };
}
