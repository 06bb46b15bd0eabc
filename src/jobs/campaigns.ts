import type { Db, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { DomainError, invalid } from '../errors.ts';
import { decodeCursor, encodeCursor } from '../observability/cursor.ts';
import { DISPATCH_CHANNEL } from '../outbox/enqueue.ts';
import { delayQueuedSql } from '../outbox/settle.ts';
import type { Page } from '../observability/messages.ts';
import { submitProxySend } from '../sending/submit.ts';
import { getTemplateVersion, sourceOf } from '../templates/templates.ts';
import { newId } from '../ids.ts';
import { cancelSendJob, checkSendJob, insertSendJob, startTime, type SendJobFields } from './jobs.ts';
import type { JobScheduler } from './runner.ts';
import { campaignStatus, type CampaignStatus, type SendJobStatus } from './status.ts';
import { compileTemplate, type TemplateSource } from './template.ts';

/**
 * Campaigns (/v1/campaigns): a campaign is a send job with a life before and during sending. Its
 * id is the campaign's (the campaign_id every message's tags carry); its one send job holds the
 * rest. POST /api/send-jobs makes the same object, born scheduled. Drafts are edited, then
 * scheduled; a paused job's messages are not claimed (src/dispatch/claim.ts) and resume where they
 * stopped, shifted by the pause so the pacing holds; its window still closes (runner.ts expire).
 */

export interface CampaignRequest {
  name?: string;
  list_id: string;
  template_id?: string;
  subject?: string;
  html?: string;
  text?: string;
  from?: string;
  reply_to?: string;
  scheduled_at?: string;
  window_start?: string;
  window_end?: string;
  tracking?: { open?: boolean; click?: boolean };
  rate_per_second?: number;
}

export interface CampaignCounters {
  total: number; queued: number; sent: number; delivered: number; opened: number; clicked: number;
  unsubscribed: number; bounced: number; hard_bounced: number; complained: number; failed: number;
}

export interface Campaign {
  id: string;
  send_job_id: string;
  name: string | null;
  list_id: string;
  status: CampaignStatus;
  status_reason: string | null;
  template_id: string | null;
  subject: string;
  html: string | null;
  text: string | null;
  from: string;
  reply_to: string | null;
  scheduled_at: string | null;
  window_start: string | null;
  window_end: string | null;
  tracking: { open: boolean; click: boolean };
  rate_per_second: number | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  paused_at: string | null;
  finished_at: string | null;
  counters?: CampaignCounters;
}

interface Defaults {
  from?: string;
  requireVerifiedDomain?: boolean;
}

const notFound = (id: string) => new DomainError('not_found', 'not_found', `campaign ${id} not found`);
const wrongState = (code: string, status: SendJobStatus, action: string) =>
  new DomainError('conflict', code, `campaign is ${campaignStatus(status)}: it cannot be ${action}`);

/** A stored template's current version (src/templates), as the campaign's Liquid sources. */
export async function resolveStoredTemplate(db: Queryable, tenantId: string, templateId: string): Promise<{ source: TemplateSource; version: number }> {
  try {
    const v = await getTemplateVersion(db, tenantId, templateId);
    return { source: sourceOf(v), version: v.version };
  } catch (err) {
    if (err instanceof DomainError && err.kind === 'not_found') throw invalid(`template ${templateId.slice(0, 100)} not found`, 'template_not_found');
    throw err;
  }
}

async function fieldsOf(db: Queryable, tenantId: string, req: CampaignRequest, defaults: Defaults): Promise<SendJobFields> {
  if (req.template_id && (req.subject !== undefined || req.html !== undefined || req.text !== undefined)) {
    throw invalid('give template_id or subject with html/text, not both');
  }
  let source: TemplateSource;
  let templateVersion: number | undefined;
  if (req.template_id) ({ source, version: templateVersion } = await resolveStoredTemplate(db, tenantId, req.template_id));
  else {
    if (!req.subject) throw invalid('subject is required without template_id');
    if (!req.html && !req.text) throw invalid('html or text is required without template_id');
    source = { subject: req.subject, html: req.html, text: req.text };
  }
  return checkSendJob(db, tenantId, { ...req, subject: source.subject }, defaults, { draft: true, source, templateVersion });
}

export async function createCampaign(db: Db, tenantId: string, req: CampaignRequest, defaults: Defaults): Promise<Campaign> {
  const fields = await fieldsOf(db, tenantId, req, defaults);
  const { campaignId } = await withTransaction(db, (tx) => insertSendJob(tx, tenantId, fields, 'draft'));
  return (await getCampaign(db, tenantId, campaignId, false))!;
}

/** Locks the campaign's job row (the order cancel and fan-out use) and returns it. */
async function lockJob(tx: Queryable, tenantId: string, campaignId: string) {
  const { rows } = await tx.query<{ id: string; status: SendJobStatus; scheduled_at: Date | null; window_start: Date | null; template_id: string | null; started_at: Date | null; fanout_done: boolean }>(
    'SELECT id, status, scheduled_at, window_start, template_id, started_at, fanout_done FROM send_jobs WHERE tenant_id = $1 AND campaign_id = $2 FOR UPDATE',
    [tenantId, campaignId],
  );
  if (!rows[0]) throw notFound(campaignId);
  return rows[0];
}

/** Changes a draft: the fields given replace the stored ones, checked as a whole again. */
export async function updateCampaign(db: Db, tenantId: string, id: string, patch: Partial<CampaignRequest>, defaults: Defaults): Promise<Campaign> {
  const current = await getCampaign(db, tenantId, id, false);
  if (!current) throw notFound(id);
  const content = patch.template_id !== undefined || patch.subject !== undefined || patch.html !== undefined || patch.text !== undefined;
  const merged: CampaignRequest = {
    name: patch.name ?? current.name ?? undefined,
    list_id: patch.list_id ?? current.list_id,
    ...(content
      ? { template_id: patch.template_id, subject: patch.subject, html: patch.html, text: patch.text }
      : current.template_id ? { template_id: current.template_id } : { subject: current.subject, html: current.html ?? undefined, text: current.text ?? undefined }),
    from: patch.from ?? current.from,
    reply_to: patch.reply_to ?? current.reply_to ?? undefined,
    scheduled_at: patch.scheduled_at ?? current.scheduled_at ?? undefined,
    window_start: patch.window_start ?? current.window_start ?? undefined,
    window_end: patch.window_end ?? current.window_end ?? undefined,
    tracking: { ...current.tracking, ...patch.tracking },
    rate_per_second: patch.rate_per_second ?? current.rate_per_second ?? undefined,
  };
  const f = await fieldsOf(db, tenantId, merged, defaults);
  await withTransaction(db, async (tx) => {
    const job = await lockJob(tx, tenantId, id);
    if (job.status !== 'draft') throw wrongState('campaign_not_draft', job.status, 'edited');
    const list = await tx.query('SELECT 1 FROM lists WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL', [tenantId, f.listId]);
    if (!list.rowCount) throw invalid(`list ${f.listId} not found for this tenant`, 'unknown_list');
    await tx.query('UPDATE campaigns SET name = $2 WHERE id = $1', [id, f.name]);
    await tx.query(
      `UPDATE send_jobs SET name = $2, list_id = $3, from_address = $4, reply_to = $5, template_id = $6, template = $7,
              track_opens = $8, track_clicks = $9, scheduled_at = $10, window_start = $11, window_end = $12, rate_per_second = $13,
              template_version = $14, updated_at = now()
        WHERE id = $1`,
      [job.id, f.name, f.listId, f.from, f.replyTo, f.templateId, f.source, f.trackOpens, f.trackClicks, f.scheduledAt, f.windowStart, f.windowEnd, f.ratePerSecond, f.templateVersion],
    );
  });
  return (await getCampaign(db, tenantId, id, false))!;
}

/**
 * A draft (or a scheduled campaign, to move it) is scheduled: at scheduled_at (given, or stored,
 * or now). A stored template is resolved now, to its newest version.
 */
export async function scheduleCampaign(db: Db, scheduler: JobScheduler, tenantId: string, id: string, scheduledAt?: string): Promise<Campaign> {
  const startAt = await withTransaction(db, async (tx) => {
    const job = await lockJob(tx, tenantId, id);
    if (job.status !== 'draft' && job.status !== 'pending') throw wrongState('campaign_not_schedulable', job.status, 'scheduled');
    const at = scheduledAt ? new Date(scheduledAt) : (job.scheduled_at ?? new Date());
    const { rows } = await tx.query<{ window_end: Date | null }>('SELECT window_end FROM send_jobs WHERE id = $1', [job.id]);
    if (rows[0].window_end && at >= rows[0].window_end) throw invalid('scheduled_at is at or after window_end: the campaign could never send');
    const stored = job.template_id ? await resolveStoredTemplate(tx, tenantId, job.template_id) : null;
    if (stored) compileTemplate(stored.source);
    await tx.query(
      `UPDATE send_jobs SET status = 'pending', scheduled_at = $2, template = coalesce($3, template), template_version = coalesce($4, template_version),
              updated_at = now() WHERE id = $1`,
      [job.id, at, stored?.source ?? null, stored?.version ?? null],
    );
    return startTime({ scheduled_at: at, window_start: job.window_start });
  });
  const campaign = (await getCampaign(db, tenantId, id, false))!;
  await scheduler.scheduleRun(campaign.send_job_id, startAt);
  return campaign;
}

/** Nothing more of a scheduled or running campaign is claimed; what is being sent finishes. */
export async function pauseCampaign(db: Db, tenantId: string, id: string): Promise<Campaign> {
  await withTransaction(db, async (tx) => {
    const job = await lockJob(tx, tenantId, id);
    if (job.status !== 'running' && job.status !== 'pending') throw wrongState('campaign_not_pausable', job.status, 'paused');
    await tx.query(`UPDATE send_jobs SET status = 'paused', paused_at = now(), updated_at = now() WHERE id = $1`, [job.id]);
  });
  return (await getCampaign(db, tenantId, id, false))!;
}

/**
 * Continues where the pause stopped: queued messages keep their order and spacing, moved later by
 * the pause's length (so a paced campaign does not burst), and the fan-out goes on from its cursor.
 */
export async function resumeCampaign(db: Db, scheduler: JobScheduler, tenantId: string, id: string): Promise<Campaign> {
  const run = await withTransaction(db, async (tx) => {
    const job = await lockJob(tx, tenantId, id);
    if (job.status !== 'paused') throw wrongState('campaign_not_paused', job.status, 'resumed');
    await tx.query(
      `WITH job AS (
         UPDATE send_jobs SET status = CASE WHEN started_at IS NULL THEN 'pending' ELSE 'running' END, paused_at = NULL, updated_at = now()
          WHERE id = $1 RETURNING tenant_id, now() - (SELECT paused_at FROM send_jobs WHERE id = $1) AS pause
       ), shifted AS (
         ${delayQueuedSql('$1', '(SELECT pause FROM job)')}
       )
       -- The tenant's send clock starts after them, so the rest of the fan-out keeps the pace.
       UPDATE tenant_send_clock c SET next_slot = greatest(c.next_slot, (SELECT max(next_attempt_at) FROM shifted))
         FROM job WHERE c.tenant_id = job.tenant_id AND EXISTS (SELECT 1 FROM shifted)`,
      [job.id],
    );
    return job.started_at === null || !job.fanout_done
      ? { jobId: job.id, at: job.started_at === null ? startTime({ scheduled_at: job.scheduled_at!, window_start: job.window_start }) : new Date() }
      : null;
  });
  if (run) await scheduler.scheduleRun(run.jobId, run.at);
  await db.query(`SELECT pg_notify('${DISPATCH_CHANNEL}', '')`);
  return (await getCampaign(db, tenantId, id, false))!;
}

export async function cancelCampaign(db: Db, tenantId: string, id: string): Promise<Campaign> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM send_jobs WHERE tenant_id = $1 AND campaign_id = $2', [tenantId, id]);
  if (!rows[0]) throw notFound(id);
  try {
    await cancelSendJob(db, tenantId, rows[0].id);
  } catch (err) {
    if (err instanceof DomainError && err.code === 'job_finished') throw new DomainError('conflict', 'campaign_finished', err.message.replace('send job', 'campaign'));
    throw err;
  }
  return (await getCampaign(db, tenantId, id, false))!;
}

