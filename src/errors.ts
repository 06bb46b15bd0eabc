/**
 * Errors the domain raises for a caller's mistake. The HTTP layer maps each kind to a status
 * (invalid 422, conflict 409, forbidden 403, not_found 404); modules below http/ never know HTTP.
 */
export class DomainError extends Error {
  constructor(
    readonly kind: 'invalid' | 'conflict' | 'forbidden' | 'not_found',
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const invalid = (message: string, code = 'validation_error') => new DomainError('invalid', code, message);
