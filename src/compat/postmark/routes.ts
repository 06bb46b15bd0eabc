import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { verifiedDomainRequired } from '../../domains/domains.ts';
import { DomainError } from '../../errors.ts';
import { HttpError } from '../../http/errors.ts';
import { newId } from '../../ids.ts';
import { resolveWindow } from '../../observability/cursor.ts';
import { getMessage, getMessageEvents, listMessages } from '../../observability/messages.ts';
import { addSuppression, listSuppressions, removeSuppression } from '../../observability/suppressions.ts';
import { firstMessageId, getSend } from '../../sending/sends.ts';
import { submitProxySend } from '../../sending/submit.ts';
import { createTemplate, deleteTemplate, getTemplate, listTemplates, updateTemplate, type TemplateCheck } from '../../templates/templates.ts';
import { createEndpoint, deleteEndpoint, getEndpoint, listEndpoints, updateEndpoint } from '../../webhooks/endpoints.ts';
import { secretBoxFor, type SecretBox } from '../../webhooks/secret-box.ts';
import type { CompatDeps } from '../root.ts';
import { compatError, notSupported } from '../root.ts';
import {
  BatchBody, checkTemplateInput, EmailBody, messageDetails, outboundMessage, postmarkError, sendingResponse, suppressionView, TemplateBody, TemplatedEmailBody,
  templateSummary, templateView, toSendInput, WebhookBody, webhookEvents, webhookView,
  type PostmarkEmail, type PostmarkTemplateInput, type PostmarkWebhookInput,
} from './translate.ts';

const UNMASK = 'analytics.search.recipients';
const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } as const;
const uuidParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', format: 'uuid' } } } as const;
const streamParam = { type: 'object', required: ['stream'], properties: { stream: { type: 'string', minLength: 1, maxLength: 100 } } } as const;
const paging = { count: { type: 'integer', minimum: 1, maximum: 500 }, offset: { type: 'integer', minimum: 0 } } as const;
const SUPPRESSIONS_MAX = 500;

/** Postmark's day-only dates ("2024-01-31") as the instants the read API takes. */
const day = (value: string | undefined, end: boolean) => (value === undefined || value.includes('T') ? value : `${value}T${end ? '23:59:59.999' : '00:00:00'}Z`);

/**
 * Postmark's server API (https://postmarkapp.com/developer) over the native functions: the
 * `postmark` SDK's ServerClient works with `{ useHttps: false, requestHost: 'host:port[/compat/postmark]' }`.
 * docs/compat/postmark.md.
 */
