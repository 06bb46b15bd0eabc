import type { Queryable } from '../db/pool.ts';
import { DomainError } from '../errors.ts';
import { UUID } from '../observability/cursor.ts';
import { STATE_OF_STATUS, statusesOfState, type ChannelState, type SmsFlow, type TextChannel, type WhatsAppTemplate } from './types.ts';

export interface ChannelMessageView {
  id: string;
  channel: TextChannel;
  to: string;
  status: ChannelState;
  /** Our finer status (queued, sending, sent, delivered, opened, failed, expired, suppressed, ...). */
  engineStatus: string;
  body: string | null;
  senderId: string | null;
  flow: SmsFlow | null;
  segments: number | null;
  encoding: string | null;
  template: WhatsAppTemplate | null;
  phoneNumberId: string | null;
  externalId: string | null;
  attempts: number;
  error: string | null;
  createdAt: string;
  sentAt: string | null;
  expiresAt: string | null;
  updatedAt: string;
}

interface Row {
  id: string; channel: TextChannel; recipient: string; status: string; body: string | null; sender_id: string | null;
  flow: SmsFlow | null; segments: number | null; encoding: string | null; template: WhatsAppTemplate | null;
  phone_number_id: string | null; provider_message_id: string | null; attempts: number; last_error: string | null;
  created_at: Date; sent_at: Date | null; expires_at: Date | null; updated_at: Date;
}

const PROJECTION = `m.id, m.channel, m.recipient, m.status, c.body, c.sender_id, c.flow, c.segments, c.encoding, c.template,
  c.phone_number_id, m.provider_message_id, m.attempts, m.last_error, m.created_at, m.sent_at, m.expires_at, m.updated_at`;

function view(r: Row): ChannelMessageView {
  return {
    id: r.id, channel: r.channel, to: r.recipient, status: STATE_OF_STATUS[r.status] ?? 'FAILED', engineStatus: r.status,
    body: r.body, senderId: r.sender_id, flow: r.flow, segments: r.segments, encoding: r.encoding, template: r.template,
    phoneNumberId: r.phone_number_id, externalId: r.provider_message_id, attempts: r.attempts, error: r.last_error,
    createdAt: r.created_at.toISOString(), sentAt: r.sent_at?.toISOString() ?? null, expiresAt: r.expires_at?.toISOString() ?? null,
    updatedAt: r.updated_at.toISOString(),
  };
}

export interface ChannelListQuery {
  flow?: SmsFlow;
  status?: ChannelState;
  /** Free text: a part of the recipient, the body or the provider's id. */
  query?: string;
  page: number;
  pageSize: number;
}

/**
 * Newest first, by page number (the reference's paging). The tenant's messages of the channel are
 * read through messages_channel_created; a free-text query filters them as they are walked.
 */
export async function listChannelMessages(db: Queryable, tenantId: string, channel: TextChannel, q: ChannelListQuery) {
  const like = q.query ? `%${q.query.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
  const { rows } = await db.query<Row & { total: string }>(
    `SELECT ${PROJECTION}, count(*) OVER () AS total
       FROM messages m JOIN channel_messages c ON c.message_id = m.id
      WHERE m.tenant_id = $1 AND m.channel = $2
        AND ($3::text IS NULL OR c.flow = $3)
        AND ($4::text[] IS NULL OR m.status = ANY ($4))
        AND ($5::text IS NULL OR m.recipient ILIKE $5 OR c.body ILIKE $5 OR m.provider_message_id ILIKE $5)
      ORDER BY m.created_at DESC, m.id DESC
      LIMIT $6 OFFSET $7`,
    [tenantId, channel, q.flow ?? null, q.status ? statusesOfState(q.status) : null, like, q.pageSize, (q.page - 1) * q.pageSize],
  );
  return { data: rows.map(view), page: q.page, pageSize: q.pageSize, total: rows.length ? Number(rows[0].total) : null };
}

export async function getChannelMessage(db: Queryable, tenantId: string, channel: TextChannel, id: string): Promise<ChannelMessageView> {
  const { rows } = await db.query<Row>(
    `SELECT ${PROJECTION} FROM messages m JOIN channel_messages c ON c.message_id = m.id
      WHERE m.tenant_id = $1 AND m.channel = $2 AND m.id = $3`,
    [tenantId, channel, UUID.test(id) ? id : null],
  );
  if (!rows.length) throw new DomainError('not_found', 'not_found', `${channel === 'sms' ? 'SMS' : 'WhatsApp'} message not found`);
  return view(rows[0]);
}

/** The message's timeline: what the dispatcher and the provider's receipts recorded, oldest first. */
export async function channelTimeline(db: Queryable, tenantId: string, channel: TextChannel, id: string) {
  const message = await getChannelMessage(db, tenantId, channel, id);
  const { rows } = await db.query<{ type: string; occurred_at: Date; data: Record<string, unknown> }>(
    `SELECT type, occurred_at, data FROM message_events WHERE tenant_id = $1 AND message_id = $2 ORDER BY occurred_at, recorded_at, id`,
    [tenantId, message.id],
  );
  return {
    id: message.id,
    status: message.status,
    events: [
      { type: 'accepted', occurredAt: message.createdAt, data: {} },
      ...rows.map((e) => ({ type: e.type, occurredAt: e.occurred_at.toISOString(), data: e.data ?? {} })),
    ],
  };
}