/**
 * Sends the campaign once to `to`, rendered with the list's contact of that address when there is
 * one (else the address alone), as a transactional proxy send through the normal outbox.
 */
export async function sendCampaignTest(db: Db, tenantId: string, id: string, to: string, options: { idempotencyTtlHours: number; requireVerifiedDomain?: boolean; unsubscribeUrl: string }) {
  const { rows } = await db.query(
    `SELECT j.template, j.from_address, j.reply_to, j.list_id, s.id AS subscriber_id, s.first_name, s.last_name, s.properties, m.preferences
       FROM send_jobs j
       LEFT JOIN subscribers s ON s.tenant_id = j.tenant_id AND s.list_id = j.list_id AND lower(s.email) = lower($3)
       LEFT JOIN list_members m ON m.tenant_id = j.tenant_id AND m.list_id = j.list_id AND m.subscriber_id = s.id
      WHERE j.tenant_id = $1 AND j.campaign_id = $2`,
    [tenantId, id, to],
  );
  const j = rows[0];
  if (!j) throw notFound(id);
  const out = compileTemplate(j.template).render({
    email: to,
    subscriber_id: j.subscriber_id ?? '00000000-0000-4000-8000-000000000000',
    preferences: j.preferences ?? {},
    unsubscribe_url: options.unsubscribeUrl,
    contact: { email: to, first_name: j.first_name ?? null, last_name: j.last_name ?? null, ...(j.properties ?? {}), preferences: j.preferences ?? {} },
  });
  const result = await submitProxySend(
    db,
    tenantId,
    {
      message_type: 'transactional', from: j.from_address, to: [to], subject: `[Test] ${out.subject}`,
      html: out.html ?? '', text: out.text ?? '', headers: j.reply_to ? { 'Reply-To': j.reply_to } : undefined,
      tags: { campaign_id: id, site_id: '', list_id: j.list_id, segment: 'test' },
      idempotency_key: `campaign-test:${newId()}`,
    },
    options,
  );
  return { job_id: result.jobId };
}

