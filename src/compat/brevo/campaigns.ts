import type { FastifyInstance } from 'fastify';
import { verifiedDomainRequired } from '../../domains/domains.ts';
import { DomainError } from '../../errors.ts';
import { HttpError } from '../../http/errors.ts';
import { cancelCampaign, createCampaign, getCampaign, pauseCampaign, resumeCampaign, scheduleCampaign, type Campaign } from '../../jobs/campaigns.ts';
import type { CampaignStatus } from '../../jobs/status.ts';
import { listIdByNumber, listNumbers } from '../../lists/contacts.ts';
import { templateIdByNumber, templateNumbers } from '../../templates/templates.ts';
import { brevoFailures, missing, notSupported } from './errors.ts';
import type { BrevoDeps } from './index.ts';
import { brevoInt, uuidParam } from './schemas.ts';

/** Our campaign statuses as Brevo names them (docs/compat/brevo.md). */
export const BREVO_CAMPAIGN_STATUS: Record<CampaignStatus, string> = {
  draft: 'draft', scheduled: 'queued', running: 'in_process', paused: 'suspended', completed: 'sent', cancelled: 'archive', failed: 'archive',
};

interface CampaignBody {
  name: string;
  subject?: string;
  sender?: { email: string };
  htmlContent?: string;
  templateId?: number;
  recipients?: { listIds: number[] };
  replyTo?: string;
  scheduledAt?: string;
}

const email = { type: 'string', format: 'email', maxLength: 254 } as const;
const CampaignView = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'Our campaign id (uuid)' }, name: { type: 'string' }, subject: { type: 'string' }, type: { type: 'string' }, status: { type: 'string' },
    scheduledAt: { type: ['string', 'null'] }, sender: { type: 'object', properties: { email: { type: 'string' } } }, replyTo: { type: 'string' }, htmlContent: { type: 'string' },
    templateId: { type: 'integer' }, recipients: { type: 'object', properties: { lists: { type: 'array', items: { type: 'integer' } } } },
    statistics: { type: 'object', additionalProperties: true }, createdAt: { type: 'string' }, modifiedAt: { type: 'string' }, sentDate: { type: 'string' },
  },
} as const;

