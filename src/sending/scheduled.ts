import type { Queryable } from '../db/pool.ts';
import { DomainError } from '../errors.ts';
import { UUID } from '../observability/cursor.ts';
import { cancelScheduled, moveScheduled, type ScheduledTarget } from '../outbox/scheduled.ts';
import { scheduledTime } from './submit.ts';

/** A scheduled transactional message after PATCH /v1/messages/{id} or its cancel. */
export interface ScheduledMessageView {
  id: string;
  status: string;
  scheduled_at: string;
}

// Statuses a message reaches once a transport took it: too late to cancel or move.
const SENT = new Set(['sending', 'sent', 'delivered', 'opened', 'clicked', 'bounced', 'complained']);

/**
 * Why a message cannot be moved or cancelled: 404 when it is not this tenant's, 409 `already_sent`
 * once a transport has it, `already_cancelled`, or `not_scheduled` (sent without scheduled_at, a
 * list job's message, suppressed, failed or expired).
 */
async function refusal(db: Queryable, tenantId: string, id: string): Promise<DomainError> {
  const { rows } = await db.query<{ status: string; scheduled: boolean }>(
    `SELECT m.status, j.scheduled_at IS NOT NULL AS scheduled FROM messages m LEFT JOIN proxy_jobs j ON j.id = m.proxy_job_id
      WHERE m.tenant_id = $1 AND m.id = $2::uuid`,
    [tenantId, id],
  );
  const m = rows[0];
  if (!m) return new DomainError('not_found', 'not_found', 'message not found');
  if (SENT.has(m.status)) return new DomainError('conflict', 'already_sent', `message is ${m.status}: too late to change`);
  if (m.status === 'cancelled') return new DomainError('conflict', 'already_cancelled', 'message was already cancelled');
  return new DomainError('conflict', 'not_scheduled', m.scheduled ? `message is ${m.status}, not queued` : 'message was not sent with scheduled_at');
}

/**
 * `message`: that message only (PATCH /v1/messages/{id}); `send`: every copy of the send it belongs
 * to (its To, Cc and Bcc recipients), as providers that give one id per send mean it (src/compat).
 */
export type ScheduleScope = 'message' | 'send';
const TARGET: Record<ScheduleScope, ScheduledTarget> = { message: 'message', send: 'send_of_message' };

/** The named message's row among those changed, else the first. */
const named = <T extends { id: string }>(rows: T[], id: string) => rows.find((r) => r.id === id) ?? rows[0];

const view = (r: { id: string; status: string; next_attempt_at: Date }): ScheduledMessageView => ({ id: r.id, status: r.status, scheduled_at: r.next_attempt_at.toISOString() });

export async function cancelScheduledMessage(db: Queryable, tenantId: string, id: string, scope: ScheduleScope = 'message'): Promise<ScheduledMessageView> {
  if (!UUID.test(id)) throw new DomainError('not_found', 'not_found', 'message not found');
  const rows = await cancelScheduled(db, TARGET[scope], tenantId, id);
  if (!rows[0]) throw await refusal(db, tenantId, id);
  return view(named(rows, id));
}

export async function rescheduleMessage(db: Queryable, tenantId: string, id: string, scheduledAt: string, scope: ScheduleScope = 'message'): Promise<ScheduledMessageView> {
  if (!UUID.test(id)) throw new DomainError('not_found', 'not_found', 'message not found');
  const at = scheduledTime(scheduledAt)!;
  const rows = await moveScheduled(db, TARGET[scope], tenantId, id, at);
  if (!rows[0]) throw await refusal(db, tenantId, id);
  return view(named(rows, id));
}

/**
 * The same two actions for every message of one send (a proxy job: what other providers' APIs
 * call "an email", src/compat). Refused as a whole, with the first message's reason, when no
 * message of the send is still scheduled.
 */
async function sendRefusal(db: Queryable, tenantId: string, jobId: string): Promise<DomainError> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM messages WHERE tenant_id = $1 AND proxy_job_id = $2::uuid ORDER BY id LIMIT 1', [tenantId, jobId]);
  return rows[0] ? refusal(db, tenantId, rows[0].id) : new DomainError('not_found', 'not_found', 'email not found');
}

/**
 * Cancels every still-scheduled copy of one send (providers cancel a scheduled email by its send id:
 * useSend, Resend, Brevo's `messageId`), in one statement; with none left, the answer says why.
 */
export async function cancelScheduledSend(db: Queryable, tenantId: string, jobId: string): Promise<number> {
  if (!UUID.test(jobId)) throw new DomainError('not_found', 'not_found', 'email not found');
  const { length } = await cancelScheduled(db, 'send', tenantId, jobId);
  if (!length) throw await sendRefusal(db, tenantId, jobId);
  return length;
}

export async function rescheduleSend(db: Queryable, tenantId: string, jobId: string, scheduledAt: string): Promise<number> {
  if (!UUID.test(jobId)) throw new DomainError('not_found', 'not_found', 'email not found');
  const at = scheduledTime(scheduledAt)!;
  const { length } = await moveScheduled(db, 'send', tenantId, jobId, at);
  if (!length) throw await sendRefusal(db, tenantId, jobId);
  return length;
}
