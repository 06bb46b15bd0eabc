import type { FastifyError } from 'fastify';

/** The first schema failure of a compat request, with the field it concerns in dotted form. */
export interface InvalidField {
  /** `personalizations.0.to`, `attachments`; '' for the whole body. */
  field: string;
  /** A property the engine does not know: a provider feature it cannot do, refused rather than dropped. */
  unsupported: boolean;
  message: string;
}

/** Ajv's first error, its field named (`must NOT have additional properties` alone names nothing). */
export function invalidField(err: FastifyError): InvalidField {
  const first = err.validation?.[0];
  if (!first) return { field: '', unsupported: false, message: err.message };
  const extra = (first.params as { additionalProperty?: string } | undefined)?.additionalProperty;
  const path = first.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const field = extra ? (path ? `${path}.${extra}` : extra) : path;
  if (extra) return { field, unsupported: true, message: `${field} is not supported by this engine` };
  return { field, unsupported: false, message: `${field || err.validationContext || 'body'} ${first.message ?? 'is invalid'}` };
}
