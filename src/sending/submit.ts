import type { Queryable } from '../db/pool.ts';
import { assertVerifiedSender } from '../domains/domains.ts';
import { DomainError, invalid } from '../errors.ts';
import { newId } from '../ids.ts';
import { renderStoredTemplate, type TemplateRenderer } from '../templates/templates.ts';
import { prepareAttachments, type Attachment, type AttachmentInput } from './attachments.ts';
import { validateCustomHeaders, validateHeaderValue } from './headers.ts';
import { requestHash } from './idempotency.ts';

export interface ListUnsubscribe {
  url: string;
  mailto?: string;
}

/** POST /v1/send-jobs as the contract defines it. */
export interface ProxySendRequest {
  message_type: 'newsletter' | 'transactional';
  from: string;
  to: string[];
  subject: string;
  html: string;
  text: string;
  headers?: Record<string, string>;
  list_unsubscribe?: ListUnsubscribe;
  tags: { campaign_id: string; site_id: string; list_id: string; segment: string; [k: string]: unknown };
  idempotency_key: string;
  tenant_id?: string;
  // Ours (docs/api.md, "Transactional sends"):
  cc?: string[];
  bcc?: string[];
  reply_to?: string[];
  attachments?: AttachmentInput[];
  /** Subject, html and text come from this stored template's current version, rendered with `variables`. */
  template_id?: string;
  variables?: Record<string, unknown>;
  strict_variables?: boolean;
  scheduled_at?: string;
}

/** A send as accepted: with `template_id`, subject/html/text are left out and come from the template. */
export type SendInput = Omit<ProxySendRequest, 'subject' | 'html' | 'text'> & Partial<Pick<ProxySendRequest, 'subject' | 'html' | 'text'>>;

/** How far ahead `scheduled_at` may be. */
export const MAX_SCHEDULE_DAYS = 30;

export interface SubmitResult {
  jobId: string;
  /** True when the idempotency key matched an earlier identical request: nothing new was queued. */
  replayed: boolean;
}

/** Channel the dispatcher LISTENs on; a NOTIFY in the accepting transaction wakes it at commit. */
export const DISPATCH_CHANNEL = 'send_engine_dispatch';

function checkRequest(req: ProxySendRequest) {
  validateHeaderValue('Subject', req.subject);
  if (!req.html && !req.text) throw invalid('html and text must not both be empty');
  validateCustomHeaders(req.headers ?? {});
  if (req.reply_to !== undefined && Object.keys(req.headers ?? {}).some((h) => h.toLowerCase() === 'reply-to')) {
    throw invalid('give reply_to or a Reply-To header, not both');
  }
  if (req.message_type === 'newsletter' && !req.list_unsubscribe) {
    throw invalid('newsletter messages require list_unsubscribe.url (RFC 8058 one-click unsubscribe)');
  }
  if (req.list_unsubscribe && !/^https:\/\/[^\s<>]+$/i.test(req.list_unsubscribe.url)) {
    throw invalid('list_unsubscribe.url must be an https URL (RFC 8058)');
  }
}

/** When the messages become due: now, or `scheduled_at` (at most MAX_SCHEDULE_DAYS ahead; a past time is now). */
export function scheduledTime(scheduledAt: string | undefined, now = Date.now()): Date | null {
  if (scheduledAt === undefined) return null;
  const at = new Date(scheduledAt);
  if (at.getTime() > now + MAX_SCHEDULE_DAYS * 86_400_000) {
    throw invalid(`scheduled_at must be at most ${MAX_SCHEDULE_DAYS} days ahead`, 'scheduled_too_far');
  }
  return at;
}

/** The parts of a send only this API has (cc, reply-to, attachments, template, schedule), resolved. */
interface Resolved {
  req: ProxySendRequest;
  attachments: Attachment[];
  template: { id: string; version: number } | null;
  scheduledAt: Date | null;
}

async function resolve(db: Queryable, tenantId: string, req: SendInput, renderer?: TemplateRenderer): Promise<Resolved> {
  const scheduledAt = scheduledTime(req.scheduled_at);
  const attachments = await prepareAttachments(req.attachments);
  if (req.template_id === undefined) {
    if (req.variables !== undefined) throw invalid('variables need template_id');
    const { subject, html, text } = req;
    // The route's schema requires them without a template; a direct caller is held to it here.
    if (subject === undefined || html === undefined || text === undefined) throw invalid('subject, html and text are required without template_id');
    return { req: { ...req, subject, html, text }, attachments, template: null, scheduledAt };
  }
  if (req.subject !== undefined || req.html !== undefined || req.text !== undefined) {
    throw invalid('give template_id or subject/html/text, not both');
  }
  if (!renderer) throw new Error('template sends need a renderer');
  const out = await renderStoredTemplate(db, renderer, tenantId, req.template_id, req.variables ?? {}, { strict: req.strict_variables });
  return {
    req: { ...req, subject: out.subject, html: out.html ?? '', text: out.text ?? '' },
    attachments,
    template: { id: out.template_id, version: out.version },
    scheduledAt,
  };
}

