import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../errors.ts';

/** An error whose status and code are meant for the client. Anything else answers 500. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new HttpError(400, 'bad_request', message);
export const unauthorized = (message: string) =>
  new HttpError(401, 'unauthorized', message, { 'WWW-Authenticate': 'Bearer' });
export const forbidden = (message: string) => new HttpError(403, 'forbidden', message);
export const notFound = (message = 'not found') => new HttpError(404, 'not_found', message);
export const conflict = (code: string, message: string) => new HttpError(409, code, message);
export const unprocessable = (message: string, code = 'validation_error') => new HttpError(422, code, message);

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 422: 'Unprocessable Entity',
  429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

/** RFC 7807 `type` per status, in the SendOps reference's taxonomy: clients switch on it. */
const PROBLEM_TYPES: Record<number, string> = {
  400: 'invalid_request', 401: 'unauthenticated', 403: 'permission_denied', 404: 'not_found', 405: 'invalid_request',
  409: 'conflict', 413: 'invalid_request', 415: 'invalid_request', 422: 'validation_failed', 429: 'rate_limit',
  500: 'internal_error', 503: 'service_unavailable',
};
export const PROBLEM_TYPE_BASE = 'https://send-engine.dev/problems/';

/**
 * One body for every error: the contract's `{error, message, request_id}` and, beside them, the
 * RFC 7807 problem fields the observability API's reference uses (`type`, `title`, `status`,
 * `detail`, `instance`). `error` stays the specific code; `type` is the stable class.
 */
export function errorBody(request: FastifyRequest, status: number, code: string, message: string) {
  return {
    error: code,
    message,
    request_id: request.id,
    type: PROBLEM_TYPE_BASE + (PROBLEM_TYPES[status] ?? (status >= 500 ? 'internal_error' : 'invalid_request')),
    title: TITLES[status] ?? 'Error',
    status,
    detail: message,
    instance: request.url.split('?')[0],
  };
}

/**
 * The contract's operations declare `application/json` errors; the read API modelled on SendOps
 * (every other /v1/ path) answers `application/problem+json` as its reference does. Same body.
 */
export function errorContentType(request: FastifyRequest): string {
  const path = request.url.split('?')[0];
  return path.startsWith('/v1/') && !path.startsWith('/v1/send-jobs') ? 'application/problem+json' : 'application/json';
}

export function sendError(request: FastifyRequest, reply: FastifyReply, err: HttpError) {
  return reply.code(err.status).headers(err.headers).type(errorContentType(request)).send(errorBody(request, err.status, err.code, err.message));
}

const DOMAIN_STATUS: Record<DomainError['kind'], number> = { invalid: 422, conflict: 409, forbidden: 403, not_found: 404 };
const CLIENT_ERROR_CODES: Record<number, string> = {
  404: 'not_found', 405: 'method_not_allowed', 413: 'payload_too_large', 415: 'unsupported_media_type',
};

/** The client-facing status and code of a thrown error; undefined for an internal error (a 500). */
export function clientError(err: FastifyError | HttpError | Error): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof DomainError) return new HttpError(DOMAIN_STATUS[err.kind], err.code, err.message);
  const fastifyError = err as FastifyError;
  if (fastifyError.validation) return unprocessable(fastifyError.message);
  const status = fastifyError.statusCode;
  if (status && status >= 400 && status < 500) return new HttpError(status, CLIENT_ERROR_CODES[status] ?? 'bad_request', fastifyError.message);
  return undefined;
}

/** Maps every thrown error to the error body; schema failures are 422 as the contract says. */
export function errorHandler(err: FastifyError | HttpError | Error, request: FastifyRequest, reply: FastifyReply) {
  const known = clientError(err);
  if (known) return sendError(request, reply, known);
  request.log.error({ err }, 'unhandled error');
  return sendError(request, reply, new HttpError(500, 'internal_error', 'internal error'));
}
