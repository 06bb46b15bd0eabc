import type { Queryable } from '../../db/pool.ts';
import { invalid } from '../../errors.ts';
import { enqueueChannelMessage, type Accepted } from '../enqueue.ts';
import { e164 } from '../sms/phone.ts';
import type { WhatsAppTemplate } from '../types.ts';
import { resolveLine, type PlatformLine } from './line.ts';

/** POST /v1/whatsapp/send: a template message (any time) or a session text (inside the 24 h window). */
export interface WhatsAppSendRequest {
  to: string;
  type: 'template' | 'text';
  template?: WhatsAppTemplate;
  text?: string;
  idempotency_key?: string;
}

/** The customer-service window: free-form messages only within 24 h of the handset's last message. */
export const SESSION_WINDOW_HOURS = 24;

export async function sendWhatsApp(
  db: Queryable,
  tenantId: string,
  req: WhatsAppSendRequest,
  settings: { secretsKey?: Buffer; platform: PlatformLine; idempotencyTtlHours: number },
): Promise<Accepted> {
  const to = e164(req.to);
  if (req.type === 'template' && (!req.template || req.text !== undefined)) throw invalid('a template message takes `template` (and no `text`)');
  if (req.type === 'text' && (!req.text?.trim() || req.template !== undefined)) throw invalid('a text message takes a non-empty `text` (and no `template`)');
  const line = await resolveLine(db, settings.secretsKey, tenantId, settings.platform);
  if (!line) throw invalid('no WhatsApp line: set one with PATCH /v1/account/whatsapp-cloud-line or configure the platform default', 'whatsapp_not_configured');
  if (req.type === 'text') {
    const { rowCount } = await db.query(
      `SELECT 1 FROM whatsapp_sessions WHERE tenant_id = $1 AND phone = $2 AND last_inbound_at > now() - make_interval(hours => $3)`,
      [tenantId, to, SESSION_WINDOW_HOURS],
    );
    if (!rowCount) throw invalid(`no message from ${to} in the last ${SESSION_WINDOW_HOURS} h: only template messages may be sent`, 'session_window_closed');
  }
  return enqueueChannelMessage(
    db,
    tenantId,
    { channel: 'whatsapp', recipient: to, body: req.text, template: req.template, phoneNumberId: line.phoneNumberId },
    { key: req.idempotency_key, request: req, ttlHours: settings.idempotencyTtlHours },
  );
}
