import type { FastifyInstance } from 'fastify';
import { verifiedDomainRequired } from '../../domains/domains.ts';
import { DomainError } from '../../errors.ts';
import type { AppDeps } from '../../http/app.ts';
import { createCampaign, getCampaign, listCampaigns, pauseCampaign, resumeCampaign, scheduleCampaign, type Campaign } from '../../jobs/campaigns.ts';
import type { CampaignStatus } from '../../jobs/status.ts';
import { nthPage } from './contacts.ts';
import { badRequest } from './errors.ts';
import { CampaignBody, CampaignList, CampaignParam, ScheduleCampaignBody, UseSendObject } from './schemas.ts';

/**
 * Our campaign status -> useSend's, as usesend-js names them (docs/compat/usesend.md). useSend has
 * no cancelled or failed campaign: ours say CANCELLED and FAILED.
 */
export const CAMPAIGN_STATUS: Record<CampaignStatus, string> = {
  draft: 'DRAFT', scheduled: 'SCHEDULED', running: 'RUNNING', paused: 'PAUSED', completed: 'SENT', cancelled: 'CANCELLED', failed: 'FAILED',
};
/** The list filter: the SDK's names, and those of useSend's API document (IN_PROGRESS, COMPLETED). */
export const STATUS_OF: Record<string, CampaignStatus> = {
  ...Object.fromEntries(Object.entries(CAMPAIGN_STATUS).map(([ours, theirs]) => [theirs, ours as CampaignStatus])),
  IN_PROGRESS: 'running', COMPLETED: 'completed',
};

/** useSend's page size for campaigns. */
const CAMPAIGN_PAGE = 30;

interface UseSendCampaign {
  name: string;
  from: string;
  subject: string;
  contactBookId: string;
  html?: string;
  replyTo?: string | string[];
  previewText?: string;
  content?: string;
  cc?: string | string[];
  bcc?: string | string[];
  sendNow?: boolean;
  scheduledAt?: string;
  batchSize?: number;
}

const refuse = (field: string, why: string) => badRequest(`${field} is not supported by this engine: ${why}`, 'unsupported_field');

function campaignView(c: Campaign) {
  const n = c.counters;
  return {
    id: c.id,
    name: c.name ?? '',
    from: c.from,
    subject: c.subject,
    previewText: null,
    contactBookId: c.list_id,
    html: c.html,
    content: null,
    status: CAMPAIGN_STATUS[c.status],
    scheduledAt: c.scheduled_at,
    batchSize: null,
    batchWindowMinutes: null,
    total: n?.total ?? 0,
    sent: n?.sent ?? 0,
    delivered: n?.delivered ?? 0,
    opened: n?.opened ?? 0,
    clicked: n?.clicked ?? 0,
    unsubscribed: n?.unsubscribed ?? 0,
    bounced: n?.bounced ?? 0,
    hardBounced: n?.hard_bounced ?? 0,
    complained: n?.complained ?? 0,
    replyTo: c.reply_to ? [c.reply_to] : [],
    cc: [],
    bcc: [],
    createdAt: c.created_at,
    updatedAt: c.updated_at,
  };
}

