import type { FastifyInstance, FastifyRequest } from 'fastify';
import { dnsChecker } from '../../domains/dns-check.ts';
import { createDomain, deleteDomain, getDomain, listDomains, verifiedDomainRequired, verifyDomain, type DomainContext } from '../../domains/domains.ts';
import type { AppDeps } from '../../http/app.ts';
import { MAX_LIMIT } from '../../http/read-api.ts';
import { getSend, getSendEvents, listSends } from '../../observability/sends.ts';
import { cancelScheduledSend, rescheduleSend } from '../../sending/scheduled.ts';
import { submitProxySend, submitProxySendsTogether } from '../../sending/submit.ts';
import type { TemplateRenderer } from '../../templates/templates.ts';
import { campaignRoutes } from './campaigns.ts';
import { contactBookRoutes } from './contacts.ts';
import { badRequest, useSendErrorHandler, useSendNotFound } from './errors.ts';
import { BatchBody, CreateDomainBody, EmailBody, EmailList, idempotencyHeader, idParam, RescheduleBody, UseSendObject } from './schemas.ts';
import { domainView, emailListItem, emailView, toSendInput, type UseSendEmail } from './translate.ts';

// Attachments ride base64 in the body, as on POST /v1/send-jobs.
const SEND_BODY_LIMIT = 16 * 1024 * 1024;
const UNMASK = 'analytics.search.recipients';
const canUnmask = (request: FastifyRequest) => request.principal.scopes.has(UNMASK);

/**
 * useSend's API (`usesend-js`: `new UseSend(key, baseUrl)` calls `${baseUrl}/api/v1/...`), over the
 * native functions. Registered once per prefix: `/api/v1` and `/compat/usesend/api/v1`.
 * docs/compat/usesend.md says what maps to what and what is refused.
 */
