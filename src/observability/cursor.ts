import { DomainError } from '../errors.ts';
import { isStorableText } from '../text.ts';

/**
 * Opaque keyset cursors: the sort key of the last row served, base64url JSON. Clients must not
 * parse them; a cursor that does not decode to the expected shape is a 422.
 */
export function encodeCursor(position: Record<string, string>): string {
  return Buffer.from(JSON.stringify({ v: 1, ...position })).toString('base64url');
}

/** What each position field of a cursor holds: checked on decoding, so SQL only ever casts valid values. */
export type CursorField = 'time' | 'uuid' | 'text';

const MALFORMED = 'malformed cursor: drop it and start from the first page';

export function decodeCursor<K extends string>(cursor: string | undefined, fields: Record<K, CursorField>): Record<K, string> | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const ok =
    parsed !== null &&
    typeof parsed === 'object' &&
    (parsed as { v?: unknown }).v === 1 &&
    (Object.entries(fields) as Array<[K, CursorField]>).every(([k, kind]) => {
      const value = (parsed as Record<string, unknown>)[k];
      return typeof value === 'string' && value.length <= 200 && isStorableText(value) && FIELD_CHECKS[kind](value);
    });
  if (!ok) throw new DomainError('invalid', 'validation_failed', MALFORMED);
  return parsed as Record<K, string>;
}

/** A timestamptz as PostgreSQL prints it, which round-trips with microseconds (JS Dates keep ms). */
const TIMESTAMP_TEXT = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(?:([+-])(\d{2})(?::?(\d{2}))?|Z)$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** TIMESTAMP_TEXT and a real instant: `2020-99-99 99:99:99Z` has the shape but PostgreSQL refuses it. */
export function isTimestampText(s: string): boolean {
  const m = TIMESTAMP_TEXT.exec(s);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return (
    year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth &&
    hour <= 23 && minute <= 59 && second <= 59 && (m[9] === undefined || Number(m[9]) <= 15) && (m[10] === undefined || Number(m[10]) <= 59)
  );
}

const FIELD_CHECKS: Record<CursorField, (s: string) => boolean> = { time: isTimestampText, uuid: (s) => UUID.test(s), text: () => true };

export interface Window {
  from: Date;
  to: Date;
}

const DAY_MS = 86_400_000;

/** `from`/`to` as RFC 3339; the default window is the trailing 30 days. */
export function resolveWindow(from: string | undefined, to: string | undefined, defaultDays = 30): Window {
  const parse = (name: string, value: string) => {
    const d = new Date(value);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(d.getTime())) {
      throw new DomainError('invalid', 'validation_failed', `${name} must be an RFC 3339 timestamp`);
    }
    return d;
  };
  const end = to ? parse('to', to) : new Date();
  const start = from ? parse('from', from) : new Date(end.getTime() - defaultDays * DAY_MS);
  if (start > end) throw new DomainError('invalid', 'validation_failed', 'from must not be after to');
  return { from: start, to: end };
}
