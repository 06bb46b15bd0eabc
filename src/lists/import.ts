import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { fullFormats } from 'ajv-formats/dist/formats.js';
import type { Db, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { DomainError } from '../errors.ts';
import { newId } from '../ids.ts';
import { findUnstorableText, isStorableText } from '../text.ts';
import { listForWrite, writeContacts, type ContactInput, type PendingHandler } from './contacts.ts';

/**
 * Bulk contact imports: CSV (a header row; `email`, `first_name`, `last_name`, `subscribed`, every
 * other column a property) or JSON lines (one ContactInput per line), streamed from the request
 * into set-based upserts of IMPORT_BATCH rows (src/lists/contacts.ts writeContacts): never the
 * whole file in memory. The import is one transaction (all or nothing); its progress row is
 * written beside it, autocommitted per batch, so GET /v1/imports/{id} shows it while it runs.
 */

/** Mirrored by the CHECK on contact_imports.status (migration 019). */
export const IMPORT_STATUSES = ['running', 'completed', 'failed'] as const;
export type ImportStatus = (typeof IMPORT_STATUSES)[number];
export type ImportFormat = 'csv' | 'jsonl';

export const IMPORT_BATCH = 5_000;
const MAX_FIELD = 1_000;
const EMAIL = fullFormats.email as RegExp;
const KNOWN = new Set(['email', 'first_name', 'last_name', 'subscribed', 'properties']);

export interface ImportView {
  id: string;
  list_id: string;
  format: ImportFormat;
  status: ImportStatus;
  rows_received: number;
  rows_invalid: number;
  created: number;
  updated: number;
  kept_unsubscribed: number;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

const isText = (v: unknown): v is string => typeof v === 'string' && v.length <= MAX_FIELD && isStorableText(v);
const optionalText = (v: unknown) => v === undefined || v === null || v === '' || isText(v);

/** A row as a contact, or undefined when it cannot be one (counted invalid, the import goes on). */
export function toContact(row: Record<string, unknown>): ContactInput | undefined {
  const email = typeof row.email === 'string' ? row.email.trim() : '';
  if (email.length > 254 || !EMAIL.test(email) || !isStorableText(email)) return undefined;
  if (!optionalText(row.first_name) || !optionalText(row.last_name)) return undefined;
  let subscribed: boolean | undefined;
  const s = row.subscribed;
  if (typeof s === 'boolean') subscribed = s;
  else if (typeof s === 'string' && s !== '') {
    if (/^(true|1|yes)$/i.test(s)) subscribed = true;
    else if (/^(false|0|no)$/i.test(s)) subscribed = false;
    else return undefined;
  } else if (s !== undefined && s !== null && s !== '') return undefined;
  let properties: Record<string, unknown> = {};
  if (row.properties !== undefined) {
    if (typeof row.properties !== 'object' || row.properties === null || Array.isArray(row.properties)) return undefined;
    properties = row.properties as Record<string, unknown>;
    if (findUnstorableText(properties) !== undefined || JSON.stringify(properties).length > 64 * 1024) return undefined;
  }
  // CSV: every other column is a property.
  for (const [k, v] of Object.entries(row)) {
    if (KNOWN.has(k) || v === '' || v === undefined) continue;
    if (!isText(k) || !isText(v)) return undefined;
    properties[k] = v;
  }
  const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  return { email, first_name: text(row.first_name), last_name: text(row.last_name), properties, subscribed };
}

/** The request body as records: CSV through csv-parse, JSON lines through readline; both streamed. */
async function* records(body: Readable, format: ImportFormat): AsyncGenerator<Record<string, unknown> | undefined> {
  if (format === 'csv') {
    const parser = body.pipe(parse({ columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()), bom: true, skip_empty_lines: true, trim: true, relax_column_count: true, max_record_size: 64 * 1024 }));
    body.on('error', (err) => parser.destroy(err));
    for await (const record of parser) yield record as Record<string, unknown>;
    return;
  }
  const lines = createInterface({ input: body, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    if (line.length > 64 * 1024) {
      yield undefined;
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = undefined;
    }
    yield value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  }
}

/** Registers the import (autocommitted, so its progress is readable at once). */
export async function startImport(db: Db, tenantId: string, listId: string, format: ImportFormat): Promise<string> {
  const id = newId();
  await withTransaction(db, async (tx) => {
    await listForWrite(tx, tenantId, listId);
    await tx.query(`INSERT INTO contact_imports (id, tenant_id, list_id, format, status) VALUES ($1, $2, $3, $4, 'running')`, [id, tenantId, listId, format]);
  });
  return id;
}

/**
 * Streams the body into the list. Returns the finished import; a body that cannot be read as its
 * format (malformed CSV) rolls the contacts back and marks the import failed with the reason.
 * `onPending` receives the contacts a double opt-in list created pending, in the same
 * transaction (their confirmation messages are queued with them).
 */
export async function runImport(
  db: Db,
  tenantId: string,
  importId: string,
  listId: string,
  format: ImportFormat,
  body: Readable,
  onPending?: PendingHandler,
): Promise<ImportView> {
  const progress = { rows_received: 0, rows_invalid: 0, created: 0, updated: 0, kept_unsubscribed: 0 };
  const report = () =>
    db.query(
      `UPDATE contact_imports SET rows_received = $2, rows_invalid = $3, created = $4, updated = $5, kept_unsubscribed = $6 WHERE id = $1`,
      [importId, progress.rows_received, progress.rows_invalid, progress.created, progress.updated, progress.kept_unsubscribed],
    );
  try {
    await withTransaction(db, async (tx) => {
      const { doubleOptIn } = await listForWrite(tx, tenantId, listId);
      let batch: ContactInput[] = [];
      const flush = async () => {
        if (!batch.length) return;
        const r = await writeContacts(tx, tenantId, listId, JSON.stringify(batch), { doubleOptIn: doubleOptIn !== null, mode: 'upsert' });
        if (doubleOptIn && onPending && r.pending.length) await onPending(tx, doubleOptIn, r.pending);
        progress.created += r.created;
        progress.updated += r.updated;
        progress.kept_unsubscribed += r.kept_unsubscribed;
        batch = [];
        await report();
      };
      for await (const record of records(body, format)) {
        progress.rows_received++;
        const contact = record && toContact(record);
        if (!contact) progress.rows_invalid++;
        else batch.push(contact);
        if (batch.length >= IMPORT_BATCH) await flush();
      }
      await flush();
      await tx.query(
        `UPDATE contact_imports SET status = 'completed', rows_received = $2, rows_invalid = $3, created = $4, updated = $5, kept_unsubscribed = $6, finished_at = now() WHERE id = $1`,
        [importId, progress.rows_received, progress.rows_invalid, progress.created, progress.updated, progress.kept_unsubscribed],
      );
    });
  } catch (err) {
    if (err instanceof DomainError && err.kind !== 'invalid') throw err;
    const reason = err instanceof DomainError ? err.message : `the body is not valid ${format === 'csv' ? 'CSV' : 'JSON lines'}: ${(err as Error).message.split('\n')[0]}`;
    await db.query(`UPDATE contact_imports SET status = 'failed', error = $2, created = 0, updated = 0, kept_unsubscribed = 0, finished_at = now() WHERE id = $1`, [importId, reason.slice(0, 500)]);
  }
  return (await getImport(db, tenantId, importId))!;
}

const IMPORT_SELECT = `SELECT i.* FROM contact_imports i JOIN lists l ON l.tenant_id = i.tenant_id AND l.id = i.list_id AND l.deleted_at IS NULL`;

export async function getImport(db: Queryable, tenantId: string, id: string): Promise<ImportView | null> {
  const { rows } = await db.query(`${IMPORT_SELECT} WHERE i.tenant_id = $1 AND i.id = $2`, [tenantId, id]);
  return rows[0] ? importView(rows[0]) : null;
}

/** A list's newest import (the dashboard follows the one its upload is running; index contact_imports_tenant). */
export async function latestImport(db: Queryable, tenantId: string, listId: string): Promise<ImportView | null> {
  const { rows } = await db.query(`${IMPORT_SELECT} WHERE i.tenant_id = $1 AND i.list_id = $2 ORDER BY i.created_at DESC, i.id DESC LIMIT 1`, [tenantId, listId]);
  return rows[0] ? importView(rows[0]) : null;
}

function importView(r: Record<string, any>): ImportView {
  return {
    id: r.id, list_id: r.list_id, format: r.format, status: r.status, rows_received: r.rows_received, rows_invalid: r.rows_invalid,
    created: r.created, updated: r.updated, kept_unsubscribed: r.kept_unsubscribed, error: r.error,
    created_at: r.created_at.toISOString(), finished_at: r.finished_at?.toISOString() ?? null,
  };
}