export async function useSendRoutes(app: FastifyInstance, deps: AppDeps & { renderer: TemplateRenderer }) {
  const { db } = deps;
  const submitOptions = { idempotencyTtlHours: deps.config.idempotencyTtlHours, requireVerifiedDomain: verifiedDomainRequired(deps.config), renderer: deps.renderer };
  const domains: DomainContext = { settings: deps.config.domains, secretsKey: deps.config.secretsKey };
  const checker = dnsChecker(deps.config.domains.dnsServers);
  const security = [{ bearerAuth: [] }];
  const tags = ['useSend compatibility'];
  const ok = { 200: UseSendObject };

  app.setErrorHandler(useSendErrorHandler);
  app.setNotFoundHandler(useSendNotFound);
  // In this plugin's scope: the same prefix, error body and 404.
  await contactBookRoutes(app, deps);
  await campaignRoutes(app, deps);

  app.post<{ Body: UseSendEmail; Headers: { 'idempotency-key'?: string } }>(
    '/emails',
    { config: { scope: 'send' }, bodyLimit: SEND_BODY_LIMIT, schema: { tags, summary: 'useSend: send an email', security, headers: idempotencyHeader, body: EmailBody, response: ok } },
    async (request) => {
      const result = await submitProxySend(db, request.principal.tenantId, toSendInput(request.body, request.headers['idempotency-key']), submitOptions);
      request.log.info({ job_id: result.jobId, replayed: result.replayed }, 'usesend email accepted');
      return { emailId: result.jobId };
    },
  );

  app.post<{ Body: UseSendEmail[]; Headers: { 'idempotency-key'?: string } }>(
    '/emails/batch',
    { config: { scope: 'send' }, bodyLimit: SEND_BODY_LIMIT, schema: { tags, summary: 'useSend: send up to 100 emails, all or none', security, headers: idempotencyHeader, body: BatchBody, response: ok } },
    async (request) => {
      const header = request.headers['idempotency-key'];
      const inputs = request.body.map((email, i) => toSendInput(email, header === undefined ? undefined : `${header}:${i}`));
      // All or none: an item refused refuses the batch, and nothing of it is queued.
      const results = await submitProxySendsTogether(db, request.principal.tenantId, inputs, submitOptions);
      request.log.info({ job_ids: results.map((r) => r.jobId) }, 'usesend batch accepted');
      return { data: results.map((r) => ({ emailId: r.jobId })) };
    },
  );

  app.get<{ Querystring: { page: number; limit: number; startDate?: string; endDate?: string; domainId?: string } }>(
    '/emails',
    { config: { scope: 'messages.view' }, schema: { tags, summary: 'useSend: list emails, newest first', security, querystring: EmailList, response: ok } },
    async (request) => {
      const q = request.query;
      if (q.domainId !== undefined) throw badRequest('domainId is not supported by this engine: filter by startDate/endDate', 'unsupported_field');
      const { data, count } = await listSends(db, request.principal.tenantId, {
        page: q.page, limit: q.limit, from: q.startDate ? new Date(q.startDate) : undefined, to: q.endDate ? new Date(q.endDate) : undefined, unmask: canUnmask(request),
      });
      return { data: data.map(emailListItem), count };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/emails/:id',
    { config: { scope: 'messages.view' }, schema: { tags, summary: 'useSend: one email with its events', security, params: idParam, response: ok } },
    async (request) => {
      const tenantId = request.principal.tenantId;
      const send = await getSend(db, tenantId, request.params.id, canUnmask(request));
      return emailView(send, await getSendEvents(db, tenantId, send.id), tenantId);
    },
  );

  app.patch<{ Params: { id: string }; Body: { scheduledAt: string } }>(
    '/emails/:id',
    { config: { scope: 'send' }, schema: { tags, summary: 'useSend: move a scheduled email', security, params: idParam, body: RescheduleBody, response: ok } },
    async (request) => {
      await rescheduleSend(db, request.principal.tenantId, request.params.id, request.body.scheduledAt);
      return { emailId: request.params.id };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/emails/:id/cancel',
    { config: { scope: 'send' }, schema: { tags, summary: 'useSend: cancel a scheduled email', security, params: idParam, response: ok } },
    async (request) => {
      await cancelScheduledSend(db, request.principal.tenantId, request.params.id);
      return { emailId: request.params.id };
    },
  );

  const manage = { scope: 'domains.manage' } as const;

  app.post<{ Body: { name: string; region?: string } }>(
    '/domains',
    { config: manage, schema: { tags, summary: 'useSend: add a sending domain', security, body: CreateDomainBody, response: ok } },
    async (request) => {
      const domain = await createDomain(db, domains, request.principal.tenantId, request.body.name);
      request.log.info({ domain_id: domain.id, domain: domain.name }, 'sending domain added');
      return domainView(domain, request.principal.tenantId, request.body.region);
    },
  );

  app.get(
    '/domains',
    { config: manage, schema: { tags, summary: `useSend: the sending domains (the newest ${MAX_LIMIT})`, security, response: { 200: { type: 'array', items: UseSendObject } } } },
    async (request) => (await listDomains(db, domains, request.principal.tenantId, { limit: MAX_LIMIT })).data.map((d) => domainView(d, request.principal.tenantId)),
  );

  app.get<{ Params: { id: string } }>(
    '/domains/:id',
    { config: manage, schema: { tags, summary: 'useSend: one sending domain', security, params: idParam, response: ok } },
    async (request) => domainView(await getDomain(db, domains, request.principal.tenantId, request.params.id), request.principal.tenantId),
  );

  app.put<{ Params: { id: string } }>(
    '/domains/:id/verify',
    { config: manage, schema: { tags, summary: 'useSend: check the domain\'s records in DNS now', security, params: idParam, response: ok } },
    async (request) => {
      const domain = await verifyDomain(db, domains, checker, request.principal.tenantId, request.params.id);
      request.log.info({ domain_id: domain.id, status: domain.status }, 'sending domain checked');
      return { message: `domain ${domain.name} is ${domain.status}${domain.status_reason ? `: ${domain.status_reason}` : ''}` };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/domains/:id',
    { config: manage, schema: { tags, summary: 'useSend: remove a sending domain', security, params: idParam, response: ok } },
    async (request) => {
      await deleteDomain(db, request.principal.tenantId, request.params.id);
      request.log.info({ domain_id: request.params.id }, 'sending domain removed');
      return { id: request.params.id, success: true, message: 'Domain deleted successfully' };
    },
  );
}
