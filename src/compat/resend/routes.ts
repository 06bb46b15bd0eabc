import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { dnsChecker } from '../../domains/dns-check.ts';
import { createDomain, deleteDomain, getDomain, listDomains, verifiedDomainRequired, verifyDomain, type DomainContext } from '../../domains/domains.ts';
import { DomainError } from '../../errors.ts';
import { HttpError } from '../../http/errors.ts';
import { newId } from '../../ids.ts';
import { cancelScheduledMessage, rescheduleMessage } from '../../sending/scheduled.ts';
import { firstMessageId, getSend } from '../../sending/sends.ts';
import { prepareProxySend, submitProxySend, submitTogether } from '../../sending/submit.ts';
import { createTemplate, deleteTemplate, getTemplate, listTemplates, updateTemplate, type TemplateCheck } from '../../templates/templates.ts';
import { createEndpoint, deleteEndpoint, getEndpoint, listEndpoints, updateEndpoint } from '../../webhooks/endpoints.ts';
import { secretBoxFor, type SecretBox } from '../../webhooks/secret-box.ts';
import type { CompatDeps } from '../root.ts';
import { resendAudienceRoutes } from './audiences.ts';
import { compatError, notSupported } from '../root.ts';
import {
  BatchBody, domainView, TemplateBody, templateInput, templateSummary, templateView, type ResendTemplateInput, EmailBody, emailView, idParam, uuidParam, listQuery, ourEvents, resendName, toSendInput, UpdateWebhookBody, WebhookBody, webhookView,
  type ResendEmail,
} from './translate.ts';

/**
 * Resend's API (https://resend.com/docs/api-reference) over the native functions: the `resend`
 * SDK works with `baseUrl` set to this server (root or `/compat/resend`). docs/compat/resend.md.
 */
