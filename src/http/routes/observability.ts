import type { FastifyInstance, FastifyRequest } from 'fastify';
import { resolveWindow } from '../../observability/cursor.ts';
import { getMessage, getMessageEvents, listMessages } from '../../observability/messages.ts';
import { addSuppression, getSuppression, listSuppressions, removeSuppression, suppressionAudit } from '../../observability/suppressions.ts';
import type { AppDeps } from '../app.ts';
import { HttpError } from '../errors.ts';
import { dateTime, nullableDateTime, nullableString, Pagination, pageQuery, sendPage } from '../read-api.ts';
import { failures } from '../schemas.ts';

const UNMASK = 'analytics.search.recipients';

const Message = {
  type: 'object',
  required: ['id', 'channel', 'to', 'status', 'created_at'],
  properties: {
    id: { type: 'string' },
    provider_message_id: nullableString,
    channel: { type: 'string' },
    template: { ...nullableString, description: "The stored template's slug for a send made from one (template_id), else the list send job's name" },
    template_id: { type: ['string', 'null'], format: 'uuid', description: 'The stored template the send used (POST /v1/send-jobs or a campaign with template_id)' },
    template_version: { type: ['integer', 'null'], description: 'The version of that template the send used' },
    from: nullableString,
    to: { type: 'string', description: 'Masked unless the credential has analytics.search.recipients' },
    subject: nullableString,
    created_at: dateTime,
    sent_at: nullableDateTime,
    status: { type: 'string' },
    last_event_at: nullableDateTime,
  },
} as const;
const MessagePage = { type: 'object', required: ['data', 'pagination'], properties: { data: { type: 'array', items: Message }, pagination: Pagination } } as const;

const Suppression = {
  type: 'object',
  required: ['email', 'reason', 'suppressed_at', 'source'],
  properties: { email: { type: 'string' }, reason: { type: 'string' }, suppressed_at: dateTime, source: { type: 'string' }, diagnostic: nullableString },
} as const;

const emailParam = { type: 'object', required: ['email'], properties: { email: { type: 'string', minLength: 1, maxLength: 320 } } } as const;
const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 256 } } } as const;

interface PageQuery {
  limit: number;
  cursor?: string;
  from?: string;
  to?: string;
}

const canUnmask = (request: FastifyRequest) => request.principal.scopes.has(UNMASK);


/** The actor recorded in audit trails: the API key id, or the JWT subject. */
const actorOf = (request: FastifyRequest) => ({ id: request.principal.keyId ? `api_key:${request.principal.keyId}` : (request.principal.subject ?? `tenant:${request.principal.tenantId}`) });

