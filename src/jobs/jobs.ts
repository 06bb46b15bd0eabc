import type { Db, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { assertVerifiedSender, defaultSender } from '../domains/domains.ts';
import { DomainError, invalid } from '../errors.ts';
import { newId } from '../ids.ts';
import { settleQueued } from '../outbox/settle.ts';
import { MESSAGE_STATUSES, type MessageStatus } from '../outbox/status.ts';
import { validateHeaderValue } from '../sending/headers.ts';
import { compileTemplate, type TemplateSource } from './template.ts';
import { contractStatus, LIVE_STATUSES, type ContractJobStatus, type SendJobStatus } from './status.ts';

/** POST /api/send-jobs as the contract defines it, plus `from`, `pacing` and `rate_per_second`. */
export interface CreateSendJobRequest {
  tenant_id?: string;
  list_id: string;
  name?: string;
  subject: string;
  body_html?: string;
  body_text?: string;
  template?: { subject?: string; html?: string; text?: string };
  scheduled_at?: string;
  window_start?: string;
  window_end?: string;
  tracking?: { open?: boolean; click?: boolean };
  from?: string;
  pacing?: 'fast' | 'spread';
  rate_per_second?: number;
}

/**
 * Bounds of a job's `rate_per_second`: below one message per 100 s the fan-out's send times leave
 * PostgreSQL's interval range for large lists; above 100,000/s no transport keeps up.
 */
export const RATE_PER_SECOND = { min: 0.01, max: 100_000 } as const;


export interface SendJobView {
  id: string;
  tenant_id: string;
  list_id: string;
  campaign_id: string;
  name: string | null;
  status: ContractJobStatus;
  status_reason: string | null;
  scheduled_at: string;
  // Absent, not null, when unset: the contract types them as plain strings.
  window_start?: string;
  window_end?: string;
  pacing: 'fast' | 'spread';
  rate_per_second: number | null;
  tracking: { open: boolean; click: boolean };
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  counts: Record<'total' | keyof typeof COUNTED, number>;
}

/** A job's counts, each the sum of its messages in these statuses (the outbox's vocabulary). */
const COUNTED = {
  queued: ['queued', 'sending'],
  sent: ['sent', 'delivered', 'opened', 'clicked', 'bounced', 'complained'],
  delivered: ['delivered', 'opened', 'clicked', 'complained'],
  bounced: ['bounced'],
  complained: ['complained'],
  suppressed: ['suppressed'],
  expired: ['expired'],
  failed: ['failed'],
  cancelled: ['cancelled'],
  opened: ['opened', 'clicked'],
  clicked: ['clicked'],
} as const satisfies Record<string, readonly MessageStatus[]>;

function jobCounts(byStatus: Partial<Record<MessageStatus, number>>): SendJobView['counts'] {
  const sum = (statuses: readonly MessageStatus[]) => statuses.reduce((n, s) => n + (byStatus[s] ?? 0), 0);
  const counts = Object.fromEntries(Object.entries(COUNTED).map(([name, statuses]) => [name, sum(statuses)]));
  return { total: sum(MESSAGE_STATUSES), ...counts } as SendJobView['counts'];
}

/** The job's source as a template: a plain body is a template without tags. */
function templateSource(req: CreateSendJobRequest): TemplateSource {
  if (req.template) {
    const { subject, html, text } = req.template;
    for (const [k, v] of Object.entries({ subject, html, text })) {
      if (v !== undefined && typeof v !== 'string') throw invalid(`template.${k} must be a string`);
    }
    if (!html && !text) throw invalid('template needs html or text');
    return { subject: subject ?? req.subject, html, text };
  }
  return { subject: req.subject, html: req.body_html, text: req.body_text };
}

const when = (iso: string | undefined) => (iso === undefined ? undefined : new Date(iso));

/** When the job may begin: its schedule (or now), never before its window opens. */
export function startTime(job: { scheduled_at: Date; window_start: Date | null }): Date {
  return new Date(Math.max(job.scheduled_at.getTime(), job.window_start?.getTime() ?? 0));
}

/** A send job's validated fields, as POST /api/send-jobs and POST /v1/campaigns both write them. */
export interface SendJobFields {
  listId: string;
  name: string | null;
  from: string;
  replyTo: string | null;
  templateId: string | null;
  /** The stored template's version `source` is (null without a stored template). */
  templateVersion: number | null;
  source: TemplateSource;
  trackOpens: boolean;
  trackClicks: boolean;
  /** Null only for a draft without a time yet. */
  scheduledAt: Date | null;
  windowStart: Date | null;
  windowEnd: Date | null;
  pacing: 'fast' | 'spread';
  ratePerSecond: number | null;
}

/** Checks times, sender and template (rendered once with sample values) the way every send job is checked. */
export async function checkSendJob(
  db: Queryable,
  tenantId: string,
  req: Omit<CreateSendJobRequest, 'subject'> & { subject?: string; reply_to?: string; template_id?: string },
  defaults: { from?: string; requireVerifiedDomain?: boolean },
  options: { draft?: boolean; source?: TemplateSource; templateVersion?: number } = {},
): Promise<SendJobFields> {
  const now = Date.now();
  const scheduledAt = when(req.scheduled_at) ?? (options.draft ? undefined : new Date(now));
  const windowStart = when(req.window_start);
  const windowEnd = when(req.window_end);
  if (windowStart && windowEnd && windowEnd <= windowStart) throw invalid('window_end must be after window_start');
  if (windowEnd && windowEnd.getTime() <= now) throw invalid('window_end is in the past');
  if (windowEnd && scheduledAt && scheduledAt >= windowEnd) throw invalid('scheduled_at is at or after window_end: the job could never send');
  if (req.pacing === 'spread' && !windowEnd) throw invalid('pacing "spread" needs window_end');
  const from = req.from ?? (await defaultSender(db, tenantId)) ?? defaults.from;
  if (!from) throw invalid('from is required (or set the tenant\'s default sender with PATCH /v1/account {"default_from"}, or configure DEFAULT_FROM_ADDRESS)');
  if (defaults.requireVerifiedDomain) await assertVerifiedSender(db, tenantId, from);
  if (req.reply_to !== undefined) validateHeaderValue('Reply-To', req.reply_to);
  const source = options.source ?? templateSource(req as CreateSendJobRequest);
  if (req.subject !== undefined) validateHeaderValue('Subject', req.subject);
  if (source.subject !== req.subject) validateHeaderValue('Subject', source.subject);
  // Compiling renders once with sample values: a template that cannot render fails here, not per recipient.
  compileTemplate(source);
  return {
    listId: req.list_id, name: req.name ?? null, from, replyTo: req.reply_to ?? null, templateId: req.template_id ?? null, templateVersion: options.templateVersion ?? null, source,
    trackOpens: req.tracking?.open ?? false, trackClicks: req.tracking?.click ?? false,
    scheduledAt: scheduledAt ?? null, windowStart: windowStart ?? null, windowEnd: windowEnd ?? null,
    pacing: req.pacing ?? 'fast', ratePerSecond: req.rate_per_second ?? null,
  };
}

/** Writes a campaign and its send job (one per campaign); the list must be the tenant's and not deleted. */
export async function insertSendJob(tx: Queryable, tenantId: string, f: SendJobFields, status: 'draft' | 'pending'): Promise<{ id: string; campaignId: string }> {
  const id = newId();
  const campaignId = newId();
  const list = await tx.query('SELECT 1 FROM lists WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL', [tenantId, f.listId]);
  if (list.rowCount === 0) throw invalid(`list ${f.listId} not found for this tenant`, 'unknown_list');
  await tx.query('INSERT INTO campaigns (id, tenant_id, name) VALUES ($1, $2, $3)', [campaignId, tenantId, f.name]);
  await tx.query(
    `INSERT INTO send_jobs (id, tenant_id, list_id, campaign_id, name, from_address, template, track_opens, track_clicks,
                            scheduled_at, window_start, window_end, pacing, rate_per_second, status, reply_to, template_id, template_version)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
    [
      id, tenantId, f.listId, campaignId, f.name, f.from, f.source, f.trackOpens, f.trackClicks,
      f.scheduledAt, f.windowStart, f.windowEnd, f.pacing, f.ratePerSecond, status, f.replyTo, f.templateId, f.templateVersion,
    ],
  );
  return { id, campaignId };
}

export async function createSendJob(
  db: Db,
  tenantId: string,
  req: CreateSendJobRequest,
  defaults: { from?: string; requireVerifiedDomain?: boolean },
): Promise<{ id: string; startAt: Date }> {
  const fields = await checkSendJob(db, tenantId, req, defaults);
  const { id } = await withTransaction(db, (tx) => insertSendJob(tx, tenantId, fields, 'pending'));
  return { id, startAt: startTime({ scheduled_at: fields.scheduledAt!, window_start: fields.windowStart }) };
}

export async function getSendJob(db: Queryable, tenantId: string, id: string): Promise<SendJobView> {
  const { rows } = await db.query(
    `SELECT j.*,
            -- The guardrail holds a tenant's newsletters: say so on its live jobs.
            CASE WHEN j.status IN ('pending', 'running', 'paused') AND t.newsletter_paused_at IS NOT NULL
                 THEN 'newsletters paused: ' || coalesce(t.newsletter_pause_reason, 'guardrail') ELSE j.status_reason END AS reason,
            (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM (
               SELECT status, count(*)::int AS n FROM messages WHERE send_job_id = j.id GROUP BY status) c) AS by_status
       FROM send_jobs j JOIN tenants t ON t.id = j.tenant_id
      WHERE j.tenant_id = $1 AND j.id = $2`,
    [tenantId, id],
  );
  const j = rows[0];
  if (!j) throw new DomainError('not_found', 'not_found', `send job ${id} not found`);
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    id: j.id,
    tenant_id: j.tenant_id,
    list_id: j.list_id,
    campaign_id: j.campaign_id,
    name: j.name,
    status: contractStatus(j.status),
    status_reason: j.reason ?? (j.status === 'paused' ? 'paused' : null),
    // A draft without a time yet (/v1/campaigns) shows its creation time.
    scheduled_at: (j.scheduled_at ?? j.created_at).toISOString(),
    ...(j.window_start && { window_start: j.window_start.toISOString() }),
    ...(j.window_end && { window_end: j.window_end.toISOString() }),
    pacing: j.pacing,
    rate_per_second: j.rate_per_second === null ? null : Number(j.rate_per_second),
    tracking: { open: j.track_opens, click: j.track_clicks },
    created_at: j.created_at.toISOString(),
    started_at: iso(j.started_at),
    finished_at: iso(j.finished_at),
    counts: jobCounts(j.by_status),
  };
}

/**
 * Cancels a job that has not finished: everything not yet handed to a transport is cancelled at
 * once. The job row lock orders this against a fan-out chunk in progress (see fanout.ts).
 */
export async function cancelSendJob(db: Db, tenantId: string, id: string): Promise<{ cancelledMessages: number }> {
  return withTransaction(db, async (tx) => {
    const { rows } = await tx.query<{ status: SendJobStatus }>('SELECT status FROM send_jobs WHERE tenant_id = $1 AND id = $2 FOR UPDATE', [tenantId, id]);
    if (!rows[0]) throw new DomainError('not_found', 'not_found', `send job ${id} not found`);
    if (!LIVE_STATUSES.includes(rows[0].status)) {
      throw new DomainError('conflict', 'job_finished', `send job is already ${rows[0].status}`);
    }
    await tx.query(`UPDATE send_jobs SET status = 'cancelled', status_reason = 'cancelled by request', finished_at = now() WHERE id = $1`, [id]);
    return { cancelledMessages: await settleQueued(tx, id, 'cancelled', 'job cancelled') };
  });
}

/**
 * Ends a job whose orchestration failed for good (see runner.ts): the reason is kept on the job,
 * and what it had queued is failed with it, so a failed job sends nothing more. Same lock order
 * as cancelSendJob. False when the job had already finished.
 */
export async function failSendJob(db: Db, id: string, reason: string): Promise<boolean> {
  return withTransaction(db, async (tx) => {
    const failed = await tx.query(
      `UPDATE send_jobs SET status = 'failed', status_reason = $2, fanout_done = true, finished_at = now()
        WHERE id = $1 AND status IN ('pending', 'running', 'paused')`,
      [id, reason],
    );
    if (!failed.rowCount) return false;
    await settleQueued(tx, id, 'failed', 'send job failed');
    return true;
  });
}

export interface SendJobSummary {
  id: string;
  name: string | null;
  list_id: string;
  status: SendJobStatus;
  status_reason: string | null;
  scheduled_at: string;
  created_at: string;
  finished_at: string | null;
  /** Live jobs only (null once finished): messages fanned out so far, and those past the transport (any outcome). */
  total: number | null;
  done: number | null;
}

/**
 * A tenant's send jobs, newest first. Live jobs' progress is counted through the messages_send_job
 * index (one probe per live job on the page); finished jobs are not counted (their figures are on
 * getSendJob), so a page of big finished jobs costs nothing more than its rows.
 */
export async function listSendJobs(db: Queryable, tenantId: string, options: { limit: number; status?: SendJobStatus }): Promise<SendJobSummary[]> {
  const { rows } = await db.query<{ id: string; name: string | null; list_id: string; status: SendJobStatus; status_reason: string | null; scheduled_at: Date; created_at: Date; finished_at: Date | null; total: number | null; done: number | null }>(
    `SELECT j.id, j.name, j.list_id, j.status, j.status_reason, j.scheduled_at, j.created_at, j.finished_at,
            CASE WHEN j.status IN ('pending', 'running') THEN c.total END AS total,
            CASE WHEN j.status IN ('pending', 'running') THEN c.done END AS done
       FROM send_jobs j
       -- The status test inside: a one-time filter, so a finished job's messages are never read.
       CROSS JOIN LATERAL (
         SELECT count(*)::int AS total, count(*) FILTER (WHERE m.status NOT IN ('queued', 'sending'))::int AS done
           FROM messages m WHERE m.send_job_id = j.id AND j.status IN ('pending', 'running')) c
      WHERE j.tenant_id = $1 AND ($2::text IS NULL OR j.status = $2)
      ORDER BY j.created_at DESC, j.id DESC LIMIT $3`,
    [tenantId, options.status ?? null, options.limit],
  );
  return rows.map((r) => ({
    ...r,
    scheduled_at: r.scheduled_at.toISOString(),
    created_at: r.created_at.toISOString(),
    finished_at: r.finished_at?.toISOString() ?? null,
  }));
}

/** Messages of one job handed to the transport per minute, oldest first (a sends-over-time chart). */
export async function sendJobSendsPerMinute(db: Queryable, tenantId: string, id: string): Promise<Array<{ minute: string; sent: number }>> {
  const { rows } = await db.query<{ minute: Date; sent: number }>(
    `SELECT date_trunc('minute', m.sent_at) AS minute, count(*)::int AS sent
       FROM messages m JOIN send_jobs j ON j.id = m.send_job_id
      WHERE j.tenant_id = $1 AND j.id = $2 AND m.sent_at IS NOT NULL
      GROUP BY 1 ORDER BY 1`,
    [tenantId, id],
  );
  return rows.map((r) => ({ minute: r.minute.toISOString(), sent: r.sent }));
}

/** The tenant a send job belongs to (the operator's CLI names a job by id alone); null when unknown. */
export async function sendJobTenant(db: Queryable, id: string): Promise<string | null> {
  const { rows } = await db.query<{ tenant_id: string }>('SELECT tenant_id FROM send_jobs WHERE id = $1', [id]);
  return rows[0]?.tenant_id ?? null;
}
