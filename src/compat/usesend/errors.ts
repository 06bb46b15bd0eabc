import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../../errors.ts';
import { HttpError } from '../../http/errors.ts';
import { invalidField } from '../fields.ts';

/** useSend's error codes (its `{error: {code, message}}` body), by HTTP status. */
const CODES: Record<number, string> = {
  400: 'BAD_REQUEST', 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND', 405: 'METHOD_NOT_SUPPORTED',
  409: 'CONFLICT', 413: 'PAYLOAD_TOO_LARGE', 415: 'BAD_REQUEST', 422: 'UNPROCESSABLE_CONTENT', 429: 'TOO_MANY_REQUESTS',
  500: 'INTERNAL_SERVER_ERROR',
};
const DOMAIN_STATUS: Record<DomainError['kind'], number> = { invalid: 422, conflict: 409, forbidden: 403, not_found: 404 };

/** A request useSend's API would refuse with 400 (its zod validation): the field named. */
export const badRequest = (message: string, reason = 'validation_error') => new HttpError(400, reason, message);

function send(request: FastifyRequest, reply: FastifyReply, status: number, reason: string, message: string, headers: Record<string, string> = {}) {
  // `code` is useSend's; `reason` our specific code (the native API's `error`); the id also in X-Request-Id.
  const code = reason === 'idempotency_conflict' ? 'NOT_UNIQUE' : CODES[status] ?? (status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST');
  return reply.code(status).headers(headers).type('application/json').send({ error: { code, message, reason }, request_id: request.id });
}

export function useSendErrorHandler(err: FastifyError | HttpError | DomainError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (err instanceof HttpError) return send(request, reply, err.status, err.code, err.message, err.headers);
  if (err instanceof DomainError) return send(request, reply, DOMAIN_STATUS[err.kind], err.code, err.message);
  const fastifyError = err as FastifyError;
  if (fastifyError.validation) return send(request, reply, 400, 'validation_error', invalidField(fastifyError).message);
  const status = fastifyError.statusCode;
  if (status && status >= 400 && status < 500) return send(request, reply, status, 'bad_request', fastifyError.message);
  request.log.error({ err }, 'unhandled error');
  return send(request, reply, 500, 'internal_error', 'internal error');
}

export function useSendNotFound(request: FastifyRequest, reply: FastifyReply) {
  return send(request, reply, 404, 'not_found', `route ${request.method} ${request.url.split('?')[0]} not found`);
}