const CAMPAIGN_SELECT = `
  SELECT j.campaign_id, j.id AS job_id, j.name, j.list_id, j.status, j.status_reason, j.template_id, j.template, j.from_address, j.reply_to,
         j.scheduled_at, j.window_start, j.window_end, j.track_opens, j.track_clicks, j.rate_per_second, j.created_at, j.updated_at,
         j.started_at, j.paused_at, j.finished_at
    FROM send_jobs j`;

function view(r: Record<string, any>): Campaign {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return {
    id: r.campaign_id, send_job_id: r.job_id, name: r.name, list_id: r.list_id, status: campaignStatus(r.status), status_reason: r.status_reason,
    template_id: r.template_id, subject: r.template.subject, html: r.template.html ?? null, text: r.template.text ?? null,
    from: r.from_address, reply_to: r.reply_to, scheduled_at: iso(r.scheduled_at), window_start: iso(r.window_start), window_end: iso(r.window_end),
    tracking: { open: r.track_opens, click: r.track_clicks }, rate_per_second: r.rate_per_second === null ? null : Number(r.rate_per_second),
    created_at: r.created_at.toISOString(), updated_at: r.updated_at.toISOString(),
    started_at: iso(r.started_at), paused_at: iso(r.paused_at), finished_at: iso(r.finished_at),
  };
}

