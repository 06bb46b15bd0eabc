import type { Db } from '../db/pool.ts';
import { assertVerifiedSender } from '../domains/domains.ts';
import { DomainError, invalid } from '../errors.ts';
import { newId } from '../ids.ts';
import { ENQUEUE_WAKE, enqueueCtes } from '../outbox/enqueue.ts';
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
}

export interface SubmitResult {
  jobId: string;
  /** True when the idempotency key matched an earlier identical request: nothing new was queued. */
  replayed: boolean;
}

function checkRequest(req: ProxySendRequest) {
  validateHeaderValue('Subject', req.subject);
  if (!req.html && !req.text) throw invalid('html and text must not both be empty');
  validateCustomHeaders(req.headers ?? {});
  if (req.message_type === 'newsletter' && !req.list_unsubscribe) {
    throw invalid('newsletter messages require list_unsubscribe.url (RFC 8058 one-click unsubscribe)');
  }
  if (req.list_unsubscribe && !/^https:\/\/[^\s<>]+$/i.test(req.list_unsubscribe.url)) {
    throw invalid('list_unsubscribe.url must be an https URL (RFC 8058)');
  }
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
  db: Db,
  tenantId: string,
  req: ProxySendRequest,
  options: { idempotencyTtlHours: number; requireVerifiedDomain?: boolean },
): Promise<SubmitResult> {
  checkRequest(req);
  if (options.requireVerifiedDomain) await assertVerifiedSender(db, tenantId, req.from);
  const hash = requestHash(req);
  const jobId = newId();
  const recipients = uniqueRecipients(req.to);
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
       INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, list_unsubscribe, idempotency_key)
       SELECT $4, $1, $6, $7, $8, $9, $10, $11, $2 FROM key
       RETURNING id
     ), ${enqueueCtes(`
       SELECT r.id, $1::uuid AS tenant_id, job.id AS proxy_job_id, NULL::uuid AS send_job_id, NULL::uuid AS subscriber_id,
              r.recipient, $14::jsonb AS tags, $15::jsonb AS headers, now() AS next_attempt_at, NULL::timestamptz AS expires_at
         FROM job CROSS JOIN unnest($12::uuid[], $13::text[]) AS r(id, recipient)`)}
     SELECT EXISTS (SELECT 1 FROM key) AS taken, ${ENQUEUE_WAKE}`,
    [
      tenantId, req.idempotency_key, hash, jobId, options.idempotencyTtlHours,
      req.message_type, req.from, req.subject, req.html, req.text, req.list_unsubscribe ?? null,
      recipients.map(() => newId()), recipients, req.tags, req.headers ?? {},
    ],
  );
  if (rows[0].taken) return { jobId, replayed: false };

  const existing = await db.query<{ request_hash: string; proxy_job_id: string }>(
    'SELECT request_hash, proxy_job_id FROM idempotency_keys WHERE tenant_id = $1 AND key = $2',
    [tenantId, req.idempotency_key],
  );
  if (existing.rows[0]?.request_hash === hash) return { jobId: existing.rows[0].proxy_job_id, replayed: true };
  throw new DomainError('conflict', 'idempotency_conflict', 'idempotency_key was already used with a different request body');
}