export async function resendRoutes(app: FastifyInstance, deps: CompatDeps) {
  const { db } = deps;
  const ctx: DomainContext = { settings: deps.config.domains, secretsKey: deps.config.secretsKey };
  const checker = dnsChecker(deps.config.domains.dnsServers);
  const allowPrivate = deps.config.webhooks.allowPrivate;
  const submitOptions = { idempotencyTtlHours: deps.config.idempotencyTtlHours, requireVerifiedDomain: verifiedDomainRequired(deps.config), renderer: deps.renderer };
  const tags = ['compat: resend'];
  let box: SecretBox | undefined;
  const secrets = () => {
    try {
      return (box ??= secretBoxFor(deps.config));
    } catch (err) {
      throw new HttpError(503, 'webhooks_unavailable', (err as Error).message);
    }
  };

  // Resend's error body, so the SDK's `{ data: null, error }` carries it; request_id rides along.
  app.setErrorHandler((err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => {
    const e = compatError(err, request);
    return reply.code(e.status).headers(e.headers).type('application/json')
      .send({ statusCode: e.status, name: resendName(e), message: e.message, request_id: request.id });
  });
  if (app.prefix) {
    app.setNotFoundHandler((request) => {
      throw new HttpError(404, 'not_found', `route ${request.method} ${request.url.split('?')[0]} not found`);
    });
  }

  const firstMessage = (request: FastifyRequest, jobId: string) => firstMessageId(db, request.principal.tenantId, jobId).then((id) => ({ id }));
  async function send(request: FastifyRequest, email: ResendEmail, key: string) {
    const result = await submitProxySend(db, request.principal.tenantId, toSendInput(email, key), submitOptions);
    request.log.info({ job_id: result.jobId, replayed: result.replayed }, 'resend: email accepted');
    return firstMessage(request, result.jobId);
  }

  // ---- emails -------------------------------------------------------------------------------

  app.post<{ Body: ResendEmail; Headers: { 'idempotency-key'?: string } }>(
    '/emails',
    { config: { scope: 'send' }, bodyLimit: 16 * 1024 * 1024, schema: { summary: 'Send an email (Resend)', tags, body: EmailBody } },
    // Without an Idempotency-Key each request is a new send, as at Resend.
    async (request) => send(request, request.body, request.headers['idempotency-key'] ?? `resend:${newId()}`),
  );

  app.post<{ Body: ResendEmail[]; Headers: { 'idempotency-key'?: string; 'x-batch-validation'?: string } }>(
    '/emails/batch',
    { config: { scope: 'send' }, bodyLimit: 16 * 1024 * 1024, schema: { summary: 'Send up to 100 emails (Resend batch; x-batch-validation strict | permissive)', tags, body: BatchBody } },
    async (request) => {
      const mode = request.headers['x-batch-validation'] ?? 'strict';
      if (mode !== 'strict' && mode !== 'permissive') throw notSupported('x-batch-validation', 'must be strict or permissive');
      const header = request.headers['idempotency-key'];
      const keyOf = (index: number) => (header !== undefined ? `${header}:${index}` : `resend:${newId()}`);
      request.body.forEach((email, index) => {
        if (email.attachments !== undefined) throw notSupported(`[${index}].attachments`, 'not supported in batch sends (as at Resend)');
        if (email.scheduled_at !== undefined) throw notSupported(`[${index}].scheduled_at`, 'not supported in batch sends (as at Resend)');
      });
      if (mode === 'strict') {
        // All or nothing: every item is checked first, then all are written by one statement.
        const prepared = [];
        for (const [index, email] of request.body.entries()) {
          try {
            prepared.push(await prepareProxySend(db, request.principal.tenantId, toSendInput(email, keyOf(index)), submitOptions));
          } catch (err) {
            if (err instanceof HttpError) throw new HttpError(err.status, err.code, `[${index}] ${err.message}`, err.headers);
            if (err instanceof DomainError) throw new DomainError(err.kind, err.code, `[${index}] ${err.message}`);
            throw err;
          }
        }
        const results = await submitTogether(db, prepared);
        request.log.info({ sends: results.length }, 'resend: batch accepted');
        return { data: await Promise.all(results.map((r) => firstMessage(request, r.jobId))) };
      }
      const data: Array<{ id: string }> = [];
      const errors: Array<{ index: number; message: string }> = [];
      for (const [index, email] of request.body.entries()) {
        try {
          data.push(await send(request, email, keyOf(index)));
        } catch (err) {
          if (!(err instanceof HttpError || err instanceof DomainError)) throw err;
          errors.push({ index, message: err.message });
        }
      }
      return { data, errors };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/emails/:id',
    { config: { scope: 'messages.view' }, schema: { summary: 'One email (Resend)', tags, params: idParam } },
    async (request) => emailView(await getSend(db, request.principal.tenantId, request.params.id)),
  );

  app.patch<{ Params: { id: string }; Body: { scheduled_at?: string } }>(
    '/emails/:id',
    {
      config: { scope: 'send' },
      schema: {
        summary: 'Move a scheduled email (Resend)', tags, params: idParam,
        body: { type: 'object', required: ['scheduled_at'], additionalProperties: false, properties: { scheduled_at: { type: 'string', format: 'date-time' } } },
      },
    },
    async (request) => {
      await rescheduleMessage(db, request.principal.tenantId, request.params.id, request.body.scheduled_at!, 'send');
      return { object: 'email', id: request.params.id };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/emails/:id/cancel',
    { config: { scope: 'send' }, schema: { summary: 'Cancel a scheduled email (Resend)', tags, params: idParam } },
    async (request) => {
      await cancelScheduledMessage(db, request.principal.tenantId, request.params.id, 'send');
      return { object: 'email', id: request.params.id };
    },
  );

  // ---- domains ------------------------------------------------------------------------------

  const manage = { scope: 'domains.manage' } as const;
  app.post<{ Body: { name: string } & Record<string, unknown> }>(
    '/domains',
    {
      config: manage,
      schema: { summary: 'Add a sending domain (Resend)', tags, body: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 253 } } } },
    },
    async (request, reply) => {
      for (const field of Object.keys(request.body)) if (field !== 'name') throw notSupported(field, 'per-domain settings are not supported by Send Engine');
      const domain = await createDomain(db, ctx, request.principal.tenantId, request.body.name);
      return reply.code(201).send(domainView(domain, true));
    },
  );

  app.get<{ Querystring: { limit?: number; after?: string; before?: string } }>(
    '/domains',
    { config: manage, schema: { summary: 'Sending domains (Resend)', tags, querystring: listQuery } },
    async (request) => {
      refusePaging(request.query);
      const page = await listDomains(db, ctx, request.principal.tenantId, { limit: request.query.limit ?? 20 });
      return { object: 'list', has_more: page.nextCursor !== null, data: page.data.map((d) => domainView(d, false)) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/domains/:id',
    { config: manage, schema: { summary: 'One sending domain (Resend)', tags, params: idParam } },
    async (request) => ({ object: 'domain', ...domainView(await getDomain(db, ctx, request.principal.tenantId, request.params.id), true) }),
  );

  app.post<{ Params: { id: string } }>(
    '/domains/:id/verify',
    { config: manage, schema: { summary: 'Check the DNS records now (Resend)', tags, params: idParam } },
    async (request) => {
      const domain = await verifyDomain(db, ctx, checker, request.principal.tenantId, request.params.id);
      return { object: 'domain', id: domain.id };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/domains/:id',
    { config: manage, schema: { summary: 'Remove a sending domain (Resend)', tags, params: idParam } },
    async (request) => {
      await deleteDomain(db, request.principal.tenantId, request.params.id);
      return { object: 'domain', id: request.params.id, deleted: true };
    },
  );

  // ---- templates ----------------------------------------------------------------------------

  const check: TemplateCheck = (source) => deps.renderer.renderTemplate(source, {});
  app.post<{ Body: ResendTemplateInput }>(
    '/templates',
    { config: { scope: 'templates.manage' }, schema: { summary: 'Create a template (Resend; published at once)', tags, body: TemplateBody } },
    async (request, reply) => {
      const input = templateInput(request.body);
      if (input.name === undefined) throw notSupported('name', 'is required');
      if (input.subject === undefined) throw notSupported('subject', 'is required by Send Engine (a template carries its subject)');
      const t = await createTemplate(db, request.principal.tenantId, { ...input, name: input.name, subject: input.subject }, check);
      return reply.code(201).send({ object: 'template', id: t.id });
    },
  );

  app.get<{ Querystring: { limit?: number; after?: string; before?: string } }>(
    '/templates',
    { config: { scope: 'templates.view' }, schema: { summary: 'Templates (Resend)', tags, querystring: listQuery } },
    async (request) => {
      refusePaging(request.query);
      const page = await listTemplates(db, request.principal.tenantId, { limit: request.query.limit ?? 20 });
      return { object: 'list', has_more: page.nextCursor !== null, data: page.data.map(templateSummary) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/templates/:id',
    { config: { scope: 'templates.view' }, schema: { summary: 'One template by id or alias (Resend)', tags, params: idParam } },
    async (request) => templateView(await getTemplate(db, request.principal.tenantId, request.params.id)),
  );

  app.patch<{ Params: { id: string }; Body: ResendTemplateInput }>(
    '/templates/:id',
    { config: { scope: 'templates.manage' }, schema: { summary: 'Change a template: a new version, live at once (Resend)', tags, params: idParam, body: TemplateBody } },
    async (request) => {
      const input = templateInput(request.body);
      // Resend's update changes what it is given; ours takes a whole version, the rest carried over.
      const current = await getTemplate(db, request.principal.tenantId, request.params.id);
      const t = await updateTemplate(
        db, request.principal.tenantId, current.id,
        {
          name: input.name ?? current.name, subject: input.subject ?? current.subject,
          html: input.html === undefined ? current.html : input.html, text: input.text === undefined ? current.text : input.text,
          ...(input.slug ? { slug: input.slug } : {}),
        },
        check,
      );
      return { object: 'template', id: t.id };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/templates/:id/publish',
    { config: { scope: 'templates.manage' }, schema: { summary: 'Publish a template (Resend; ours are live once saved)', tags, params: idParam } },
    async (request) => ({ object: 'template', id: (await getTemplate(db, request.principal.tenantId, request.params.id)).id }),
  );

  app.delete<{ Params: { id: string } }>(
    '/templates/:id',
    { config: { scope: 'templates.manage' }, schema: { summary: 'Delete a template (Resend)', tags, params: idParam } },
    async (request) => {
      const { id } = await getTemplate(db, request.principal.tenantId, request.params.id);
      await deleteTemplate(db, request.principal.tenantId, id);
      return { object: 'template', id, deleted: true };
    },
  );

  // Audiences, their contacts and broadcasts (our lists, contacts and campaigns), in this context.
  await resendAudienceRoutes(app, deps);

  // ---- webhooks -----------------------------------------------------------------------------

  const hooks = { scope: 'webhooks.manage' } as const;
  app.post<{ Body: { endpoint: string; events: string[] } }>(
    '/webhooks',
    { config: hooks, schema: { summary: 'Register a webhook endpoint (Resend)', tags, body: WebhookBody } },
    async (request, reply) => {
      const created = await createEndpoint(db, secrets(), request.principal.tenantId, { url: request.body.endpoint, event_types: ourEvents(request.body.events) }, allowPrivate);
      return reply.code(201).send({ object: 'webhook', id: created.id, signing_secret: created.secret });
    },
  );

  app.get<{ Querystring: { limit?: number; after?: string; before?: string } }>(
    '/webhooks',
    { config: hooks, schema: { summary: 'Webhook endpoints (Resend)', tags, querystring: listQuery } },
    async (request) => {
      refusePaging(request.query);
      const page = await listEndpoints(db, request.principal.tenantId, { limit: request.query.limit ?? 20 });
      return { object: 'list', has_more: page.nextCursor !== null, data: page.data.map(webhookView) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/webhooks/:id',
    { config: hooks, schema: { summary: 'One webhook endpoint (Resend)', tags, params: uuidParam } },
    async (request) => ({ object: 'webhook', ...webhookView(await getEndpoint(db, request.principal.tenantId, request.params.id)) }),
  );

  app.patch<{ Params: { id: string }; Body: { endpoint?: string; events?: string[]; status?: 'enabled' | 'disabled' } }>(
    '/webhooks/:id',
    { config: hooks, schema: { summary: 'Change a webhook endpoint (Resend)', tags, params: uuidParam, body: UpdateWebhookBody } },
    async (request) => {
      const { endpoint, events, status } = request.body;
      const updated = await updateEndpoint(
        db, request.principal.tenantId, request.params.id,
        { url: endpoint, event_types: events === undefined ? undefined : ourEvents(events), status },
        allowPrivate,
      );
      return { object: 'webhook', id: updated.id };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/webhooks/:id',
    { config: hooks, schema: { summary: 'Delete a webhook endpoint (Resend)', tags, params: uuidParam } },
    async (request) => {
      await deleteEndpoint(db, request.principal.tenantId, request.params.id);
      return { object: 'webhook', id: request.params.id, deleted: true };
    },
  );
}

/** Resend pages by object id (`after`/`before`); ours are cursors. The first page, at most 100, is what we serve. */
function refusePaging(query: { after?: string; before?: string }) {
  if (query.after !== undefined) throw notSupported('after', 'paging by id is not supported by Send Engine; ask for up to 100 with limit');
  if (query.before !== undefined) throw notSupported('before', 'paging by id is not supported by Send Engine; ask for up to 100 with limit');
}
