import { timingSafeEqual } from 'node:crypto';
import type { Queryable } from '../db/pool.ts';
import { newId } from '../ids.ts';
import { ENQUEUE_WAKE, enqueueCtes } from '../outbox/enqueue.ts';
import { signJson, type TrackingSettings } from '../tracking/links.ts';
import type { DoubleOptIn, PendingHandler } from './contacts.ts';
import { OPT_OUT_STANDS } from './opt-out.ts';

/**
 * Double opt-in (per list, `double_opt_in: {enabled, from, subject, html}`): a new contact is
 * `pending` and gets a confirmation message with a signed link (the tracking key, src/tracking/
 * links.ts) that expires after CONFIRM_TTL_HOURS. Opening the link shows a page with a button; only
 * its POST confirms, so mail scanners that prefetch links confirm nobody. A confirmation turns
 * `pending` into `active` and nothing else: a contact that unsubscribed or opted out since stays so.
 */
export const CONFIRM_TTL_HOURS = 168;

interface ConfirmPayload {
  t: 'd';
  n: string; // tenant
  l: string; // list
  s: string; // subscriber (contact)
  x: number; // expiry, Unix seconds
}

export function confirmUrl(tracking: TrackingSettings, c: { tenantId: string; listId: string; contactId: string }, now = Date.now()): string {
  const payload: ConfirmPayload = { t: 'd', n: c.tenantId, l: c.listId, s: c.contactId, x: Math.floor(now / 1000) + CONFIRM_TTL_HOURS * 3600 };
  return `${tracking.baseUrl}/confirm/${signJson(tracking.secret, JSON.stringify(payload))}`;
}

export type ConfirmToken = { ok: true; tenantId: string; listId: string; contactId: string } | { ok: false; reason: 'invalid' | 'expired' };

/** Checks the signature in constant time (over the token's characters), then the expiry. */
export function readConfirmToken(tracking: TrackingSettings, token: string, now = Date.now()): ConfirmToken {
  const dot = token.lastIndexOf('.');
  if (token.length > 2048 || dot < 1 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) return { ok: false, reason: 'invalid' };
  let json: string;
  try {
    json = Buffer.from(token.slice(0, dot), 'base64url').toString('utf8');
  } catch {
    return { ok: false, reason: 'invalid' };
  }
  const expected = Buffer.from(signJson(tracking.secret, json));
  const given = Buffer.from(token);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'invalid' };
  let p: ConfirmPayload;
  try {
    p = JSON.parse(json);
  } catch {
    return { ok: false, reason: 'invalid' };
  }
  if (p?.t !== 'd' || typeof p.x !== 'number') return { ok: false, reason: 'invalid' };
  if (p.x * 1000 < now) return { ok: false, reason: 'expired' };
  return { ok: true, tenantId: p.n, listId: p.l, contactId: p.s };
}

const fill = (html: string, url: string) => html.replace(/\{\{\s*confirm_url\s*\}\}/g, url);

/**
 * Queues the confirmation messages of new pending contacts, in the transaction that created them,
 * as transactional proxy sends through the outbox: one job per contact (its own link), all in ONE
 * statement for the batch (an import's 5,000 rows included).
 */
export function confirmationQueuer(tracking: TrackingSettings, defaultFrom: string | undefined): PendingHandler {
  return async (tx: Queryable, d: DoubleOptIn, pending: Array<{ id: string; email: string }>) => {
    const from = d.from ?? defaultFrom;
    if (!from || !d.subject || !d.html) return;
    const tenantAndList = await tx.query<{ tenant_id: string; list_id: string }>(
      'SELECT tenant_id, list_id FROM subscribers WHERE id = $1',
      [pending[0].id],
    );
    const { tenant_id: tenantId, list_id: listId } = tenantAndList.rows[0];
    const jobIds = pending.map(() => newId());
    const html = pending.map((p) => fill(d.html!, confirmUrl(tracking, { tenantId, listId, contactId: p.id })));
    await tx.query(
      `WITH c AS (
         SELECT * FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::uuid[]) AS c(job_id, message_id, email, html, contact_id)
       ), jobs AS (
         INSERT INTO proxy_jobs (id, tenant_id, message_type, from_address, subject, html, text_body, idempotency_key)
         SELECT job_id, $1, 'transactional', $8, $9, html, '', 'double-opt-in:' || contact_id FROM c
         RETURNING id
       ), ${enqueueCtes(`
         SELECT c.message_id AS id, $1::uuid AS tenant_id, c.job_id AS proxy_job_id, NULL::uuid AS send_job_id, NULL::uuid AS subscriber_id,
                c.email AS recipient, jsonb_build_object('list_id', $2::text, 'purpose', 'double_opt_in') AS tags, '{}'::jsonb AS headers,
                now() AS next_attempt_at, NULL::timestamptz AS expires_at
           FROM c JOIN jobs ON jobs.id = c.job_id`)}
       SELECT ${ENQUEUE_WAKE}`,
      [tenantId, listId, jobIds, pending.map(() => newId()), pending.map((p) => p.email), html, pending.map((p) => p.id), from, d.subject],
    );
  };
}

/** pending → active; anything else (already active, unsubscribed, opted out, gone) is left as it is. */
export async function confirmContact(db: Queryable, t: { tenantId: string; listId: string; contactId: string }): Promise<'confirmed' | 'not_pending'> {
  const { rowCount } = await db.query(
    `UPDATE list_members m SET status = 'active', reason = 'double_opt_in', status_at = greatest(now(), m.status_at), updated_at = now()
       FROM lists l
      WHERE l.tenant_id = m.tenant_id AND l.id = m.list_id AND l.deleted_at IS NULL
        AND m.tenant_id = $1 AND m.list_id = $2 AND m.subscriber_id = $3 AND m.status = 'pending' AND NOT (${OPT_OUT_STANDS})`,
    [t.tenantId, t.listId, t.contactId],
  );
  return rowCount ? 'confirmed' : 'not_pending';
}
