import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../../errors.ts';
import { HttpError } from '../../http/errors.ts';
import { invalidField } from '../fields.ts';

/**
 * SendGrid's v3 error body: `{errors: [{message, field, help}]}`. SendGrid answers a request it will
 * not send with 400 whatever the reason, so our 409 and 422 become 400 (our code stays in `reason`).
 */
export class SendGridError extends Error {
  constructor(
    readonly field: string | null,
    message: string,
    readonly reason = 'validation_error',
    readonly status = 400,
  ) {
    super(message);
  }
}

/** A SendGrid feature the engine does not have: refused, naming the field, never dropped. */
export const unsupported = (field: string, what = field) => new SendGridError(field, `${what} is not supported by this engine`, 'unsupported_field');

const HELP = 'https://github.com/send-engine/send-engine/blob/main/docs/compat/sendgrid.md';

/** The field a domain error concerns, where our code says it. */
const FIELD_OF: Record<string, string> = {
  domain_not_verified: 'from.email', attachment_too_large: 'attachments', attachment_type_refused: 'attachments', invalid_attachment: 'attachments',
  template_error: 'template_id', missing_variable: 'personalizations.dynamic_template_data', scheduled_too_far: 'send_at', invalid_header_value: 'headers', invalid_header_name: 'headers', reserved_header: 'headers',
};

const statusOf = (status: number) => (status === 409 || status === 422 ? 400 : status);

function send(request: FastifyRequest, reply: FastifyReply, status: number, field: string | null, message: string, reason: string, headers: Record<string, string> = {}) {
  return reply.code(statusOf(status)).headers(headers).type('application/json').send({ errors: [{ message, field, help: HELP, reason }], request_id: request.id });
}

export function sendGridErrorHandler(err: FastifyError | HttpError | DomainError | SendGridError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (err instanceof SendGridError) return send(request, reply, err.status, err.field, err.message, err.reason);
  if (err instanceof HttpError) {
    // SendGrid's 401 names the Authorization header as the field.
    return send(request, reply, err.status, err.status === 401 ? 'authorization' : null, err.message, err.code, err.headers);
  }
  if (err instanceof DomainError) {
    const status = { invalid: 400, conflict: 400, forbidden: 403, not_found: 404 }[err.kind];
    // A stored template that is not there: SendGrid answers 400 naming template_id.
    if (err.kind === 'not_found') return send(request, reply, 400, 'template_id', err.message, err.code);
    return send(request, reply, status, FIELD_OF[err.code] ?? null, err.message, err.code);
  }
  const fastifyError = err as FastifyError;
  if (fastifyError.validation) {
    const invalid = invalidField(fastifyError);
    return send(request, reply, 400, invalid.field || null, invalid.message, invalid.unsupported ? 'unsupported_field' : 'validation_error');
  }
  const status = fastifyError.statusCode;
  if (status && status >= 400 && status < 500) return send(request, reply, status, null, fastifyError.message, 'bad_request');
  request.log.error({ err }, 'unhandled error');
  return send(request, reply, 500, null, 'internal error', 'internal_error');
}

export function sendGridNotFound(request: FastifyRequest, reply: FastifyReply) {
  return send(request, reply, 404, null, `route ${request.method} ${request.url.split('?')[0]} not found: this engine serves POST /v3/mail/send`, 'not_found');
}
