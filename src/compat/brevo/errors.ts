import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../../errors.ts';
import { HttpError } from '../../http/errors.ts';

/**
 * Brevo's error shape, `{code, message}`, with Brevo's codes so its SDK raises the error class it
 * would against Brevo. Beside them: `error` (our precise code, e.g. `attachment_type_refused`) and
 * `request_id` (also in the X-Request-Id header), which Brevo clients ignore.
 */
export class BrevoError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detail = code,
  ) {
    super(message);
  }
}

/** A request asked for something this engine does not do: Brevo's 400, naming the field. */
export const notSupported = (field: string, why: string) => new BrevoError(400, 'invalid_parameter', `${field} is not supported: ${why}`, 'not_supported');
export const missing = (field: string) => new BrevoError(400, 'missing_parameter', `${field} is missing`, 'missing_parameter');
export const invalidParameter = (message: string) => new BrevoError(400, 'invalid_parameter', message, 'invalid_parameter');

export const BrevoErrorBody = {
  $id: 'BrevoError',
  type: 'object',
  required: ['code', 'message'],
  properties: { code: { type: 'string' }, message: { type: 'string' }, error: { type: 'string' }, request_id: { type: 'string' } },
} as const;

/** Our codes that are Brevo's `duplicate_parameter` (something with that name or id exists). */
const DUPLICATES = /taken|exists|in_use|duplicate/;

function translate(err: Error): BrevoError {
  if (err instanceof BrevoError) return err;
  if (err instanceof DomainError) {
    switch (err.kind) {
      case 'not_found': return new BrevoError(404, 'document_not_found', err.message, err.code);
      case 'forbidden': return new BrevoError(403, 'permission_denied', err.message, err.code);
      case 'conflict': return new BrevoError(400, DUPLICATES.test(err.code) ? 'duplicate_parameter' : 'invalid_parameter', err.message, err.code);
      default: return new BrevoError(400, 'invalid_parameter', err.message, err.code);
    }
  }
  if (err instanceof HttpError) return fromStatus(err.status, err.message, err.code);
  const fastifyError = err as FastifyError;
  if (fastifyError.validation) {
    const v = fastifyError.validation[0];
    const at = `${fastifyError.validationContext ?? 'body'}${(v?.instancePath ?? '').replace(/\//g, '.')}`;
    if (v?.keyword === 'required') return missing(`${at}.${(v.params as { missingProperty: string }).missingProperty}`.replace(/^body\./, ''));
    if (v?.keyword === 'additionalProperties') {
      const field = (v.params as { additionalProperty: string }).additionalProperty;
      const why = field === 'name' ? 'display names are not sent here: give only email' : 'this engine has no such field (docs/compat/brevo.md)';
      return notSupported(`${at}.${field}`.replace(/^body\./, ''), why);
    }
    return invalidParameter(`${at.replace(/^body\.?/, '') || at} ${v?.message ?? 'is invalid'}`);
  }
  const status = fastifyError.statusCode;
  if (status && status >= 400 && status < 500) return fromStatus(status, fastifyError.message, 'bad_request');
  return new BrevoError(500, 'internal_error', 'internal error');
}

function fromStatus(status: number, message: string, detail: string): BrevoError {
  switch (status) {
    case 401: return new BrevoError(401, 'unauthorized', message, detail);
    case 403: return new BrevoError(403, 'permission_denied', message, detail);
    case 404: return new BrevoError(404, 'document_not_found', message, detail);
    case 405: return new BrevoError(405, 'method_not_allowed', message, detail);
    case 409: return new BrevoError(400, DUPLICATES.test(detail) ? 'duplicate_parameter' : 'duplicate_request', message, detail);
    case 429: return new BrevoError(429, 'too_many_requests', message, detail);
    case 503: return new BrevoError(503, 'service_unavailable', message, detail);
    case 413: case 415: return new BrevoError(status, 'bad_request', message, detail);
    default: return new BrevoError(400, status === 422 ? 'invalid_parameter' : 'bad_request', message, detail);
  }
}

export function brevoErrorHandler(err: Error, request: FastifyRequest, reply: FastifyReply) {
  const e = translate(err);
  if (e.status >= 500) request.log.error({ err }, 'unhandled error');
  if (err instanceof HttpError) reply.headers(err.headers);
  return reply.code(e.status).type('application/json').send({ code: e.code, message: e.message, error: e.detail, request_id: request.id });
}

/** Error responses of every Brevo route, in /openapi.json. */
export const brevoFailures = Object.fromEntries([400, 401, 403, 404, 429].map((s) => [s, BrevoErrorBody])) as Record<number, typeof BrevoErrorBody>;