/**
 * One campaign; with counters, from its messages (index messages_send_job) and their events:
 * sent counts everything handed to a transport; bounced includes hard_bounced; unsubscribed counts
 * recipients who used the message's unsubscribe link.
 */
export async function getCampaign(db: Queryable, tenantId: string, id: string, withCounters = true): Promise<Campaign | null> {
  const { rows } = await db.query(`${CAMPAIGN_SELECT} WHERE j.tenant_id = $1 AND j.campaign_id = $2`, [tenantId, id]);
  if (!rows[0]) return null;
  const campaign = view(rows[0]);
  if (!withCounters) return campaign;
  const c = await db.query<CampaignCounters>(
    `SELECT count(*)::int AS total,
            count(*) FILTER (WHERE m.status IN ('queued', 'sending'))::int AS queued,
            count(*) FILTER (WHERE m.status IN ('sent', 'delivered', 'opened', 'clicked', 'bounced', 'complained'))::int AS sent,
            count(*) FILTER (WHERE m.status IN ('delivered', 'opened', 'clicked', 'complained'))::int AS delivered,
            count(*) FILTER (WHERE m.status IN ('opened', 'clicked'))::int AS opened,
            count(*) FILTER (WHERE m.status = 'clicked')::int AS clicked,
            count(*) FILTER (WHERE m.status = 'bounced')::int AS bounced,
            count(*) FILTER (WHERE m.status = 'complained')::int AS complained,
            count(*) FILTER (WHERE m.status = 'failed')::int AS failed,
            (SELECT count(DISTINCT e.message_id)::int FROM messages b JOIN message_events e ON e.message_id = b.id
              WHERE b.send_job_id = $1 AND b.status = 'bounced' AND e.type = 'bounce' AND e.data->>'bounce_class' = 'hard') AS hard_bounced,
            (SELECT count(DISTINCT e.message_id)::int FROM messages u JOIN message_events e ON e.message_id = u.id
              WHERE u.send_job_id = $1 AND e.type = 'unsubscribe') AS unsubscribed
       FROM messages m WHERE m.send_job_id = $1`,
    [campaign.send_job_id],
  );
  return { ...campaign, counters: c.rows[0] };
}