export async function postmarkRoutes(app: FastifyInstance, deps: CompatDeps) {
  const { db, renderer } = deps;
  const allowPrivate = deps.config.webhooks.allowPrivate;
  const submitOptions = { idempotencyTtlHours: deps.config.idempotencyTtlHours, requireVerifiedDomain: verifiedDomainRequired(deps.config), renderer };
  const check: TemplateCheck = (source) => renderer.renderTemplate(source, {});
  const tags = ['compat: postmark'];
  const auth = (scope: 'send' | 'messages.view' | 'templates.manage' | 'templates.view' | 'webhooks.manage' | 'suppressions.view' | 'suppressions.manage') =>
    ({ scope, credentialHeader: 'x-postmark-server-token' }) as const;
  let box: SecretBox | undefined;
  const secrets = () => {
    try {
      return (box ??= secretBoxFor(deps.config));
    } catch (err) {
      throw new HttpError(503, 'webhooks_unavailable', (err as Error).message);
    }
  };

  // Postmark's `{ErrorCode, Message}`, so the SDK throws its own error classes; request_id rides along.
  app.setErrorHandler((err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => {
    const e = compatError(err, request);
    const { status, code } = postmarkError(e, request);
    return reply.code(status).type('application/json').send({ ErrorCode: code, Message: e.message, request_id: request.id });
  });
  if (app.prefix) {
    app.setNotFoundHandler((request) => {
      throw new HttpError(404, 'not_found', `route ${request.method} ${request.url.split('?')[0]} not found`);
    });
  }

  async function send(request: FastifyRequest, body: PostmarkEmail, templated: boolean) {
    // Postmark has no idempotency key: every request is a new send.
    const input = toSendInput(body, `postmark:${newId()}`, templated);
    const result = await submitProxySend(db, request.principal.tenantId, input, submitOptions);
    request.log.info({ job_id: result.jobId }, 'postmark: email accepted');
    return sendingResponse(body.To!, await firstMessageId(db, request.principal.tenantId, result.jobId));
  }

  /** Batch items answer one by one, as Postmark's do: an item's error is its ErrorCode, the others still go. */
  type Validate = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string }> | null };
  const validator = (schema: object) => app.validatorCompiler!({ schema, httpPart: 'body', method: 'POST', url: '/email' }) as Validate;
  const validators = { plain: validator(EmailBody), templated: validator(TemplatedEmailBody) };
  async function batch(request: FastifyRequest, items: PostmarkEmail[], templated: boolean) {
    const validate = templated ? validators.templated : validators.plain;
    const out = [];
    for (const [index, item] of items.entries()) {
      try {
        if (!validate(item)) throw new HttpError(422, 'validation_error', `[${index}]${validate.errors?.[0]?.instancePath ?? ''} ${validate.errors?.[0]?.message ?? 'is invalid'}`);
        out.push(await send(request, item, templated));
      } catch (err) {
        if (!(err instanceof HttpError || err instanceof DomainError)) throw err;
        const e = compatError(err, request);
        out.push({ ErrorCode: postmarkError(e, request).code, Message: e.message, To: typeof item?.To === 'string' ? item.To : '' });
      }
    }
    return out;
  }

  // ---- email --------------------------------------------------------------------------------

  const sendLimit = 16 * 1024 * 1024;
  app.post<{ Body: PostmarkEmail }>(
    '/email',
    { config: auth('send'), bodyLimit: sendLimit, schema: { summary: 'Send an email (Postmark)', tags, body: EmailBody } },
    async (request) => send(request, request.body, false),
  );

  app.post<{ Body: PostmarkEmail }>(
    '/email/withTemplate',
    { config: auth('send'), bodyLimit: sendLimit, schema: { summary: 'Send with a stored template (Postmark)', tags, body: TemplatedEmailBody } },
    async (request) => send(request, request.body, true),
  );

  app.post<{ Body: PostmarkEmail[] }>(
    '/email/batch',
    { config: auth('send'), bodyLimit: sendLimit, schema: { summary: 'Send up to 500 emails, each answered on its own (Postmark)', tags, body: BatchBody } },
    async (request) => batch(request, request.body, false),
  );

  app.post<{ Body: { Messages: PostmarkEmail[] } }>(
    '/email/batchWithTemplates',
    {
      config: auth('send'),
      bodyLimit: sendLimit,
      schema: { summary: 'Send up to 500 templated emails (Postmark)', tags, body: { type: 'object', required: ['Messages'], properties: { Messages: BatchBody } } },
    },
    async (request) => batch(request, request.body.Messages, true),
  );

  // ---- messages -----------------------------------------------------------------------------

  app.get<{ Querystring: { count?: number; offset?: number; recipient?: string; fromdate?: string; todate?: string; messagestream?: string } & Record<string, unknown> }>(
    '/messages/outbound',
    {
      config: auth('messages.view'),
      schema: {
        summary: 'Outbound messages, newest first, one per recipient (Postmark)',
        tags,
        querystring: {
          type: 'object',
          properties: { ...paging, recipient: { type: 'string', maxLength: 320 }, fromdate: { type: 'string', maxLength: 64 }, todate: { type: 'string', maxLength: 64 }, messagestream: { type: 'string', maxLength: 100 } },
        },
      },
    },
    async (request) => {
      const q = request.query;
      for (const field of Object.keys(q)) if (!['count', 'offset', 'recipient', 'fromdate', 'todate', 'messagestream'].includes(field)) throw notSupported(field, 'this filter is not supported by Send Engine');
      if (q.offset) throw notSupported('offset', 'only the first page (offset 0) is supported by Send Engine; narrow it with fromdate/todate');
      if (q.messagestream !== undefined && q.messagestream !== 'outbound') throw notSupported('messagestream', 'only "outbound" is supported by Send Engine');
      const unmask = request.principal.scopes.has(UNMASK);
      if (q.recipient !== undefined && !unmask) throw new HttpError(403, 'invalid_scope', `the recipient filter needs scope: ${UNMASK}`);
      const page = await listMessages(
        db, request.principal.tenantId,
        { window: resolveWindow(day(q.fromdate, false), day(q.todate, true)), recipient: q.recipient, channel: 'transactional' },
        { limit: q.count ?? 100, unmask },
      );
      // TotalCount is this page's length: we keep no running count (docs/compat/postmark.md).
      return { TotalCount: page.data.length, Messages: page.data.map(outboundMessage) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/messages/outbound/:id/details',
    { config: auth('messages.view'), schema: { summary: 'One outbound message with its events (Postmark)', tags, params: idParam } },
    async (request) => {
      const tenantId = request.principal.tenantId;
      const unmask = request.principal.scopes.has(UNMASK);
      const message = await getMessage(db, tenantId, request.params.id, unmask);
      const [send, events] = await Promise.all([getSend(db, tenantId, message.id), getMessageEvents(db, tenantId, message.id, unmask)]);
      return messageDetails(send, message.to, message.status, events);
    },
  );

  // ---- templates ----------------------------------------------------------------------------

  const createTemplateRoute = async (request: FastifyRequest<{ Body: PostmarkTemplateInput }>) => {
    const body = request.body;
    checkTemplateInput(body);
    if (!body.Name) throw notSupported('Name', 'is required');
    if (!body.Subject) throw notSupported('Subject', 'is required');
    const t = await createTemplate(db, request.principal.tenantId, { name: body.Name, subject: body.Subject, html: body.HtmlBody, text: body.TextBody, slug: body.Alias ?? undefined }, check);
    return templateSummary(t);
  };
  // The SDK posts to "/templates/" (trailing slash); the API documents "/templates".
  for (const url of ['/templates', '/templates/']) {
    app.post<{ Body: PostmarkTemplateInput }>(url, { config: auth('templates.manage'), schema: { summary: 'Create a template (Postmark)', tags, body: TemplateBody } }, createTemplateRoute);
  }

  app.get<{ Querystring: { count?: number; offset?: number; templateType?: string; layoutTemplate?: string } }>(
    '/templates',
    {
      config: auth('templates.view'),
      schema: { summary: 'Templates (Postmark)', tags, querystring: { type: 'object', properties: { ...paging, templateType: { type: 'string', maxLength: 20 }, layoutTemplate: { type: 'string', maxLength: 100 } } } },
    },
    async (request) => {
      const q = request.query;
      if (q.offset) throw notSupported('offset', 'only the first page (offset 0) is supported by Send Engine');
      if (q.templateType !== undefined && q.templateType !== 'Standard' && q.templateType !== 'All') throw notSupported('templateType', 'only Standard templates exist in Send Engine');
      if (q.layoutTemplate !== undefined) throw notSupported('layoutTemplate', 'layouts are not supported by Send Engine');
      const page = await listTemplates(db, request.principal.tenantId, { limit: Math.min(q.count ?? 100, 200) });
      return { TotalCount: page.data.length, Templates: page.data.map(templateSummary) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/templates/:id',
    { config: auth('templates.view'), schema: { summary: 'One template by id or alias (Postmark)', tags, params: idParam } },
    async (request) => templateView(await getTemplate(db, request.principal.tenantId, request.params.id)),
  );

  app.put<{ Params: { id: string }; Body: PostmarkTemplateInput }>(
    '/templates/:id',
    { config: auth('templates.manage'), schema: { summary: 'Change a template: a new version (Postmark)', tags, params: idParam, body: TemplateBody } },
    async (request) => {
      const body = request.body;
      checkTemplateInput(body);
      // Postmark's edit changes what it is given; ours takes a whole version, so the rest is the current one's.
      const current = await getTemplate(db, request.principal.tenantId, request.params.id);
      const t = await updateTemplate(
        db, request.principal.tenantId, current.id,
        {
          name: body.Name ?? current.name,
          subject: body.Subject ?? current.subject,
          html: body.HtmlBody === undefined ? current.html : body.HtmlBody,
          text: body.TextBody === undefined ? current.text : body.TextBody,
          ...(body.Alias ? { slug: body.Alias } : {}),
        },
        check,
      );
      return templateSummary(t);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/templates/:id',
    { config: auth('templates.manage'), schema: { summary: 'Delete a template (Postmark)', tags, params: idParam } },
    async (request) => {
      await deleteTemplate(db, request.principal.tenantId, request.params.id);
      return { ErrorCode: 0, Message: `Template ${request.params.id} removed.` };
    },
  );

  // ---- webhooks -----------------------------------------------------------------------------

  app.post<{ Body: PostmarkWebhookInput }>(
    '/webhooks',
    { config: auth('webhooks.manage'), schema: { summary: 'Register a webhook (Postmark; deliveries are Standard Webhooks signed)', tags, body: WebhookBody } },
    async (request) => {
      const events = webhookEvents(request.body);
      if (!request.body.Url) throw notSupported('Url', 'is required');
      if (!events) throw notSupported('Triggers', 'enable at least one trigger');
      const created = await createEndpoint(db, secrets(), request.principal.tenantId, { url: request.body.Url, event_types: events }, allowPrivate);
      // Postmark has no signing secret; ours is shown here, once, beside Postmark's fields.
      return { ...webhookView(created), SigningSecret: created.secret };
    },
  );

  app.get<{ Querystring: { MessageStream?: string } }>(
    '/webhooks',
    { config: auth('webhooks.manage'), schema: { summary: 'Webhooks (Postmark)', tags, querystring: { type: 'object', properties: { MessageStream: { type: 'string', maxLength: 100 } } } } },
    async (request) => {
      if (request.query.MessageStream !== undefined && request.query.MessageStream !== 'outbound') throw notSupported('MessageStream', 'only "outbound" is supported by Send Engine');
      const page = await listEndpoints(db, request.principal.tenantId, { limit: 100 });
      return { Webhooks: page.data.map(webhookView) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/webhooks/:id',
    { config: auth('webhooks.manage'), schema: { summary: 'One webhook (Postmark)', tags, params: uuidParam } },
    async (request) => webhookView(await getEndpoint(db, request.principal.tenantId, request.params.id)),
  );

  app.put<{ Params: { id: string }; Body: PostmarkWebhookInput }>(
    '/webhooks/:id',
    { config: auth('webhooks.manage'), schema: { summary: 'Change a webhook (Postmark)', tags, params: uuidParam, body: WebhookBody } },
    async (request) => {
      const events = webhookEvents(request.body);
      return webhookView(await updateEndpoint(db, request.principal.tenantId, request.params.id, { url: request.body.Url, event_types: events }, allowPrivate));
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/webhooks/:id',
    { config: auth('webhooks.manage'), schema: { summary: 'Delete a webhook (Postmark)', tags, params: uuidParam } },
    async (request) => {
      await deleteEndpoint(db, request.principal.tenantId, request.params.id);
      return { ErrorCode: 0, Message: `Webhook ${request.params.id} removed.` };
    },
  );

  // ---- suppressions (account-wide here: every stream name reads and writes the one list) ----

  const actor = (request: FastifyRequest) => ({ id: request.principal.keyId ? `api_key:${request.principal.keyId}` : (request.principal.subject ?? `tenant:${request.principal.tenantId}`) });
  const entries = { type: 'object', required: ['Suppressions'], properties: { Suppressions: { type: 'array', minItems: 1, maxItems: 50, items: { type: 'object', required: ['EmailAddress'], properties: { EmailAddress: { type: 'string', format: 'email', maxLength: 254 } } } } } } as const;

  app.get<{ Params: { stream: string }; Querystring: { SuppressionReason?: string; Origin?: string; fromdate?: string; todate?: string; EmailAddress?: string } }>(
    '/message-streams/:stream/suppressions/dump',
    {
      config: auth('suppressions.view'),
      schema: {
        summary: `Suppressed addresses, newest ${SUPPRESSIONS_MAX} (Postmark)`,
        tags,
        params: streamParam,
        querystring: {
          type: 'object',
          properties: { SuppressionReason: { type: 'string', maxLength: 64 }, Origin: { type: 'string', maxLength: 64 }, fromdate: { type: 'string', maxLength: 64 }, todate: { type: 'string', maxLength: 64 }, EmailAddress: { type: 'string', maxLength: 320 } },
        },
      },
    },
    async (request) => {
      const q = request.query;
      if (q.SuppressionReason !== undefined) throw notSupported('SuppressionReason', 'this filter is not supported by Send Engine');
      if (q.Origin !== undefined) throw notSupported('Origin', 'this filter is not supported by Send Engine');
      // Every suppression unless a window is asked for (the read API's default is 30 days).
      const window = resolveWindow(day(q.fromdate, false) ?? new Date(0).toISOString(), day(q.todate, true));
      const page = await listSuppressions(db, request.principal.tenantId, { window, email: q.EmailAddress }, { limit: SUPPRESSIONS_MAX });
      return { Suppressions: page.data.map(suppressionView) };
    },
  );

  app.post<{ Params: { stream: string }; Body: { Suppressions: Array<{ EmailAddress: string }> } }>(
    '/message-streams/:stream/suppressions',
    { config: auth('suppressions.manage'), schema: { summary: 'Suppress addresses (Postmark)', tags, params: streamParam, body: entries } },
    async (request) => {
      const out = [];
      for (const { EmailAddress } of request.body.Suppressions) {
        await addSuppression(db, request.principal.tenantId, { email: EmailAddress, reason: 'manual', comment: 'postmark API' }, actor(request));
        out.push({ EmailAddress, Status: 'Suppressed', Message: null });
      }
      return { Suppressions: out };
    },
  );

  app.post<{ Params: { stream: string }; Body: { Suppressions: Array<{ EmailAddress: string }> } }>(
    '/message-streams/:stream/suppressions/delete',
    { config: auth('suppressions.manage'), schema: { summary: 'Remove suppressions (Postmark)', tags, params: streamParam, body: entries } },
    async (request) => {
      const out = [];
      for (const { EmailAddress } of request.body.Suppressions) {
        try {
          await removeSuppression(db, request.principal.tenantId, EmailAddress, { comment: 'postmark API' }, actor(request));
          out.push({ EmailAddress, Status: 'Deleted', Message: null });
        } catch (err) {
          if (!(err instanceof DomainError)) throw err;
          out.push({ EmailAddress, Status: 'Failed', Message: err.message });
        }
      }
      return { Suppressions: out };
    },
  );
}
