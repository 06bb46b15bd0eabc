import type { Queryable } from '../../db/pool.ts';
import { e164OrUndefined } from '../sms/phone.ts';
import type { Receipt } from '../types.ts';

/** What one Meta webhook delivery (object whatsapp_business_account) tells us. */
export interface WhatsAppNotification {
  receipts: Receipt[];
  /** Inbound messages: each opens (or extends) the handset's 24 h session window. */
  inbound: Array<{ phone: string; phoneNumberId: string; at: Date }>;
}

const STATUS: Record<string, Receipt['outcome']> = { sent: 'sent', delivered: 'delivered', read: 'read', failed: 'failed' };

function when(timestamp: unknown): Date {
  const seconds = Number(timestamp);
  const at = Number.isFinite(seconds) && seconds > 0 ? new Date(seconds * 1000) : new Date();
  return Number.isNaN(at.getTime()) || at.getTime() > Date.now() + 300_000 ? new Date() : at;
}

const array = (v: unknown): any[] => (Array.isArray(v) ? v : []);

/** Reads entry[].changes[].value.{statuses, messages}; anything else in the payload is ignored. */
export function parseNotification(body: unknown): WhatsAppNotification {
  const out: WhatsAppNotification = { receipts: [], inbound: [] };
  for (const entry of array((body as { entry?: unknown })?.entry)) {
    for (const change of array(entry?.changes)) {
      const value = change?.value;
      const phoneNumberId = typeof value?.metadata?.phone_number_id === 'string' ? value.metadata.phone_number_id : undefined;
      for (const s of array(value?.statuses)) {
        const outcome = STATUS[s?.status];
        if (typeof s?.id !== 'string' || !outcome) continue;
        const error = outcome === 'failed' ? array(s.errors).map((e) => `${e?.code ?? ''} ${e?.title ?? ''}`.trim()).join('; ').slice(0, 300) || 'failed' : undefined;
        out.receipts.push({ channel: 'whatsapp', providerMessageId: s.id.slice(0, 200), outcome, occurredAt: when(s.timestamp), error: error ? `whatsapp ${error}` : undefined });
      }
      for (const m of array(value?.messages)) {
        const phone = e164OrUndefined(m?.from);
        if (phone && phoneNumberId) out.inbound.push({ phone, phoneNumberId, at: when(m.timestamp) });
      }
    }
  }
  return out;
}

/**
 * Opens session windows in one statement: for the tenant owning the line the message came in on,
 * else (the platform's shared line) for each tenant that had messaged that handset.
 */
export async function openSessions(db: Queryable, inbound: WhatsAppNotification['inbound']): Promise<number> {
  if (!inbound.length) return 0;
  const { rowCount } = await db.query(
    `INSERT INTO whatsapp_sessions (tenant_id, phone, last_inbound_at)
     SELECT DISTINCT ON (t.tenant_id, i.phone) t.tenant_id, i.phone, i.at
       FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS i(phone, line, at)
       CROSS JOIN LATERAL (
         SELECT l.tenant_id FROM whatsapp_lines l WHERE l.phone_number_id = i.line
         UNION
         SELECT m.tenant_id FROM messages m
          WHERE m.recipient = i.phone AND m.channel = 'whatsapp'
            AND NOT EXISTS (SELECT 1 FROM whatsapp_lines l WHERE l.phone_number_id = i.line)
       ) t
      ORDER BY t.tenant_id, i.phone, i.at DESC
     ON CONFLICT (tenant_id, phone) DO UPDATE SET last_inbound_at = greatest(whatsapp_sessions.last_inbound_at, EXCLUDED.last_inbound_at)`,
    [inbound.map((i) => i.phone), inbound.map((i) => i.phoneNumberId), inbound.map((i) => i.at)],
  );
  return rowCount ?? 0;
}
