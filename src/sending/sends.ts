import type { Queryable } from '../db/pool.ts';
import { DomainError } from '../errors.ts';
import { UUID } from '../observability/cursor.ts';

/**
 * One transactional send (a proxy job: its content and every copy), found by the id of any of its
 * messages. Providers that give one id per send (src/compat) answer with the id of its first
 * message, which is also a message of our own API (GET /v1/messages/{id}).
 */
export interface SendView {
  /** The message the send was asked for by. */
  message_id: string;
  job_id: string;
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  reply_to: string[] | null;
  subject: string;
  html: string;
  text: string;
  tags: Record<string, unknown>;
  headers: Record<string, string>;
  template_id: string | null;
  attachment_count: number;
  created_at: string;
  scheduled_at: string | null;
  /** Every copy, in the order the send named its recipients. */
  copies: Array<{ id: string; recipient: string; status: string; sent_at: string | null; last_error: string | null }>;
}

interface SendRow {
  job_id: string;
  from_address: string;
  subject: string;
  html: string;
  text_body: string;
  to_header: string[] | null;
  cc_header: string[] | null;
  reply_to: string[] | null;
  template_id: string | null;
  attachment_count: number;
  created_at: Date;
  scheduled_at: Date | null;
  tags: Record<string, unknown>;
  headers: Record<string, string>;
  copies: Array<{ id: string; recipient: string; status: string; sent_at: string | null; last_error: string | null }>;
}

const notFound = () => new DomainError('not_found', 'not_found', 'email not found');

export async function getSend(db: Queryable, tenantId: string, messageId: string): Promise<SendView> {
  if (!UUID.test(messageId)) throw notFound();
  const { rows } = await db.query<SendRow>(
    `SELECT j.id AS job_id, j.from_address, j.subject, j.html, j.text_body, j.to_header, j.cc_header, j.reply_to, j.template_id,
            j.attachment_count, j.created_at, j.scheduled_at, m.tags, m.headers,
            (SELECT json_agg(json_build_object('id', c.id, 'recipient', c.recipient, 'status', c.status, 'sent_at', c.sent_at, 'last_error', c.last_error) ORDER BY c.id)
               FROM messages c WHERE c.proxy_job_id = j.id) AS copies
       FROM messages m JOIN proxy_jobs j ON j.id = m.proxy_job_id
      WHERE m.tenant_id = $1 AND m.id = $2::uuid`,
    [tenantId, messageId],
  );
  const r = rows[0];
  if (!r) throw notFound();
  const recipients = r.copies.map((c) => c.recipient);
  // Without a To header every copy went to its own To recipient (the contract's private sends).
  const to = r.to_header ?? recipients;
  const shown = new Set([...to, ...(r.cc_header ?? [])].map((a) => a.toLowerCase()));
  return {
    message_id: messageId,
    job_id: r.job_id,
    from: r.from_address,
    to,
    cc: r.cc_header ?? [],
    bcc: recipients.filter((a) => !shown.has(a.toLowerCase())),
    reply_to: r.reply_to,
    subject: r.subject,
    html: r.html,
    text: r.text_body,
    tags: r.tags,
    headers: r.headers,
    template_id: r.template_id,
    attachment_count: r.attachment_count,
    created_at: r.created_at.toISOString(),
    scheduled_at: r.scheduled_at?.toISOString() ?? null,
    copies: r.copies,
  };
}

/** The id a provider-shaped answer gives for a send: its first recipient's message. */
export async function firstMessageId(db: Queryable, tenantId: string, jobId: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    'SELECT id FROM messages WHERE tenant_id = $1 AND proxy_job_id = $2 ORDER BY id LIMIT 1',
    [tenantId, jobId],
  );
  if (!rows[0]) throw new Error(`send ${jobId} has no message`);
  return rows[0].id;
}
