import { createRequire } from 'node:module';
import { invalid } from '../../errors.ts';

// libphonenumber-js's full metadata (several MB of heap) is loaded by the first phone number the
// engine checks, not by every engine that never sends SMS or WhatsApp (docs/operations.md#memory).
const require = createRequire(import.meta.url);
let parser: typeof import('libphonenumber-js/max').parsePhoneNumberFromString | undefined;
const parsePhoneNumberFromString = (input: string) =>
  (parser ??= (require('libphonenumber-js/max') as typeof import('libphonenumber-js/max')).parsePhoneNumberFromString)(input);

/** A recipient number in E.164 (`+` and country code), validated for its country's numbering plan. */
export function e164(input: string, field = 'to'): string {
  const parsed = /^\+[1-9]\d{6,14}$/.test(input) ? parsePhoneNumberFromString(input) : undefined;
  if (!parsed || !parsed.isValid()) throw invalid(`${field} must be a valid phone number in E.164 format (+ and country code)`, 'invalid_phone_number');
  return parsed.number;
}

/** Like e164, but undefined for what is not a valid number (inbound callbacks). */
export function e164OrUndefined(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined;
  const normalized = input.startsWith('+') ? input : `+${input}`;
  const parsed = /^\+[1-9]\d{6,14}$/.test(normalized) ? parsePhoneNumberFromString(normalized) : undefined;
  return parsed?.isValid() ? parsed.number : undefined;
}

/** Last four digits only, for logs. */
export function maskPhone(phone: string): string {
  return phone.length > 4 ? `${'*'.repeat(phone.length - 4)}${phone.slice(-4)}` : '****';
}
