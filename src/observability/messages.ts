import type { Queryable } from '../db/pool.ts';
import { DomainError } from '../errors.ts';
import { maskEmail } from '../log.ts';
import { isMessageStatus, MESSAGE_STATUSES } from '../outbox/status.ts';
import { decodeCursor, encodeCursor, UUID, type Window } from './cursor.ts';

export interface MessageView {
  id: string;
  provider_message_id: string | null;
  channel: string;
  /** The stored template's slug for a send made from one, else the list send job's name. */
  template: string | null;
  template_id: string | null;
  template_version: number | null;
  from: string | null;
  to: string;
  subject: string | null;
  created_at: string;
  sent_at: string | null;
  status: string;
  last_event_at: string | null;
}

export interface MessageFilters {
  window: Window;
  status?: string;
  recipient?: string;
  channel?: string;
  template?: string;
  identity?: string;
  /** `name:value`: messages whose tags carry that name with that value (table message_tags). */
  tag?: string;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

/** Our statuses, and the reference's SES event names mapped onto them. */
const STATUS_ALIASES: Record<string, string> = {
  Send: 'sent', Delivery: 'delivered', Bounce: 'bounced', Complaint: 'complained', Reject: 'failed',
  Open: 'opened', Click: 'clicked',
};

/** Timeline types as the reference names them (SES event types); ours pass through otherwise. */
const EVENT_TYPES: Record<string, string> = {
  send: 'Send', provider_send: 'Send', delivery: 'Delivery', bounce: 'Bounce', complaint: 'Complaint', reject: 'Reject',
  open: 'Open', click: 'Click', delivery_delay: 'DeliveryDelay', rendering_failure: 'RenderingFailure', suppression: 'Bounce',
};

const PROJECTION = `
  m.id, m.provider_message_id, m.recipient, m.status, m.created_at, m.sent_at, m.created_at::text AS position,
  coalesce(pj.message_type, CASE WHEN m.send_job_id IS NOT NULL THEN 'newsletter' END, 'transactional') AS channel,
  coalesce(t.slug, sj.name) AS template, coalesce(pj.template_id, sj.template_id) AS template_id,
  CASE WHEN pj.template_id IS NOT NULL THEN pj.template_version WHEN sj.template_id IS NOT NULL THEN sj.template_version END AS template_version,
  coalesce(pj.from_address, sj.from_address) AS from_address,
  coalesce(pj.subject, sj.template->>'subject') AS subject,
  (SELECT max(e.occurred_at) FROM message_events e WHERE e.message_id = m.id) AS last_event_at`;

const JOINS = `
  FROM messages m
  LEFT JOIN proxy_jobs pj ON pj.id = m.proxy_job_id
  LEFT JOIN send_jobs sj ON sj.id = m.send_job_id
  LEFT JOIN templates t ON t.tenant_id = m.tenant_id AND t.id = coalesce(pj.template_id, sj.template_id)`;

interface Row {
  id: string;
  provider_message_id: string | null;
  recipient: string;
  status: string;
  created_at: Date;
  sent_at: Date | null;
  position: string;
  channel: string;
  template: string | null;
  template_id: string | null;
  template_version: number | null;
  from_address: string | null;
  subject: string | null;
  last_event_at: Date | null;
}

function view(r: Row, unmask: boolean): MessageView {
  return {
    id: r.id,
    provider_message_id: r.provider_message_id,
    channel: r.channel,
    template: r.template,
    template_id: r.template_id,
    template_version: r.template_version,
    from: r.from_address,
    to: unmask ? r.recipient : maskEmail(r.recipient),
    subject: r.subject,
    created_at: r.created_at.toISOString(),
    sent_at: r.sent_at?.toISOString() ?? null,
    status: r.status,
    last_event_at: r.last_event_at?.toISOString() ?? null,
  };
}

export function normalizeStatus(status: string): string {
  const s = STATUS_ALIASES[status] ?? status;
  if (!isMessageStatus(s)) {
    throw new DomainError('invalid', 'validation_failed', `status must be one of ${[...MESSAGE_STATUSES, ...Object.keys(STATUS_ALIASES)].join(', ')}`);
  }
  return s;
}

/** Past this many sources a tag is common: its messages are found by a probe per message, newest first. */
const TAG_SOURCES_MAX = 1000;
const TAG_COLUMNS: Record<string, string> = { send_job: 'm.send_job_id', proxy_job: 'm.proxy_job_id', message: 'm.id' };

/**
 * The tag filter over message_tags (src/outbox/enqueue.ts writes it, one row per job and tag). A
 * tag of few sources becomes `column = ANY(their ids)` for only the columns they need, planned with
 * the ids, so PostgreSQL weighs a rare tag (read by the job indexes) against one job of a million
 * messages (the tenant's window read newest first); a tag of more sources is tested per message.
 */
async function tagFilter(db: Queryable, tenantId: string, name: string, value: string, param: (value: unknown) => string): Promise<string> {
  const { rows } = await db.query<{ source: string; ids: string[] }>(
    `SELECT source, array_agg(source_id) AS ids
       FROM (SELECT source, source_id FROM message_tags WHERE tenant_id = $1 AND name = $2 AND value = $3 LIMIT $4) s
      GROUP BY source`,
    [tenantId, name, value, TAG_SOURCES_MAX + 1],
  );
  if (rows.reduce((n, r) => n + r.ids.length, 0) > TAG_SOURCES_MAX) {
    return `EXISTS (SELECT 1 FROM message_tags g WHERE g.tenant_id = $1 AND g.name = ${param(name)} AND g.value = ${param(value)}
                      AND g.source_id = coalesce(m.send_job_id, m.proxy_job_id, m.id))`;
  }
  if (!rows.length) return 'false';
  return `(${rows.map((r) => `${TAG_COLUMNS[r.source]} = ANY(${param(r.ids)}::uuid[])`).join(' OR ')})`;
}

/**
 * One page of a tenant's messages, newest first, by keyset on (created_at, id): the next page
 * starts strictly after the last row served, so rows inserted meanwhile (which sort before the
 * cursor) never shift the page boundaries — no row is repeated or skipped.
 */
export async function listMessages(db: Queryable, tenantId: string, filters: MessageFilters, options: { limit: number; cursor?: string; unmask: boolean }): Promise<Page<MessageView>> {
  const after = decodeCursor(options.cursor, { t: 'time', i: 'uuid' });
  const params: unknown[] = [tenantId, filters.window.from, filters.window.to];
  const where = ['m.tenant_id = $1', 'm.created_at >= $2', 'm.created_at <= $3'];
  const add = (sql: (p: string) => string, value: unknown) => {
    params.push(value);
    where.push(sql(`$${params.length}`));
  };
  if (filters.status) add((p) => `m.status = ${p}`, normalizeStatus(filters.status));
  if (filters.recipient !== undefined) add((p) => `m.recipient = ${p}`, filters.recipient);
  if (filters.channel) add((p) => `coalesce(pj.message_type, CASE WHEN m.send_job_id IS NOT NULL THEN 'newsletter' END, 'transactional') = ${p}`, filters.channel);
  if (filters.template) add((p) => `coalesce(t.slug, sj.name) = ${p}`, filters.template);
  if (filters.identity) {
    // A full address or a bare domain: only the domain is compared.
    const domain = filters.identity.slice(filters.identity.lastIndexOf('@') + 1).toLowerCase();
    add((p) => `lower(split_part(coalesce(pj.from_address, sj.from_address), '@', 2)) = ${p}`, domain);
  }
  if (filters.tag !== undefined) {
    const split = filters.tag.indexOf(':');
    if (split < 1) throw new DomainError('invalid', 'validation_failed', 'tag must be name:value, e.g. campaign_id:spring-sale');
    const param = (value: unknown) => `$${params.push(value)}`;
    where.push(await tagFilter(db, tenantId, filters.tag.slice(0, split), filters.tag.slice(split + 1), param));
  }
  if (after) {
    params.push(after.t, after.i);
    where.push(`(m.created_at, m.id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
  }
  params.push(options.limit + 1);
  const { rows } = await db.query<Row>(
    `SELECT ${PROJECTION} ${JOINS} WHERE ${where.join(' AND ')}
      ORDER BY m.created_at DESC, m.id DESC LIMIT $${params.length}`,
    params,
  );
  const more = rows.length > options.limit;
  const page = more ? rows.slice(0, options.limit) : rows;
  const last = page[page.length - 1];
  return { data: page.map((r) => view(r, options.unmask)), nextCursor: more ? encodeCursor({ t: last.position, i: last.id }) : null };
}

/** By our uuid or the provider's id, within the tenant; anything else is not found. */
export async function getMessage(db: Queryable, tenantId: string, id: string, unmask: boolean): Promise<MessageView> {
  const { rows } = await db.query<Row>(
    `SELECT ${PROJECTION} ${JOINS}
      WHERE m.tenant_id = $1 AND (m.id = $2::uuid OR m.provider_message_id = $3)
      ORDER BY m.created_at DESC LIMIT 1`,
    [tenantId, UUID.test(id) ? id : null, id],
  );
  if (!rows.length) throw new DomainError('not_found', 'not_found', 'message not found');
  return view(rows[0], unmask);
}

const ADDRESS_KEYS = new Set(['recipient', 'email']);

export async function getMessageEvents(db: Queryable, tenantId: string, id: string, unmask: boolean) {
  const message = await getMessage(db, tenantId, id, unmask);
  const { rows } = await db.query<{ type: string; occurred_at: Date; data: Record<string, unknown> }>(
    `SELECT type, occurred_at, data FROM message_events
      WHERE tenant_id = $1 AND message_id = $2 ORDER BY occurred_at, recorded_at, id`,
    [tenantId, message.id],
  );
  return rows.map((e) => {
    const type = EVENT_TYPES[e.type] ?? e.type;
    const metadata: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e.data ?? {})) {
      if (v === null || v === undefined) continue;
      metadata[k] = ADDRESS_KEYS.has(k) && typeof v === 'string' && !unmask ? maskEmail(v) : v;
    }
    return type === 'Send' ? { type, occurred_at: e.occurred_at.toISOString() } : { type, occurred_at: e.occurred_at.toISOString(), metadata };
  });
}

/** One recipient's copy of a transactional send, with what its send carried (the Brevo layer's email logs). */
export interface SendCopyView {
  id: string;
  send_id: string;
  recipient: string;
  from: string;
  subject: string;
  /** Only on one copy (getSendCopy), not in lists. */
  html?: string;
  status: string;
  tags: Record<string, unknown>;
  template_id: string | null;
  /** The template's integer id (migration 025). */
  template_number: number | null;
  attachment_count: number;
  created_at: string;
}

export interface SendCopyFilters {
  window: Window;
  recipient?: string;
  sendId?: string;
  templateId?: string;
}

const COPY_FROM = `
    FROM messages m
    JOIN proxy_jobs pj ON pj.id = m.proxy_job_id
    LEFT JOIN templates t ON t.id = pj.template_id`;
const copySelect = (html: boolean) => `
  SELECT m.id, m.proxy_job_id AS send_id, m.recipient, pj.from_address AS from, pj.subject,${html ? ' pj.html,' : ''} m.status, m.tags,
         pj.template_id, t.number AS template_number, pj.attachment_count, m.created_at ${COPY_FROM}`;

type CopyRow = Omit<SendCopyView, 'created_at'> & { created_at: Date };
const copyView = (r: CopyRow): SendCopyView => ({ ...r, tags: r.tags ?? {}, created_at: r.created_at.toISOString() });

/** How far `listSendCopies` counts: an exact total up to here, so a count never scans a large account's whole window. */
export const SEND_COPY_COUNT_MAX = 10_000;

/**
 * Copies of the tenant's proxy sends by recipient (exact address), send or template, by offset (the
 * providers' paging), with the matching total (capped at SEND_COPY_COUNT_MAX).
 */
export async function listSendCopies(
  db: Queryable,
  tenantId: string,
  f: SendCopyFilters,
  page: { limit: number; offset: number; newestFirst: boolean },
): Promise<{ count: number; data: SendCopyView[] }> {
  const where = `WHERE m.tenant_id = $1 AND m.created_at >= $2 AND m.created_at <= $3
        AND ($4::text IS NULL OR m.recipient = $4)
        AND ($5::uuid IS NULL OR m.proxy_job_id = $5)
        AND ($6::uuid IS NULL OR pj.template_id = $6)`;
  const params = [tenantId, f.window.from, f.window.to, f.recipient ?? null, f.sendId ?? null, f.templateId ?? null];
  const order = page.newestFirst ? 'DESC' : 'ASC';
  const [{ rows }, counted] = await Promise.all([
    db.query<CopyRow>(`${copySelect(false)} ${where} ORDER BY m.created_at ${order}, m.id ${order} LIMIT $7 OFFSET $8`, [...params, page.limit, page.offset]),
    db.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT 1 ${COPY_FROM} ${where} LIMIT ${SEND_COPY_COUNT_MAX}) c`, params),
  ]);
  return { count: counted.rows[0].n, data: rows.map(copyView) };
}

/** One copy by its message id, within the tenant. */
export async function getSendCopy(db: Queryable, tenantId: string, id: string): Promise<SendCopyView> {
  if (!UUID.test(id)) throw new DomainError('not_found', 'not_found', 'message not found');
  const { rows } = await db.query<CopyRow>(`${copySelect(true)} WHERE m.tenant_id = $1 AND m.id = $2::uuid`, [tenantId, id]);
  if (!rows[0]) throw new DomainError('not_found', 'not_found', 'message not found');
  return copyView(rows[0]);
}