const JOB_STATUS_OF: Record<CampaignStatus, SendJobStatus> = {
  draft: 'draft', scheduled: 'pending', running: 'running', paused: 'paused', completed: 'completed', cancelled: 'cancelled', failed: 'failed',
};

/** Newest first (campaign ids are v7); filter by status and a name search. */
export async function listCampaigns(db: Queryable, tenantId: string, q: { limit: number; cursor?: string; status?: CampaignStatus; search?: string }): Promise<Page<Campaign>> {
  const before = decodeCursor(q.cursor, { id: 'uuid' });
  const { rows } = await db.query(
    `${CAMPAIGN_SELECT}
      WHERE j.tenant_id = $1 AND ($2::uuid IS NULL OR j.campaign_id < $2) AND ($3::text IS NULL OR j.status = $3)
        AND ($4::text IS NULL OR j.name ILIKE '%' || replace(replace(replace($4, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%')
      ORDER BY j.campaign_id DESC LIMIT $5`,
    [tenantId, before?.id ?? null, q.status ? JOB_STATUS_OF[q.status] : null, q.search ?? null, q.limit + 1],
  );
  const more = rows.length > q.limit;
  const data = rows.slice(0, q.limit).map(view);
  return { data, nextCursor: more ? encodeCursor({ id: data[data.length - 1].id }) : null };
}
