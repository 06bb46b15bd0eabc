import { invalid } from '../errors.ts';
import { printable } from '../text.ts';

/**
 * Headers the engine sets itself, or that would change who receives or how the message is read;
 * a caller may not set them through `headers`.
 */
const RESERVED = new Set([
  'from', 'to', 'cc', 'bcc', 'subject', 'date', 'message-id', 'sender',
  'mime-version', 'content-type', 'content-transfer-encoding', 'content-disposition',
  'list-unsubscribe', 'list-unsubscribe-post', 'x-send-engine-message-id',
]);

/**
 * Trace and authentication headers (RFC 5321 §4.4, RFC 8601, RFC 7208, RFC 6376, RFC 8617): written
 * by the MTAs and verifiers a message passes through, never by its sender, who could otherwise
 * forge a verdict a receiver or a filter trusts.
 */
const TRACE = new Set(['return-path', 'received', 'received-spf', 'authentication-results', 'dkim-signature', 'domainkey-signature', 'delivered-to']);
const TRACE_PREFIXES = ['resent-', 'arc-'];

// RFC 5322 field-name: printable US-ASCII except colon.
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]{1,76}$/;
/** Control characters (all but HTAB, which is folding white space): refused in any header value. */
const HEADER_CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/**
 * A header value as the caller gave it (a custom header, the subject): no control characters.
 * Refused rather than encoded: CR/LF would start a new header, and the others are almost always a
 * bug upstream that an RFC 2047 word would only hide.
 */
export function validateHeaderValue(name: string, value: string) {
  const control = HEADER_CONTROL.exec(value);
  if (control) throw invalid(`header "${name}" value contains the control character ${printable(control[0])}`, 'invalid_header_value');
  if (value.length > 998) throw invalid(`header "${name}" value is longer than 998 characters`, 'invalid_header_value');
}

/** For values rendered per recipient (a template's subject), after the API checks: controls become spaces. */
export const headerSafe = (value: string) => value.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, ' ');

export function validateCustomHeaders(headers: Record<string, string>) {
  const names = Object.keys(headers);
  if (names.length > 50) throw invalid('at most 50 custom headers');
  for (const name of names) {
    if (!FIELD_NAME.test(name)) throw invalid(`header name "${printable(name).replace(/[^\x20-\x7e]/g, '?')}" is not a valid RFC 5322 field name`, 'invalid_header_name');
    const lower = name.toLowerCase();
    if (RESERVED.has(lower)) throw invalid(`header "${name}" is set by the engine and may not be given`, 'reserved_header');
    if (TRACE.has(lower) || TRACE_PREFIXES.some((p) => lower.startsWith(p))) {
      throw invalid(`header "${name}" is a trace or authentication header, written by the servers a message passes through`, 'trace_header');
    }
    validateHeaderValue(name, headers[name]);
  }
}