/** Brevo's email campaigns onto ours (src/jobs/campaigns.ts): a campaign sends one list. */
export async function campaignRoutes(app: FastifyInstance, deps: BrevoDeps) {
  const { db, config } = deps;
  const common = { config: { scope: 'jobs.manage', credentialHeader: 'api-key' } } as const;
  const tags = ['brevo'];
  const defaults = () => ({ from: config.jobs.defaultFrom, requireVerifiedDomain: verifiedDomainRequired(config) });
  const scheduler = () => {
    if (!deps.scheduler) throw new HttpError(503, 'scheduler_unavailable', 'campaigns need the job scheduler (send-engine start or serve with a worker)');
    return deps.scheduler;
  };

  async function view(tenantId: string, c: Campaign) {
    const [lists, templates] = await Promise.all([listNumbers(db, tenantId, [c.list_id]), c.template_id ? templateNumbers(db, tenantId, [c.template_id]) : new Map<string, number>()]);
    const k = c.counters;
    return {
      id: c.id, name: c.name ?? '', subject: c.subject, type: 'classic', status: BREVO_CAMPAIGN_STATUS[c.status], scheduledAt: c.scheduled_at,
      sender: { email: c.from }, replyTo: c.reply_to ?? '', htmlContent: c.html ?? '', templateId: c.template_id ? templates.get(c.template_id) : undefined,
      recipients: { lists: lists.has(c.list_id) ? [lists.get(c.list_id)!] : [] },
      statistics: k ? { globalStats: { sent: k.sent, delivered: k.delivered, uniqueViews: k.opened, uniqueClicks: k.clicked, unsubscriptions: k.unsubscribed, hardBounces: k.hard_bounced, softBounces: k.bounced - k.hard_bounced, complaints: k.complained } } : {},
      createdAt: c.created_at, modifiedAt: c.updated_at, sentDate: c.finished_at ?? undefined,
    };
  }

  async function campaign(tenantId: string, id: string) {
    const c = await getCampaign(db, tenantId, id);
    if (!c) throw new DomainError('not_found', 'not_found', `campaign ${id} not found`);
    return c;
  }

  app.post<{ Body: CampaignBody }>(
    '/emailCampaigns',
    {
      ...common,
      schema: {
        summary: 'Brevo: create an email campaign (a draft; sends one list)', tags,
        body: {
          type: 'object', required: ['name'], additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200 }, subject: { type: 'string', minLength: 1, maxLength: 998 },
            sender: { type: 'object', required: ['email'], additionalProperties: false, properties: { email } }, htmlContent: { type: 'string', minLength: 1 }, templateId: brevoInt,
            recipients: { type: 'object', required: ['listIds'], additionalProperties: false, properties: { listIds: { type: 'array', items: brevoInt, minItems: 1, maxItems: 50 } } },
            replyTo: email, scheduledAt: { type: 'string', format: 'date-time' },
          },
        },
        response: { 201: { type: 'object', properties: { id: { type: 'string' } } }, ...brevoFailures },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const tenantId = request.principal.tenantId;
      if (!b.recipients) throw missing('recipients');
      if (b.recipients.listIds.length > 1) throw notSupported('recipients.listIds', 'a campaign sends one list here: give one list id');
      if (b.templateId === undefined && b.htmlContent === undefined) throw missing('htmlContent');
      if (b.templateId !== undefined && (b.htmlContent !== undefined || b.subject !== undefined)) throw notSupported('subject/htmlContent with templateId', 'the template gives the content');
      if (b.templateId === undefined && b.subject === undefined) throw missing('subject');
      const created = await createCampaign(db, tenantId, {
        name: b.name, list_id: await listIdByNumber(db, tenantId, b.recipients.listIds[0]),
        ...(b.templateId !== undefined ? { template_id: await templateIdByNumber(db, tenantId, b.templateId) } : { subject: b.subject, html: b.htmlContent }),
        from: b.sender?.email, reply_to: b.replyTo, scheduled_at: b.scheduledAt,
      }, defaults());
      // Brevo schedules a campaign created with scheduledAt; ours are drafts until scheduled.
      if (b.scheduledAt !== undefined) await scheduleCampaign(db, scheduler(), tenantId, created.id, b.scheduledAt);
      request.log.info({ campaign_id: created.id }, 'brevo campaign created');
      return reply.code(201).send({ id: created.id });
    },
  );

  app.get<{ Params: { campaignId: string } }>(
    '/emailCampaigns/:campaignId',
    { ...common, schema: { summary: 'Brevo: one email campaign with its statistics', tags, params: uuidParam('campaignId'), response: { 200: CampaignView, ...brevoFailures } } },
    async (request) => view(request.principal.tenantId, await campaign(request.principal.tenantId, request.params.campaignId)),
  );

  app.post<{ Params: { campaignId: string } }>(
    '/emailCampaigns/:campaignId/sendNow',
    { ...common, schema: { summary: 'Brevo: send a campaign now', tags, params: uuidParam('campaignId'), response: { 204: { type: 'null' }, ...brevoFailures } } },
    async (request, reply) => {
      await scheduleCampaign(db, scheduler(), request.principal.tenantId, request.params.campaignId, new Date().toISOString());
      return reply.code(204).send();
    },
  );

  app.put<{ Params: { campaignId: string }; Body: { status: string } }>(
    '/emailCampaigns/:campaignId/status',
    {
      ...common,
      schema: {
        summary: 'Brevo: suspend (pause), queue (resume) or archive (cancel) a campaign', tags, params: uuidParam('campaignId'),
        body: { type: 'object', required: ['status'], additionalProperties: false, properties: { status: { type: 'string', enum: ['suspended', 'archive', 'darchive', 'sent', 'queued', 'replicate', 'replicateTemplate', 'draft'] } } },
        response: { 204: { type: 'null' }, ...brevoFailures },
      },
    },
    async (request, reply) => {
      const tenantId = request.principal.tenantId;
      const id = request.params.campaignId;
      switch (request.body.status) {
        case 'suspended': await pauseCampaign(db, tenantId, id); break;
        case 'queued': await resumeCampaign(db, scheduler(), tenantId, id); break;
        case 'archive': await cancelCampaign(db, tenantId, id); break;
        default: throw notSupported(`status ${request.body.status}`, 'a campaign here is suspended (paused), queued (resumed) or archived (cancelled)');
      }
      return reply.code(204).send();
    },
  );
}
