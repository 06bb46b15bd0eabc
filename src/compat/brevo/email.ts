import type { FastifyInstance, FastifyRequest } from 'fastify';
import { defaultSender, verifiedDomainRequired } from '../../domains/domains.ts';
import { newId } from '../../ids.ts';
import { maskEmail } from '../../log.ts';
import { resolveWindow } from '../../observability/cursor.ts';
import { getMessageEvents, getSendCopy, listSendCopies } from '../../observability/messages.ts';
import { cancelScheduledSend } from '../../sending/scheduled.ts';
import { submitProxySend, submitProxySendsTogether, type SendInput } from '../../sending/submit.ts';
import { templateIdByNumber } from '../../templates/templates.ts';
import { DomainError } from '../../errors.ts';
import { brevoFailures, invalidParameter, missing, notSupported } from './errors.ts';
import type { BrevoDeps } from './index.ts';
import {
  EmailContent, EmailList, emailListQuery, SendTransacEmail, SendTransacEmailResponse, uuidParam, type BrevoAddress, type BrevoVersion, type SendTransacEmailBody,
} from './schemas.ts';

/** Brevo's `messageId`: our send (proxy job) id in Message-ID form, `<uuid@sender domain>`. */
export const brevoMessageId = (sendId: string, from: string) => `<${sendId}@${from.slice(from.lastIndexOf('@') + 1)}>`;
const SEND_ID = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/i;

/** Our timeline's types (src/observability/messages.ts) as Brevo names its events. */
export const BREVO_EVENT: Record<string, string> = {
  Send: 'sent', Delivery: 'delivered', Open: 'opened', Click: 'clicks', Bounce: 'hardBounces', Complaint: 'spam', Reject: 'blocked',
  DeliveryDelay: 'deferred', RenderingFailure: 'error',
};

const emails = (list: BrevoAddress[] | undefined) => list?.map((a) => a.email);

/** Variables for a stored template: Brevo templates say `{{ params.name }}`, ours `{{ name }}`; both work. */
const variables = (params: Record<string, unknown> | undefined) => (params === undefined ? undefined : { ...params, params });

/** One Brevo send (or one of its messageVersions) as a native send: the same submit, rules and outbox. */
function toSendInput(body: SendTransacEmailBody, version: BrevoVersion | undefined, from: string, templateId: string | undefined, key: string): SendInput {
  const v = { ...body, ...version };
  const to = emails(v.to);
  if (!to?.length) throw missing('to');
  const headers = { ...body.headers };
  delete headers.idempotencyKey;
  const input: SendInput = {
    message_type: 'transactional',
    from,
    to,
    cc: emails(v.cc),
    bcc: emails(v.bcc),
    reply_to: v.replyTo ? [v.replyTo.email] : undefined,
    headers: Object.keys(headers).length ? headers : undefined,
    // Brevo's tags are labels; ours are the contract's four keys, with the labels beside them.
    tags: { campaign_id: '', site_id: '', list_id: '', segment: '', ...(body.tags ? { labels: body.tags } : {}) },
    idempotency_key: key,
    attachments: body.attachment?.map((a, i) => {
      if (a.url !== undefined) throw notSupported(`attachment[${i}].url`, 'attachments are not fetched from URLs here; give content (base64) and name');
      if (a.content === undefined) throw missing(`attachment[${i}].content`);
      if (a.name === undefined) throw missing(`attachment[${i}].name`);
      return { filename: a.name, content: a.content };
    }),
    scheduled_at: body.scheduledAt,
  };
  if (templateId !== undefined) return { ...input, template_id: templateId, variables: variables(v.params) ?? {} };
  if (v.params !== undefined) throw notSupported('params', 'params fill a stored template: give templateId');
  if (v.subject === undefined) throw missing('subject');
  if (v.htmlContent === undefined && v.textContent === undefined) throw missing('htmlContent');
  return { ...input, subject: v.subject, html: v.htmlContent ?? '', text: v.textContent ?? '' };
}