export async function campaignRoutes(app: FastifyInstance, deps: AppDeps) {
  const { db } = deps;
  const security = [{ bearerAuth: [] }];
  const tags = ['useSend compatibility'];
  const ok = { 200: UseSendObject };
  const config = { scope: 'jobs.manage' } as const;
  const defaults = () => ({ from: deps.config.jobs.defaultFrom, requireVerifiedDomain: verifiedDomainRequired(deps.config) });
  const scheduler = () => {
    if (!deps.scheduler) throw new Error('campaigns need the job scheduler');
    return deps.scheduler;
  };
  const found = async (tenantId: string, id: string) => {
    const c = await getCampaign(db, tenantId, id);
    if (!c) throw new DomainError('not_found', 'not_found', `campaign ${id} not found`);
    return c;
  };

  app.post<{ Body: UseSendCampaign }>(
    '/campaigns',
    { config, schema: { tags, summary: 'useSend: create a campaign (sendNow or scheduledAt schedules it)', security, body: CampaignBody, response: ok } },
    async (request) => {
      const b = request.body;
      if (b.content !== undefined) throw refuse('content', 'useSend editor JSON; give html');
      if (b.previewText !== undefined) throw refuse('previewText', 'put the preheader in html');
      if (b.cc !== undefined) throw refuse('cc', 'campaign copies go to the list only');
      if (b.bcc !== undefined) throw refuse('bcc', 'campaign copies go to the list only');
      if (b.batchSize !== undefined) throw refuse('batchSize', 'pace with rate_per_second on /v1/campaigns');
      const replyTo = b.replyTo === undefined ? [] : [b.replyTo].flat();
      if (replyTo.length > 1) throw refuse('replyTo', 'a campaign has one Reply-To address');
      if (b.html === undefined) throw badRequest('html is required');
      if (b.sendNow && b.scheduledAt !== undefined) throw badRequest('give sendNow or scheduledAt, not both');
      const tenantId = request.principal.tenantId;
      const created = await createCampaign(db, tenantId, {
        name: b.name, list_id: b.contactBookId, subject: b.subject, html: b.html, from: b.from, ...(replyTo[0] ? { reply_to: replyTo[0] } : {}),
      }, defaults());
      const campaign = b.sendNow || b.scheduledAt !== undefined
        ? await scheduleCampaign(db, scheduler(), tenantId, created.id, b.scheduledAt)
        : created;
      request.log.info({ campaign_id: campaign.id }, 'usesend campaign created');
      return campaignView(campaign);
    },
  );

  app.get<{ Querystring: { page: number; status?: string; search?: string } }>(
    '/campaigns',
    { config, schema: { tags, summary: 'useSend: campaigns, newest first', security, querystring: CampaignList, response: ok } },
    async (request) => {
      const q = request.query;
      const page = await nthPage(q.page, (cursor) =>
        listCampaigns(db, request.principal.tenantId, { limit: CAMPAIGN_PAGE, cursor, status: q.status ? STATUS_OF[q.status] : undefined, search: q.search }));
      // No total is counted: totalPage is this page, or the next one when more follow.
      return { campaigns: page!.data.map(campaignView), totalPage: page!.nextCursor ? q.page + 1 : q.page };
    },
  );

  app.get<{ Params: { campaignId: string } }>(
    '/campaigns/:campaignId',
    { config, schema: { tags, summary: 'useSend: one campaign with its counters', security, params: CampaignParam, response: ok } },
    async (request) => campaignView(await found(request.principal.tenantId, request.params.campaignId)),
  );

  app.post<{ Params: { campaignId: string }; Body: { scheduledAt?: string; batchSize?: number } | undefined }>(
    '/campaigns/:campaignId/schedule',
    { config, schema: { tags, summary: 'useSend: schedule a campaign (now without scheduledAt)', security, params: CampaignParam, body: ScheduleCampaignBody, response: ok } },
    async (request) => {
      if (request.body?.batchSize !== undefined) throw refuse('batchSize', 'pace with rate_per_second on /v1/campaigns');
      await scheduleCampaign(db, scheduler(), request.principal.tenantId, request.params.campaignId, request.body?.scheduledAt);
      return { success: true };
    },
  );

  app.post<{ Params: { campaignId: string } }>(
    '/campaigns/:campaignId/pause',
    { config, schema: { tags, summary: 'useSend: pause a campaign', security, params: CampaignParam, response: ok } },
    async (request) => {
      await pauseCampaign(db, request.principal.tenantId, request.params.campaignId);
      return { success: true };
    },
  );

  app.post<{ Params: { campaignId: string } }>(
    '/campaigns/:campaignId/resume',
    { config, schema: { tags, summary: 'useSend: resume a paused campaign', security, params: CampaignParam, response: ok } },
    async (request) => {
      await resumeCampaign(db, scheduler(), request.principal.tenantId, request.params.campaignId);
      return { success: true };
    },
  );
}