/** One recipient per address, case-insensitively: nobody gets the same send twice. */
function uniqueRecipients(to: string[]): string[] {
  const seen = new Map<string, string>();
  for (const address of to) {
    const key = address.toLowerCase();
    if (!seen.has(key)) seen.set(key, address);
  }
  return [...seen.values()];
}

/**
 * Accepts a proxy send in ONE statement (so one round trip, atomic without BEGIN/COMMIT): the
 * idempotency record, the job, one message per recipient and the NOTIFY that wakes the dispatcher.
 * Job and messages are only written when the key was taken; suppressed recipients get status
 * `suppressed` and are never handed to a transport.
 */
export async function submitProxySend(
  db: Queryable,
  tenantId: string,
  given: SendInput,
  options: { idempotencyTtlHours: number; requireVerifiedDomain?: boolean; renderer?: TemplateRenderer },
): Promise<SubmitResult> {
  // The request as given (a template's rendering excluded) is what a replay must match.
  const hash = requestHash(given);
  const { req, attachments, template, scheduledAt } = await resolve(db, tenantId, given, options.renderer);
  checkRequest(req);
  if (options.requireVerifiedDomain) await assertVerifiedSender(db, tenantId, req.from);
  const jobId = newId();
  // Every To, Cc and Bcc address gets its own copy (its own message row, status and suppression
  // check). With cc or bcc the copies show the To and Cc lists (never Bcc); without, each To
  // recipient's copy shows only its own address, as the contract's sends always have.
  const recipients = uniqueRecipients([...req.to, ...(req.cc ?? []), ...(req.bcc ?? [])]);
  const conversation = Boolean(req.cc?.length || req.bcc?.length);
  const replyTo = req.reply_to ?? null;
  // The key is taken, or the statement waits for a concurrent holder to commit and then sees its
  // row. An expired record is taken over, as if it were not there.
  const { rows } = await db.query<{ taken: boolean }>(
    `WITH key AS (
       INSERT INTO idempotency_keys (tenant_id, key, request_hash, proxy_job_id, expires_at)
       VALUES ($1, $2, $3, $4, now() + make_interval(hours => $5))
       ON CONFLICT (tenant_id, key) DO UPDATE
         SET request_hash = EXCLUDED.request_hash, proxy_job_id = EXCLUDED.proxy_job_id,
             created_at = now(), expires_at = EXCLUDED.expires_at
         WHERE idempotency_keys.expires_at <= now()
       RETURNING proxy_job_id
     ), job AS (
       INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, list_unsubscribe, idempotency_key,
                               to_header, cc_header, reply_to, template_id, template_version, scheduled_at, attachment_count)
       SELECT $4, $1, $6, $7, $8, $9, $10, $11, $2, $16, $17, $18, $19, $20, $21, cardinality($22::text[]) FROM key
       RETURNING id
     ), attached AS (
       INSERT INTO proxy_job_attachments (proxy_job_id, position, tenant_id, filename, content_type, content)
       SELECT job.id, a.position, $1, a.filename, a.content_type, a.content
       FROM job CROSS JOIN unnest($22::text[], $23::text[], $24::bytea[]) WITH ORDINALITY AS a(filename, content_type, content, position)
     ), inserted AS (
       INSERT INTO messages (id, tenant_id, proxy_job_id, recipient, status, tags, headers, next_attempt_at)
       SELECT r.id, $1, job.id, r.recipient, CASE WHEN s.email IS NULL THEN 'queued' ELSE 'suppressed' END, $14, $15, coalesce($21, now())
       FROM job CROSS JOIN unnest($12::uuid[], $13::text[]) AS r(id, recipient)
       LEFT JOIN suppressions s ON s.tenant_id = $1 AND s.email = lower(r.recipient)
       RETURNING status
     ), wake AS (
       SELECT pg_notify('${DISPATCH_CHANNEL}', '') FROM (SELECT 1 FROM inserted WHERE status = 'queued' LIMIT 1) q
     )
     SELECT EXISTS (SELECT 1 FROM key) AS taken, (SELECT count(*) FROM wake) AS woken`,
    [
      tenantId, req.idempotency_key, hash, jobId, options.idempotencyTtlHours,
      req.message_type, req.from, req.subject, req.html, req.text, req.list_unsubscribe ?? null,
      recipients.map(() => newId()), recipients, req.tags, req.headers ?? {},
      conversation ? req.to : null, conversation && req.cc?.length ? req.cc : null, replyTo, template?.id ?? null, template?.version ?? null, scheduledAt,
      attachments.map((a) => a.filename), attachments.map((a) => a.contentType), attachments.map((a) => a.content),
    ],
  );
  if (rows[0].taken) return { jobId, replayed: false };

  const existing = await db.query<{ request_hash: string; proxy_job_id: string }>(
    'SELECT request_hash, proxy_job_id FROM idempotency_keys WHERE tenant_id = $1 AND key = $2',
    [tenantId, given.idempotency_key],
  );
  if (existing.rows[0]?.request_hash === hash) return { jobId: existing.rows[0].proxy_job_id, replayed: true };
  throw new DomainError('conflict', 'idempotency_conflict', 'idempotency_key was already used with a different request body');
}