export async function emailRoutes(app: FastifyInstance, deps: BrevoDeps) {
  const { db, config, renderer } = deps;
  const submitOptions = { idempotencyTtlHours: config.idempotencyTtlHours, requireVerifiedDomain: verifiedDomainRequired(config), renderer };

  async function sender(request: FastifyRequest, body: SendTransacEmailBody): Promise<string> {
    const from = body.sender?.email ?? (await defaultSender(db, request.principal.tenantId)) ?? config.jobs.defaultFrom;
    if (!from) throw missing('sender');
    return from;
  }

  app.post<{ Body: SendTransacEmailBody }>(
    '/smtp/email',
    {
      config: { scope: 'send', credentialHeader: 'api-key' },
      bodyLimit: 16 * 1024 * 1024,
      schema: { summary: 'Brevo: send a transactional email (one, messageVersions, or a stored template by number)', tags: ['brevo'], body: SendTransacEmail, response: { 201: SendTransacEmailResponse, ...brevoFailures } },
    },
    async (request, reply) => {
      const body = request.body;
      const tenantId = request.principal.tenantId;
      if (body.templateId !== undefined && (body.subject ?? body.htmlContent ?? body.textContent) !== undefined) {
        throw notSupported('subject/htmlContent/textContent with templateId', 'a stored template gives the content; leave them out or drop templateId');
      }
      if (body.messageVersions && body.to) throw invalidParameter('give to or messageVersions, not both');
      const from = await sender(request, body);
      const templateId = body.templateId === undefined ? undefined : await templateIdByNumber(db, tenantId, body.templateId);
      const key = body.headers?.idempotencyKey ?? newId();
      if (!body.messageVersions) {
        const result = await submitProxySend(db, tenantId, toSendInput(body, undefined, from, templateId, key), submitOptions);
        request.log.info({ job_id: result.jobId, replayed: result.replayed }, 'brevo send accepted');
        return reply.code(201).send({ messageId: brevoMessageId(result.jobId, from) });
      }
      // Every version or none: checked first, then written in one statement.
      const inputs = body.messageVersions.map((version, i) => toSendInput(body, version, from, templateId, `${key}:${i}`));
      const ids = (await submitProxySendsTogether(db, tenantId, inputs, submitOptions)).map((r) => r.jobId);
      request.log.info({ job_ids: ids }, 'brevo message versions accepted');
      return reply.code(201).send({ messageIds: ids.map((id) => brevoMessageId(id, from)) });
    },
  );

  app.delete<{ Params: { identifier: string } }>(
    '/smtp/email/:identifier',
    {
      config: { scope: 'send', credentialHeader: 'api-key' },
      schema: {
        summary: 'Brevo: cancel a scheduled email (every copy still waiting) by its messageId', tags: ['brevo'],
        params: { type: 'object', required: ['identifier'], properties: { identifier: { type: 'string', minLength: 1, maxLength: 300 } } },
        response: { 204: { type: 'null' }, ...brevoFailures },
      },
    },
    async (request, reply) => {
      // Brevo's batchId has no counterpart here (batchId is refused on send): a bare uuid is a messageId too.
      const sendId = SEND_ID.exec(request.params.identifier)?.[1];
      if (!sendId) throw new DomainError('not_found', 'not_found', 'scheduled email not found');
      const cancelled = await cancelScheduledSend(db, request.principal.tenantId, sendId);
      request.log.info({ job_id: sendId, cancelled }, 'brevo scheduled email cancelled');
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: { email?: string; templateId?: number; messageId?: string; startDate?: string; endDate?: string; sort: 'asc' | 'desc'; limit: number; offset: number } }>(
    '/smtp/emails',
    { config: { scope: 'messages.view', credentialHeader: 'api-key' }, schema: { summary: 'Brevo: transactional email logs (one per recipient copy)', tags: ['brevo'], querystring: emailListQuery, response: { 200: EmailList, ...brevoFailures } } },
    async (request) => {
      const q = request.query;
      const tenantId = request.principal.tenantId;
      if ((q.startDate === undefined) !== (q.endDate === undefined)) throw missing(q.startDate === undefined ? 'startDate' : 'endDate');
      const window = resolveWindow(q.startDate && `${q.startDate}T00:00:00Z`, q.endDate && `${q.endDate}T23:59:59.999Z`);
      if (q.email !== undefined && !request.principal.scopes.has('analytics.search.recipients')) {
        throw new DomainError('forbidden', 'permission_denied', 'searching by email needs the analytics.search.recipients scope');
      }
      const sendId = q.messageId === undefined ? undefined : SEND_ID.exec(q.messageId)?.[1];
      let templateId: string | undefined;
      try {
        templateId = q.templateId === undefined ? undefined : await templateIdByNumber(db, tenantId, q.templateId);
      } catch (err) {
        if (!(err instanceof DomainError && err.kind === 'not_found')) throw err;
        return { count: 0, transactionalEmails: [] };
      }
      if (q.messageId !== undefined && !sendId) return { count: 0, transactionalEmails: [] };
      const unmask = request.principal.scopes.has('analytics.search.recipients');
      const page = await listSendCopies(db, tenantId, { window, recipient: q.email, sendId, templateId }, { limit: q.limit, offset: q.offset, newestFirst: q.sort === 'desc' });
      return {
        count: page.count,
        transactionalEmails: page.data.map((c) => ({
          email: unmask ? c.recipient : maskEmail(c.recipient), subject: c.subject, templateId: c.template_number ?? undefined,
          messageId: brevoMessageId(c.send_id, c.from), uuid: c.id, date: c.created_at, from: c.from,
          tags: Array.isArray(c.tags.labels) ? (c.tags.labels as string[]) : [],
        })),
      };
    },
  );

  app.get<{ Params: { uuid: string } }>(
    '/smtp/emails/:uuid',
    { config: { scope: 'messages.view', credentialHeader: 'api-key' }, schema: { summary: 'Brevo: one email copy with its events (uuid = our message id)', tags: ['brevo'], params: uuidParam('uuid'), response: { 200: EmailContent, ...brevoFailures } } },
    async (request) => {
      const tenantId = request.principal.tenantId;
      const unmask = request.principal.scopes.has('analytics.search.recipients');
      const copy = await getSendCopy(db, tenantId, request.params.uuid);
      const events = await getMessageEvents(db, tenantId, copy.id, unmask);
      return {
        email: unmask ? copy.recipient : maskEmail(copy.recipient), subject: copy.subject, templateId: copy.template_number ?? undefined, date: copy.created_at,
        body: copy.html ?? '', attachmentCount: copy.attachment_count,
        events: events.map((e) => ({ name: BREVO_EVENT[e.type] ?? e.type, time: e.occurred_at })),
      };
    },
  );
}
