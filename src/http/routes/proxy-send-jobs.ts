import type { FastifyInstance, FastifyRequest } from 'fastify';
import { verifiedDomainRequired } from '../../domains/domains.ts';
import { DomainError, invalid } from '../../errors.ts';
import { cancelScheduledMessage, rescheduleMessage } from '../../sending/scheduled.ts';
import { submitProxySend, type SendInput } from '../../sending/submit.ts';
import type { TemplateRenderer } from '../../templates/templates.ts';
import type { AppDeps } from '../app.ts';
import { HttpError } from '../errors.ts';
import { assertActsFor } from '../plugins/auth.ts';
import { errors, failures, SubmitSendJobResponse } from '../schemas.ts';
import {
  BatchRequest, BatchResponse, idempotencyHeader, RescheduleRequest, ScheduledMessage, SendRequest, SendRequestAccepted,
} from '../schemas/transactional.ts';

// Base64 attachments (10 MB decoded, docs/api.md) need more than the API's default 10 MB body.
const SEND_BODY_LIMIT = 16 * 1024 * 1024;

/** The body's idempotency_key or the Idempotency-Key header; both given, they must agree. */
function idempotencyKey(body: string | undefined, header: string | undefined): string {
  if (body !== undefined && header !== undefined && body !== header) {
    throw invalid('idempotency_key and the Idempotency-Key header differ: give one, or the same value', 'idempotency_key_mismatch');
  }
  const key = body ?? header;
  if (key === undefined) throw invalid('idempotency_key is required (the body field or the Idempotency-Key header)');
  return key;
}

/** A body as sent: the key may come from the Idempotency-Key header instead. */
type SendBody = Omit<SendInput, 'idempotency_key'> & { idempotency_key?: string };

const DOMAIN_STATUS: Record<DomainError['kind'], number> = { invalid: 422, conflict: 409, forbidden: 403, not_found: 404 };

export async function proxySendRoutes(app: FastifyInstance, deps: AppDeps & { renderer: TemplateRenderer }) {
  const messageParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } as const;
  const submitOptions = {
    idempotencyTtlHours: deps.config.idempotencyTtlHours,
    requireVerifiedDomain: verifiedDomainRequired(deps.config),
    renderer: deps.renderer,
  };

  async function accept(request: FastifyRequest, body: SendBody, headerKey: string | undefined) {
    assertActsFor(request, body.tenant_id);
    const req = { ...body, idempotency_key: idempotencyKey(body.idempotency_key, headerKey) };
    const result = await submitProxySend(deps.db, request.principal.tenantId, req, submitOptions);
    request.log.info({ job_id: result.jobId, recipients: req.to.length + (req.cc?.length ?? 0) + (req.bcc?.length ?? 0), replayed: result.replayed }, 'proxy send accepted');
    return result;
  }

  // The served schema is the contract's; validation allows its documented alternatives.
  const validateSend = () => app.validatorCompiler!({ schema: SendRequestAccepted, httpPart: 'body', method: 'POST', url: '/v1/send-jobs' });

  app.post<{ Body: SendBody; Headers: { 'idempotency-key'?: string } }>(
    '/v1/send-jobs',
    {
      // Sends spend the send budget, not the API's per-minute request budget.
      config: { scope: 'send', rateBudget: 'send' },
      bodyLimit: SEND_BODY_LIMIT,
      validatorCompiler: (route) => (route.httpPart === 'body' ? validateSend() : app.validatorCompiler!(route)),
      schema: {
        summary: 'Submit send job (sending proxy)',
        security: [{ bearerAuth: [] }],
        headers: idempotencyHeader,
        body: SendRequest,
        response: { 200: SubmitSendJobResponse, ...errors(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      const result = await accept(request, request.body, request.headers['idempotency-key']);
      return { job_id: result.jobId, status: 'queued' as const };
    },
  );

  app.post<{ Body: { messages: unknown[] }; Headers: { 'idempotency-key'?: string } }>(
    '/v1/send-jobs/batch',
    {
      config: { scope: 'send' },
      bodyLimit: SEND_BODY_LIMIT,
      schema: {
        summary: 'Up to 100 different sends, each validated and accepted on its own: one invalid item does not stop the others',
        security: [{ bearerAuth: [] }],
        headers: idempotencyHeader,
        body: BatchRequest,
        response: { 200: BatchResponse, ...failures(400, 401, 403, 422) },
      },
    },
    async (request) => {
      const validate = validateSend() as ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string }> | null };
      const header = request.headers['idempotency-key'];
      const data = [];
      for (const [index, item] of request.body.messages.entries()) {
        try {
          if (!validate(item)) {
            const e = validate.errors?.[0];
            throw invalid(`messages/${index}${e?.instancePath ?? ''} ${e?.message ?? 'is invalid'}`);
          }
          const body = item as SendBody;
          const result = await accept(request, body, body.idempotency_key === undefined && header !== undefined ? `${header}:${index}` : undefined);
          data.push({ index, status: 'queued' as const, job_id: result.jobId });
        } catch (err) {
          if (err instanceof DomainError) data.push({ index, status: 'failed' as const, error: { status: DOMAIN_STATUS[err.kind], error: err.code, message: err.message } });
          else if (err instanceof HttpError) data.push({ index, status: 'failed' as const, error: { status: err.status, error: err.code, message: err.message } });
          else {
            // Ours, not the item's: the rest of the batch still goes on, and the item says so.
            request.log.error({ err, index }, 'batch item failed');
            data.push({ index, status: 'failed' as const, error: { status: 500, error: 'internal_error', message: 'internal error' } });
          }
        }
      }
      return { data };
    },
  );

  app.patch<{ Params: { id: string }; Body: { scheduled_at: string } }>(
    '/v1/messages/:id',
    {
      config: { scope: 'send' },
      schema: {
        summary: 'Move a scheduled message (still queued) to another time; 409 already_sent / not_scheduled otherwise',
        security: [{ bearerAuth: [] }],
        params: messageParam,
        body: RescheduleRequest,
        response: { 200: ScheduledMessage, ...failures(401, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      const moved = await rescheduleMessage(deps.db, request.principal.tenantId, request.params.id, request.body.scheduled_at);
      request.log.info({ message_id: moved.id, scheduled_at: moved.scheduled_at }, 'scheduled message moved');
      return moved;
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/messages/:id/cancel',
    {
      config: { scope: 'send' },
      schema: {
        summary: 'Cancel a scheduled message (still queued); 409 already_sent / already_cancelled / not_scheduled otherwise',
        security: [{ bearerAuth: [] }],
        params: messageParam,
        response: { 200: ScheduledMessage, ...failures(401, 403, 404, 409) },
      },
    },
    async (request) => {
      const cancelled = await cancelScheduledMessage(deps.db, request.principal.tenantId, request.params.id);
      request.log.info({ message_id: cancelled.id }, 'scheduled message cancelled');
      return cancelled;
    },
  );
}