export async function observabilityRoutes(app: FastifyInstance, deps: AppDeps) {
  const { db } = deps;
  const security = [{ bearerAuth: [] }];

  app.get(
    '/v1/_scopes',
    {
      config: { authenticated: true },
      schema: {
        summary: 'Scopes and identity of the calling credential',
        security,
        response: {
          200: {
            type: 'object',
            required: ['key_id', 'prefix', 'environment', 'scopes'],
            properties: { key_id: nullableString, prefix: nullableString, environment: { type: 'string', enum: ['live', 'test'] }, scopes: { type: 'array', items: { type: 'string' } } },
          },
          ...failures(401),
        },
      },
    },
    async (request) => ({
      key_id: request.principal.keyId ?? null,
      prefix: request.principal.keyPrefix ?? null,
      environment: request.principal.environment ?? 'live',
      scopes: [...request.principal.scopes].sort(),
    }),
  );

  app.get<{ Querystring: PageQuery & { status?: string; recipient?: string; channel?: string; template?: string; identity?: string; tag?: string } }>(
    '/v1/messages',
    {
      config: { scope: 'messages.view' },
      schema: {
        summary: 'List messages, newest first (cursor-paginated)',
        security,
        querystring: {
          type: 'object',
          properties: {
            ...pageQuery,
            status: { type: 'string', maxLength: 32 },
            recipient: { type: 'string', maxLength: 320 },
            channel: { type: 'string', enum: ['transactional', 'newsletter'] },
            template: { type: 'string', maxLength: 256 },
            identity: { type: 'string', maxLength: 320 },
            tag: { type: 'string', minLength: 3, maxLength: 512, description: 'name:value: only messages whose tags carry that name with that value (e.g. campaign_id:spring-sale)' },
          },
        },
        response: { 200: MessagePage, ...failures(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const q = request.query;
      // PII-gated: refuse rather than silently drop the filter.
      if (q.recipient !== undefined && !canUnmask(request)) throw new HttpError(403, 'invalid_scope', `the recipient filter needs scope: ${UNMASK}`);
      const page = await listMessages(
        db,
        request.principal.tenantId,
        { window: resolveWindow(q.from, q.to), status: q.status, recipient: q.recipient, channel: q.channel, template: q.template, identity: q.identity, tag: q.tag },
        { limit: q.limit, cursor: q.cursor, unmask: canUnmask(request) },
      );
      return sendPage(request, reply, page);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/messages/:id',
    {
      config: { scope: 'messages.view' },
      schema: { summary: 'One message, by our id or the provider message id', security, params: idParam, response: { 200: Message, ...failures(401, 403, 404) } },
    },
    async (request) => getMessage(db, request.principal.tenantId, request.params.id, canUnmask(request)),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/messages/:id/events',
    {
      config: { scope: 'messages.view' },
      schema: {
        summary: "A message's event timeline, oldest first",
        security,
        params: idParam,
        response: {
          200: {
            type: 'object',
            required: ['data'],
            properties: {
              data: {
                type: 'array',
                items: { type: 'object', required: ['type', 'occurred_at'], properties: { type: { type: 'string' }, occurred_at: dateTime, metadata: { type: 'object', additionalProperties: true } } },
              },
            },
          },
          ...failures(401, 403, 404),
        },
      },
    },
    async (request) => ({ data: await getMessageEvents(db, request.principal.tenantId, request.params.id, canUnmask(request)) }),
  );

  app.get<{ Params: { email: string }; Querystring: PageQuery }>(
    '/v1/recipients/:email/messages',
    {
      config: { scope: UNMASK },
      schema: { summary: "One recipient's messages (PII-gated)", security, params: emailParam, querystring: { type: 'object', properties: pageQuery }, response: { 200: MessagePage, ...failures(401, 403, 422) } },
    },
    async (request, reply) => {
      const q = request.query;
      const page = await listMessages(db, request.principal.tenantId, { window: resolveWindow(q.from, q.to), recipient: request.params.email }, { limit: q.limit, cursor: q.cursor, unmask: true });
      return sendPage(request, reply, page);
    },
  );

  app.get<{ Querystring: PageQuery & { reason?: string; email?: string } }>(
    '/v1/suppressions',
    {
      config: { scope: 'suppressions.view' },
      schema: {
        summary: 'List suppressed addresses, newest first',
        security,
        querystring: { type: 'object', properties: { ...pageQuery, reason: { type: 'string', maxLength: 64 }, email: { type: 'string', maxLength: 320 } } },
        response: { 200: { type: 'object', required: ['data', 'pagination'], properties: { data: { type: 'array', items: Suppression }, pagination: Pagination } }, ...failures(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const page = await listSuppressions(db, request.principal.tenantId, { window: resolveWindow(q.from, q.to), reason: q.reason, email: q.email }, { limit: q.limit, cursor: q.cursor });
      return sendPage(request, reply, page);
    },
  );

  app.get<{ Params: { email: string } }>(
    '/v1/suppressions/:email',
    {
      config: { scope: 'suppressions.view' },
      schema: { summary: 'Look up one suppressed address', security, params: emailParam, response: { 200: Suppression, ...failures(401, 403, 404) } },
    },
    async (request) => getSuppression(db, request.principal.tenantId, request.params.email),
  );

  app.get<{ Params: { email: string } }>(
    '/v1/suppressions/:email/audit',
    {
      config: { scope: 'suppressions.view' },
      schema: {
        summary: 'Who added or removed this suppression through the API, and why',
        security,
        params: emailParam,
        response: {
          200: {
            type: 'object',
            required: ['data'],
            properties: {
              data: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { action: { type: 'string' }, actor: { type: 'string' }, reason: nullableString, comment: nullableString, created_at: dateTime },
                },
              },
            },
          },
          ...failures(401, 403),
        },
      },
    },
    async (request) => ({ data: await suppressionAudit(db, request.principal.tenantId, request.params.email) }),
  );

  app.post<{ Body: { email: string; reason?: string; comment?: string } }>(
    '/v1/suppressions',
    {
      config: { scope: 'suppressions.manage' },
      schema: {
        summary: 'Suppress an address (audited)',
        security,
        body: {
          type: 'object',
          required: ['email'],
          additionalProperties: false,
          properties: {
            email: { type: 'string', format: 'email', maxLength: 254 },
            reason: { type: 'string', minLength: 1, maxLength: 64, default: 'manual' },
            comment: { type: 'string', maxLength: 1000 },
          },
        },
        response: { 200: Suppression, 201: Suppression, ...failures(400, 401, 403, 422) },
      },
    },
    async (request, reply) => {
      const { suppression, created } = await addSuppression(db, request.principal.tenantId, { email: request.body.email, reason: request.body.reason ?? 'manual', comment: request.body.comment }, actorOf(request));
      request.log.info({ created, actor: actorOf(request).id }, 'suppression added');
      return reply.code(created ? 201 : 200).send(suppression);
    },
  );

  app.delete<{ Params: { email: string }; Querystring: { comment?: string } }>(
    '/v1/suppressions/:email',
    {
      config: { scope: 'suppressions.manage' },
      schema: {
        summary: 'Remove a suppression (audited); `comment` says why',
        security,
        params: emailParam,
        querystring: { type: 'object', properties: { comment: { type: 'string', maxLength: 1000 } } },
        response: { 200: Suppression, ...failures(401, 403, 404) },
      },
    },
    async (request) => {
      const removed = await removeSuppression(db, request.principal.tenantId, request.params.email, { comment: request.query.comment }, actorOf(request));
      request.log.info({ actor: actorOf(request).id }, 'suppression removed');
      return removed;
    },
  );
}
