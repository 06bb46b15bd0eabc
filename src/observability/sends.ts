import type { Queryable } from '../db/pool.ts';
import { DomainError } from '../errors.ts';
import { maskEmail } from '../log.ts';
import { UUID } from './cursor.ts';

/**
 * One transactional send (a proxy job: the `job_id` POST /v1/send-jobs answers) with its
 * recipients' messages: the unit other providers' APIs call "an email" (src/compat).
 */
export interface SendView {
  id: string;
  from: string;
  subject: string;
  html: string;
  text: string;
  to: string[];
  cc: string[];
  bcc: string[];
  reply_to: string[];
  created_at: string;
  updated_at: string;
  scheduled_at: string | null;
  /** The first recipient's message status (the first To address). */
  status: string;
  messages: Array<{ id: string; recipient: string; status: string }>;
}

export interface SendEvent {
  message_id: string;
  type: string;
  occurred_at: string;
  data: Record<string, unknown>;
}

interface SendRow {
  id: string;
  from_address: string;
  subject: string;
  html: string;
  text_body: string;
  to_header: string[] | null;
  cc_header: string[] | null;
  reply_to: string[] | null;
  created_at: Date;
  scheduled_at: Date | null;
  updated_at: Date;
  messages: Array<{ id: string; recipient: string; status: string }>;
}

// Messages in the order they were written (v7 ids): To, then Cc, then Bcc.
const SELECT_SENDS = `
  SELECT j.id, j.from_address, j.subject, j.html, j.text_body, j.to_header, j.cc_header, j.reply_to, j.created_at, j.scheduled_at,
         coalesce(max(m.updated_at), j.created_at) AS updated_at,
         coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'recipient', m.recipient, 'status', m.status) ORDER BY m.id) FILTER (WHERE m.id IS NOT NULL), '[]') AS messages
    FROM proxy_jobs j LEFT JOIN messages m ON m.proxy_job_id = j.id AND m.tenant_id = j.tenant_id`;

function view(r: SendRow, unmask: boolean): SendView {
  const show = (a: string) => (unmask ? a : maskEmail(a));
  // Without cc/bcc the send was private copies: every recipient is a To address.
  const to = r.to_header ?? r.messages.map((m) => m.recipient);
  const cc = r.cc_header ?? [];
  const shown = new Set([...to, ...cc].map((a) => a.toLowerCase()));
  const bcc = r.messages.map((m) => m.recipient).filter((a) => !shown.has(a.toLowerCase()));
  return {
    id: r.id,
    from: r.from_address,
    subject: r.subject,
    html: r.html,
    text: r.text_body,
    to: to.map(show),
    cc: cc.map(show),
    bcc: bcc.map(show),
    reply_to: r.reply_to ?? [],
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    scheduled_at: r.scheduled_at?.toISOString() ?? null,
    status: r.messages[0]?.status ?? 'queued',
    messages: r.messages.map((m) => ({ id: m.id, recipient: show(m.recipient), status: m.status })),
  };
}

const notFound = () => new DomainError('not_found', 'not_found', 'email not found');

export async function getSend(db: Queryable, tenantId: string, id: string, unmask: boolean): Promise<SendView> {
  if (!UUID.test(id)) throw notFound();
  const { rows } = await db.query<SendRow>(`${SELECT_SENDS} WHERE j.tenant_id = $1 AND j.id = $2::uuid GROUP BY j.id`, [tenantId, id]);
  if (!rows[0]) throw notFound();
  return view(rows[0], unmask);
}

/** The events of a send's messages, oldest first. */
export async function getSendEvents(db: Queryable, tenantId: string, id: string): Promise<SendEvent[]> {
  const { rows } = await db.query<{ message_id: string; type: string; occurred_at: Date; data: Record<string, unknown> | null }>(
    `SELECT e.message_id, e.type, e.occurred_at, e.data FROM message_events e JOIN messages m ON m.id = e.message_id
      WHERE m.tenant_id = $1 AND m.proxy_job_id = $2::uuid AND e.tenant_id = $1 ORDER BY e.occurred_at, e.id`,
    [tenantId, id],
  );
  return rows.map((e) => ({ message_id: e.message_id, type: e.type, occurred_at: e.occurred_at.toISOString(), data: e.data ?? {} }));
}

/** Deepest page a numbered listing serves: OFFSET cost grows with it; newer filters (startDate/endDate) reach the rest. */
export const MAX_SEND_PAGE = 100;

/** Sends newest first, by page number (the shape other providers' APIs list with), with the total. */
export async function listSends(
  db: Queryable,
  tenantId: string,
  options: { page: number; limit: number; from?: Date; to?: Date; unmask: boolean },
): Promise<{ data: SendView[]; count: number }> {
  const params: unknown[] = [tenantId, options.from ?? null, options.to ?? null];
  const where = `j.tenant_id = $1 AND ($2::timestamptz IS NULL OR j.created_at >= $2) AND ($3::timestamptz IS NULL OR j.created_at <= $3)`;
  const [page, total] = await Promise.all([
    db.query<SendRow>(
      `${SELECT_SENDS} WHERE j.id IN (SELECT j.id FROM proxy_jobs j WHERE ${where} ORDER BY j.created_at DESC, j.id DESC LIMIT $4 OFFSET $5)
        GROUP BY j.id ORDER BY j.created_at DESC, j.id DESC`,
      [...params, options.limit, (options.page - 1) * options.limit],
    ),
    db.query<{ n: number }>(`SELECT count(*)::int AS n FROM proxy_jobs j WHERE ${where}`, params),
  ]);
  return { data: page.rows.map((r) => view(r, options.unmask)), count: total.rows[0].n };
}
