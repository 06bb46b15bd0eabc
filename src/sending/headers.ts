import { invalid } from '../errors.ts';

/**
 * Headers the engine sets itself, or that would change who receives or how the message is read;
 * a caller may not set them through `headers`.
 */
const RESERVED = new Set([
  'from', 'to', 'cc', 'bcc', 'subject', 'date', 'message-id', 'sender', 'return-path', 'received',
  'mime-version', 'content-type', 'content-transfer-encoding', 'content-disposition',
  'dkim-signature', 'list-unsubscribe', 'list-unsubscribe-post', 'x-send-engine-message-id',
]);

// RFC 5322 field-name: printable US-ASCII except colon.
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]{1,76}$/;

export function validateCustomHeaders(headers: Record<string, string>) {
  const names = Object.keys(headers);
  if (names.length > 50) throw invalid('at most 50 custom headers');
  for (const name of names) {
    if (!FIELD_NAME.test(name)) throw invalid(`header name "${name.replace(/[^\x20-\x7e]/g, '?')}" is not a valid RFC 5322 field name`);
    if (RESERVED.has(name.toLowerCase())) throw invalid(`header "${name}" is set by the engine and may not be given`);
    const value = headers[name];
    if (/[\r\n\0]/.test(value)) throw invalid(`header "${name}" value must not contain CR, LF or NUL`);
    if (value.length > 998) throw invalid(`header "${name}" value is longer than 998 characters`);
  }
}
