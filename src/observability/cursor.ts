import { DomainError } from '../errors.ts';

/**
 * Opaque keyset cursors: the sort key of the last row served, base64url JSON. Clients must not
 * parse them; a cursor that does not decode to the expected shape is a 422.
 */
export function encodeCursor(position: Record<string, string>): string {
  return Buffer.from(JSON.stringify({ v: 1, ...position })).toString('base64url');
}

export function decodeCursor<K extends string>(cursor: string | undefined, keys: readonly K[]): Record<K, string> | undefined {
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
    keys.every((k) => typeof (parsed as Record<string, unknown>)[k] === 'string' && ((parsed as Record<string, string>)[k]).length <= 200);
  if (!ok) throw new DomainError('invalid', 'validation_failed', 'malformed cursor: drop it and start from the first page');
  return parsed as Record<K, string>;
}

/** A timestamptz as PostgreSQL prints it, which round-trips with microseconds (JS Dates keep ms). */
export const TIMESTAMP_TEXT = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}(:?\d{2})?|Z)$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
