import type { FastifyInstance } from 'fastify';
import { verifiedDomainRequired } from '../../domains/domains.ts';
import {
  cancelCampaign, createCampaign, getCampaign, listCampaigns, pauseCampaign, resumeCampaign, scheduleCampaign, sendCampaignTest, updateCampaign,
  type CampaignRequest,
} from '../../jobs/campaigns.ts';
import type { CampaignStatus } from '../../jobs/status.ts';
import type { AppDeps } from '../app.ts';
import { notFound } from '../errors.ts';
import { sendPage } from '../read-api.ts';
import { failures } from '../schemas.ts';
import {
  Campaign, CampaignPage, CampaignParams, CampaignsQuery, CreateCampaignRequest, ScheduleCampaignRequest, SendTestRequest, SendTestResponse, UpdateCampaignRequest,
} from '../schemas/campaigns.ts';

const security = [{ bearerAuth: [] }];
type Id = { Params: { id: string } };

/** Campaigns (/v1/campaigns): drafts, schedule, pause/resume, cancel, test sends, counters. Scope jobs.manage. */
export async function campaignRoutes(app: FastifyInstance, deps: AppDeps) {
  const defaults = () => ({ from: deps.config.jobs.defaultFrom, requireVerifiedDomain: verifiedDomainRequired(deps.config) });
  const scheduler = () => {
    if (!deps.scheduler) throw new Error('campaigns need the job scheduler');
    return deps.scheduler;
  };
  const opts = (summary: string, extra: Record<string, unknown>, statuses: number[]) => ({
    config: { scope: 'jobs.manage' as const },
    schema: { summary, tags: ['campaigns'], security, ...extra, response: { 200: Campaign, ...failures(...statuses) } },
  });

  app.post<{ Body: CampaignRequest }>(
    '/v1/campaigns',
    { config: { scope: 'jobs.manage' }, schema: { summary: 'Create a campaign (a draft)', tags: ['campaigns'], security, body: CreateCampaignRequest, response: { 201: Campaign, ...failures(401, 403, 422) } } },
    async (request, reply) => reply.code(201).send(await createCampaign(deps.db, request.principal.tenantId, request.body, defaults())),
  );

  app.get<{ Querystring: { limit: number; cursor?: string; status?: CampaignStatus; search?: string } }>(
    '/v1/campaigns',
    { config: { scope: 'jobs.manage' }, schema: { summary: 'Campaigns, newest first (filter by status, search the name)', tags: ['campaigns'], security, querystring: CampaignsQuery, response: { 200: CampaignPage, ...failures(401, 403, 422) } } },
    async (request, reply) => sendPage(request, reply, await listCampaigns(deps.db, request.principal.tenantId, request.query)),
  );

  app.get<Id>('/v1/campaigns/:id', opts('A campaign with its counters', { params: CampaignParams }, [401, 403, 404, 422]), async (request) => {
    const c = await getCampaign(deps.db, request.principal.tenantId, request.params.id);
    if (!c) throw notFound(`campaign ${request.params.id} not found`);
    return c;
  });

  app.patch<Id & { Body: Partial<CampaignRequest> }>(
    '/v1/campaigns/:id',
    opts('Change a draft (409 campaign_not_draft otherwise)', { params: CampaignParams, body: UpdateCampaignRequest }, [401, 403, 404, 409, 422]),
    async (request) => updateCampaign(deps.db, request.principal.tenantId, request.params.id, request.body, defaults()),
  );

  app.post<Id & { Body: { scheduled_at?: string } | undefined }>(
    '/v1/campaigns/:id/schedule',
    opts('Schedule a draft, or move a scheduled campaign', { params: CampaignParams, body: ScheduleCampaignRequest }, [401, 403, 404, 409, 422]),
    async (request) => scheduleCampaign(deps.db, scheduler(), request.principal.tenantId, request.params.id, request.body?.scheduled_at),
  );

  app.post<Id>('/v1/campaigns/:id/pause', opts('Pause: nothing more is sent until resumed; the window still closes', { params: CampaignParams }, [401, 403, 404, 409, 422]), async (request) =>
    pauseCampaign(deps.db, request.principal.tenantId, request.params.id),
  );

  app.post<Id>('/v1/campaigns/:id/resume', opts('Resume where the pause stopped, at the same pace', { params: CampaignParams }, [401, 403, 404, 409, 422]), async (request) =>
    resumeCampaign(deps.db, scheduler(), request.principal.tenantId, request.params.id),
  );

  app.post<Id>('/v1/campaigns/:id/cancel', opts('Cancel: whatever is not yet sent is cancelled', { params: CampaignParams }, [401, 403, 404, 409, 422]), async (request) =>
    cancelCampaign(deps.db, request.principal.tenantId, request.params.id),
  );

  app.post<Id & { Body: { to: string } }>(
    '/v1/campaigns/:id/send-test',
    {
      config: { scope: 'jobs.manage' },
      schema: { summary: 'Send the campaign once to an address (rendered with its contact, if any)', tags: ['campaigns'], security, params: CampaignParams, body: SendTestRequest, response: { 202: SendTestResponse, ...failures(401, 403, 404, 409, 422) } },
    },
    async (request, reply) => {
      const r = await sendCampaignTest(deps.db, request.principal.tenantId, request.params.id, request.body.to, {
        idempotencyTtlHours: deps.config.idempotencyTtlHours,
        requireVerifiedDomain: verifiedDomainRequired(deps.config),
        unsubscribeUrl: `${deps.config.tracking.baseUrl}/u/test`,
      });
      return reply.code(202).send({ job_id: r.job_id, status: 'queued' as const });
    },
  );
}
