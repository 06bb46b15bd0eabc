import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { Parser, type Options } from 'csv-parse';
import { fullFormats } from 'ajv-formats/dist/formats.js';
import type pg from 'pg';
import type { Db, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { DomainError } from '../errors.ts';
import { newId } from '../ids.ts';
import { findUnstorableText, isStorableText } from '../text.ts';
import { listForWrite, type ContactInput, type PendingHandler } from './contacts.ts';
import { OPT_OUT_CTES, OPT_OUT_STANDS } from './opt-out.ts';

/**
 * Bulk contact imports: CSV (a header row; `email`, `first_name`, `last_name`, `subscribed`, every
 * other column a property) or JSON lines (one ContactInput per line), streamed from the request
 * into set-based writes of IMPORT_BATCH rows (IMPORT_CHUNK_SQL, the rules of writeContacts in
 * src/lists/contacts.ts): never the whole file in memory. The import is one transaction (all or nothing); its progress row is
 * written beside it, autocommitted per batch, so GET /v1/imports/{id} shows it while it runs.
 */

/** Mirrored by the CHECK on contact_imports.status (migration 019). */
export const IMPORT_STATUSES = ['running', 'completed', 'failed'] as const;
export type ImportStatus = (typeof IMPORT_STATUSES)[number];
export type ImportFormat = 'csv' | 'jsonl';

export const IMPORT_BATCH = 5_000;
/**
 * Rows checked between turns of the event loop (about 2 ms), so the database is not kept waiting on
 * this process: node-pg sends a chunk's next statement only from the previous one's reply. Every
 * 1,000 rows: 47,820-49,817 new contacts/s in the bench; every 200: 50,462-53,263 (same runs).
 */
const YIELD_EVERY = 200;
/** How many invalid rows an import lists with their line numbers (rows_invalid counts them all). */
export const MAX_INVALID_REPORTED = 100;
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
  /** The first MAX_INVALID_REPORTED invalid rows: line in the file (where the row ends) and why. */
  invalid_rows: InvalidRow[];
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

export interface InvalidRow {
  line: number;
  reason: string;
}

const isText = (v: unknown): v is string => typeof v === 'string' && v.length <= MAX_FIELD && isStorableText(v);
const optionalText = (v: unknown) => v === undefined || v === null || v === '' || isText(v);

/** A row as a contact, or why it cannot be one (counted invalid, the import goes on). */
export function toContact(row: Record<string, unknown>): ContactInput | string {
  const email = typeof row.email === 'string' ? row.email.trim() : '';
  if (email.length > 254 || !EMAIL.test(email) || !isStorableText(email)) return 'email is missing or not a valid address';
  if (!optionalText(row.first_name) || !optionalText(row.last_name)) return `first_name and last_name must be text of at most ${MAX_FIELD} characters`;
  let subscribed: boolean | undefined;
  const s = row.subscribed;
  const badSubscribed = 'subscribed must be true, false, 1, 0, yes or no';
  if (typeof s === 'boolean') subscribed = s;
  else if (typeof s === 'string' && s !== '') {
    if (/^(true|1|yes)$/i.test(s)) subscribed = true;
    else if (/^(false|0|no)$/i.test(s)) subscribed = false;
    else return badSubscribed;
  } else if (s !== undefined && s !== null && s !== '') return badSubscribed;
  let properties: Record<string, unknown> = {};
  if (row.properties !== undefined) {
    const bad = 'properties must be an object of at most 64 KiB of storable text';
    if (typeof row.properties !== 'object' || row.properties === null || Array.isArray(row.properties)) return bad;
    properties = row.properties as Record<string, unknown>;
    if (findUnstorableText(properties) !== undefined || JSON.stringify(properties).length > 64 * 1024) return bad;
  }
  // CSV: every other column is a property.
  for (const [k, v] of Object.entries(row)) {
    if (KNOWN.has(k) || v === '' || v === undefined) continue;
    if (!isText(k) || !isText(v)) return `column ${isText(k) ? k : '(unnamed)'} must be text of at most ${MAX_FIELD} characters`.slice(0, 200);
    properties[k] = v;
  }
  const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  return { email, first_name: text(row.first_name), last_name: text(row.last_name), properties, subscribed };
}

/** A row of the file: the line it ends on (1-based), and the record, or why the line is no record. */
interface Row {
  line: number;
  record: Record<string, unknown> | string;
}

/**
 * csv-parse handing over its records in batches of IMPORT_BATCH. A record is taken as the parser
 * pushes it, so `info.lines` is then the line it ends on: the parser's `info: true` option would
 * copy its whole info into every record, about a third of the parse's cost. The first record is
 * the header (trimmed, lower-cased), which names the fields of the others.
 */
class CsvBatches extends Parser {
  private header: string[] | undefined;
  private batch: Row[] = [];

  constructor() {
    // One batch waits to be read at most: parsing pauses until the import takes it.
    super({ bom: true, skip_empty_lines: true, trim: true, relax_column_count: true, max_record_size: 64 * 1024, readableHighWaterMark: 1 } as Options);
  }

  override push(fields: unknown): boolean {
    if (fields === null) {
      if (this.batch.length) super.push(this.batch);
      return super.push(null);
    }
    const values = fields as string[];
    if (!this.header) {
      this.header = values.map((h) => h.trim().toLowerCase());
      return true;
    }
    // As csv-parse's `columns`: fields beyond the header are dropped, a repeated name keeps the last.
    const record: Record<string, unknown> = {};
    for (let i = 0; i < this.header.length && i < values.length; i++) record[this.header[i]] = values[i];
    this.batch.push({ line: this.info.lines, record });
    if (this.batch.length >= IMPORT_BATCH) {
      super.push(this.batch);
      this.batch = [];
    }
    return true;
  }
}

/** The request body as batches of IMPORT_BATCH rows: CSV through csv-parse, JSON lines through readline; both streamed. */
async function* rowBatches(body: Readable, format: ImportFormat): AsyncGenerator<Row[]> {
  if (format === 'csv') {
    const parser = body.pipe(new CsvBatches());
    body.on('error', (err) => parser.destroy(err));
    yield* parser;
    return;
  }
  const lines = createInterface({ input: body, crlfDelay: Infinity });
  let n = 0;
  let batch: Row[] = [];
  for await (const line of lines) {
    n++;
    if (!line.trim()) continue;
    if (line.length > 64 * 1024) batch.push({ line: n, record: 'the line is longer than 64 KiB' });
    else {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        value = undefined;
      }
      batch.push({ line: n, record: value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : 'not a JSON object' });
    }
    if (batch.length >= IMPORT_BATCH) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
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

/** The import's staging table: one chunk of valid rows at a time, COPY'd in, truncated after. */
const STAGING_DDL = `CREATE TEMP TABLE import_rows (
  ord int NOT NULL, id uuid NOT NULL, email text NOT NULL, first_name text, last_name text, properties jsonb NOT NULL, subscribed boolean
) ON COMMIT DROP`;

/** A membership row asking for a change (`x` the chunk's row, `m` the membership): see writeContacts. */
const MEMBER_CHANGES = (m: string) =>
  `((x.subscribed AND ${m}.status = 'unsubscribed' AND NOT (${OPT_OUT_STANDS.replace('m.', `${m}.`)})) OR (NOT x.subscribed AND ${m}.status = 'pending'))`;

/**
 * One chunk of import_rows into the list, set-based, rows deduplicated by address (last wins), with
 * the rules of writeContacts (src/lists/contacts.ts): new addresses are plain INSERTs (ids minted in
 * Node, no ON CONFLICT: the import holds the list's lock exclusively, so no writer adds an address
 * meanwhile); existing ones update names (kept unless given) and properties (merged), and are not
 * rewritten when that changes nothing; a membership changes only when asked to (re-)subscribe with
 * no opt-out standing, or to unsubscribe while pending. Engine opt-outs (subscribed=false on an
 * active contact) follow in IMPORT_OPT_OUT_SQL.
 *
 * Every read of subscribers and list_members is an index lookup by construction (LATERAL ... LIMIT
 * 1, or `= ANY` of the chunk's ids): the planner's statistics cannot know how many contacts the list
 * has (this very transaction may have added them all), and with them it chose to scan the whole
 * list for every chunk, quadratic in the list's size.
 * $1 tenant, $2 list, $3 double opt-in, $4 source id of the memberships written.
 */
const IMPORT_CHUNK_SQL = `
WITH input AS (
  -- Sorted bytewise ("C"): the same groups (equality is bytewise in every deterministic collation), sorted at half the cost.
  SELECT DISTINCT ON (lower(r.email) COLLATE "C") r.id, r.email, r.first_name, r.last_name, r.properties, r.subscribed
    FROM import_rows r ORDER BY lower(r.email) COLLATE "C", r.ord DESC
), matched AS MATERIALIZED (
  SELECT i.*, s.id AS existing_id, m.status, m.opted_out_at
    FROM input i
    LEFT JOIN LATERAL (SELECT s.id FROM subscribers s WHERE s.tenant_id = $1 AND s.list_id = $2 AND lower(s.email) = lower(i.email) LIMIT 1) s ON true
    -- The membership matters only to rows asking to subscribe or unsubscribe.
    LEFT JOIN LATERAL (SELECT m.status, m.opted_out_at FROM list_members m
                        WHERE i.subscribed IS NOT NULL AND m.tenant_id = $1 AND m.list_id = $2 AND m.subscriber_id = s.id LIMIT 1) m ON true
), subs_new AS (
  INSERT INTO subscribers (tenant_id, id, list_id, email, status, updated_at, first_name, last_name, properties)
  SELECT $1, x.id, $2, x.email, 'active', now(), x.first_name, x.last_name, x.properties FROM matched x WHERE x.existing_id IS NULL
), subs_updated AS (
  UPDATE subscribers s
     SET first_name = coalesce(x.first_name, s.first_name), last_name = coalesce(x.last_name, s.last_name),
         properties = s.properties || x.properties, updated_at = now()
    FROM matched x
   WHERE s.tenant_id = $1 AND s.id = ANY (ARRAY(SELECT existing_id FROM matched WHERE existing_id IS NOT NULL)) AND s.id = x.existing_id
     AND (s.first_name, s.last_name, s.properties) IS DISTINCT FROM (coalesce(x.first_name, s.first_name), coalesce(x.last_name, s.last_name), s.properties || x.properties)
), members_new AS (
  INSERT INTO list_members (tenant_id, list_id, subscriber_id, status, reason, source_id, status_at)
  SELECT $1, $2, x.id, CASE WHEN x.subscribed IS FALSE THEN 'unsubscribed' WHEN $3 THEN 'pending' ELSE 'active' END,
         -- 'api.subscribe' marks rows asking to be subscribed, as writeContacts does.
         CASE WHEN x.subscribed IS TRUE THEN 'api.subscribe' ELSE 'api' END, $4, now()
    FROM matched x WHERE x.existing_id IS NULL
), members_changed AS (
  UPDATE list_members m
     SET status = CASE WHEN x.subscribed IS FALSE THEN 'unsubscribed' WHEN $3 THEN 'pending' ELSE 'active' END,
         reason = CASE WHEN x.subscribed IS TRUE THEN 'api.subscribe' ELSE 'api' END, source_id = $4,
         status_at = greatest(now(), m.status_at), updated_at = now()
    FROM matched x
   WHERE m.tenant_id = $1 AND m.list_id = $2
     AND m.subscriber_id = ANY (ARRAY(SELECT x.existing_id FROM matched x WHERE x.existing_id IS NOT NULL AND ${MEMBER_CHANGES('x')}))
     AND m.subscriber_id = x.existing_id AND ${MEMBER_CHANGES('m')}
  RETURNING m.subscriber_id, m.status, x.email
)
SELECT (SELECT count(*) FROM matched WHERE existing_id IS NULL)::int AS created,
       (SELECT count(*) FROM matched WHERE existing_id IS NOT NULL)::int AS updated,
       (SELECT count(*) FROM matched m WHERE m.existing_id IS NOT NULL AND m.subscribed IS TRUE AND ${OPT_OUT_STANDS})::int AS kept_unsubscribed,
       -- New contacts of a double opt-in list are pending unless they asked to unsubscribe.
       CASE WHEN $3 THEN (
         SELECT jsonb_agg(jsonb_build_object('id', p.id, 'email', p.email)) FROM (
           SELECT x.id, x.email FROM matched x WHERE x.existing_id IS NULL AND x.subscribed IS NOT FALSE
           UNION ALL SELECT subscriber_id, email FROM members_changed WHERE status = 'pending') p
       ) END AS pending`;

interface ImportChunkRow {
  created: number;
  updated: number;
  kept_unsubscribed: number;
  pending: Array<{ id: string; email: string }> | null;
}

/** subscribed=false on an active contact of the chunk: an engine opt-out (source 'api'), as writeContacts does. */
const IMPORT_OPT_OUT_SQL = `
WITH opt_out_targets AS (
  SELECT $1::uuid AS tenant_id, $2::uuid AS list_id, s.id AS subscriber_id, 'api'::text AS source, NULL::uuid AS message_id
    FROM import_rows i
    CROSS JOIN LATERAL (SELECT s.id FROM subscribers s WHERE s.tenant_id = $1 AND s.list_id = $2 AND lower(s.email) = lower(i.email) LIMIT 1) s
   WHERE i.subscribed IS FALSE
), ${OPT_OUT_CTES}
SELECT count(*) FROM opted_out`;

/** A value for COPY's text format: backslash, tab and line breaks escaped; undefined/null as \N. */
const COPY_SPECIAL = /[\\\t\n\r]/;
const copyEscape = (c: string) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r');
// Most values have nothing to escape: a test is several times cheaper than a replace finding nothing.
const copyText = (v: string | null | undefined) => (v == null ? '\\N' : COPY_SPECIAL.test(v) ? v.replace(/[\\\t\n\r]/g, copyEscape) : v);

/**
 * Streams the body into the list. Returns the finished import; a body that cannot be read as its
 * format (malformed CSV) rolls the contacts back and marks the import failed with the reason.
 * `onPending` receives the contacts a double opt-in list created pending, in the same
 * transaction (their confirmation messages are queued with them).
 *
 * Rows are parsed and checked in Node, COPY'd a chunk at a time into a temporary staging table and
 * written by one statement per chunk (IMPORT_CHUNK_SQL); the next chunk is parsed while the
 * database writes the current one, so at most three chunks are in memory (one parsed and waiting,
 * one being checked, one being written). The two run side by side only if neither waits on the
 * other: a chunk's statements are queued at once, the row loop yields to the event loop every
 * YIELD_EVERY rows (the connection's replies, from which its next statement is sent, come in), and
 * the progress reports do not hold up the writes.
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
  const invalidRows: InvalidRow[] = [];
  // Progress is written beside the import, autocommitted, one report after another; the import
  // does not wait for them (only for the last, before it completes).
  let reported: Promise<unknown> = Promise.resolve();
  const report = () => {
    reported = reported.then(() =>
      db.query(
        `UPDATE contact_imports SET rows_received = $2, rows_invalid = $3, created = $4, updated = $5, kept_unsubscribed = $6, invalid_rows = $7 WHERE id = $1`,
        [importId, progress.rows_received, progress.rows_invalid, progress.created, progress.updated, progress.kept_unsubscribed, JSON.stringify(invalidRows)],
      ),
    );
    reported.catch(() => {}); // awaited before the import completes; never unhandled meanwhile
  };
  try {
    await withTransaction(db, async (tx) => {
      const { doubleOptIn } = await listForWrite(tx, tenantId, listId, 'exclusive');
      await tx.query(STAGING_DDL);
      const sourceId = newId();
      const write = async (chunk: { text: string; optOuts: boolean }) => {
        // Queued at once: the connection runs them back to back, not waiting on this process (busy
        // parsing the next chunk) between them. After a failure the others fail too (the
        // transaction is aborted); the first failure is the one to tell.
        const steps = [
          pipeline(Readable.from([chunk.text]), tx.query(copyFrom('COPY import_rows FROM STDIN'))),
          tx.query<ImportChunkRow>(IMPORT_CHUNK_SQL, [tenantId, listId, doubleOptIn !== null, sourceId]),
          chunk.optOuts ? tx.query(IMPORT_OPT_OUT_SQL, [tenantId, listId]) : undefined,
          // In place: the table was created in this transaction.
          tx.query('TRUNCATE import_rows'),
        ] as const;
        const settled = await Promise.allSettled(steps);
        const failed = settled.find((s) => s.status === 'rejected');
        if (failed) throw failed.reason;
        const r = (settled[1] as PromiseFulfilledResult<pg.QueryResult<ImportChunkRow>>).value.rows[0];
        if (doubleOptIn && onPending && r.pending?.length) await onPending(tx, doubleOptIn, r.pending);
        progress.created += r.created;
        progress.updated += r.updated;
        progress.kept_unsubscribed += r.kept_unsubscribed;
        report();
      };
      let lines: string[] = [];
      let optOuts = false;
      let writing: Promise<void> | undefined;
      const flush = async () => {
        if (!lines.length) return;
        const chunk = { text: lines.join(''), optOuts };
        lines = [];
        optOuts = false;
        await writing;
        writing = write(chunk);
        writing.catch(() => {}); // awaited by the next flush or at the end; never unhandled meanwhile
      };
      try {
        for await (const batch of rowBatches(body, format)) {
          for (const { line, record } of batch) {
            // Let the connection's replies in now and then: its next statement is sent from them.
            if (++progress.rows_received % YIELD_EVERY === 0) await yieldToLoop();
            const c = typeof record === 'string' ? record : toContact(record);
            if (typeof c === 'string') {
              progress.rows_invalid++;
              if (invalidRows.length < MAX_INVALID_REPORTED) invalidRows.push({ line, reason: c });
              continue;
            }
            if (c.subscribed === false) optOuts = true;
            const subscribed = c.subscribed === undefined ? '\\N' : String(c.subscribed);
            lines.push(`${progress.rows_received}\t${newId()}\t${copyText(c.email)}\t${copyText(c.first_name)}\t${copyText(c.last_name)}\t${copyText(JSON.stringify(c.properties ?? {}))}\t${subscribed}\n`);
          }
          await flush();
        }
      } finally {
        // A chunk still being written finishes before the transaction is rolled back or committed:
        // its remaining statements must not run after the ROLLBACK, outside the transaction.
        await writing?.catch(() => {});
        await reported.catch(() => {});
      }
      await writing;
      await reported;
      await tx.query(
        `UPDATE contact_imports SET status = 'completed', rows_received = $2, rows_invalid = $3, created = $4, updated = $5, kept_unsubscribed = $6,
                invalid_rows = $7, finished_at = now() WHERE id = $1`,
        [importId, progress.rows_received, progress.rows_invalid, progress.created, progress.updated, progress.kept_unsubscribed, JSON.stringify(invalidRows)],
      );
    });
  } catch (err) {
    if (err instanceof DomainError && err.kind !== 'invalid') throw err;
    const reason = err instanceof DomainError ? err.message : `the body is not valid ${format === 'csv' ? 'CSV' : 'JSON lines'}: ${(err as Error).message.split('\n')[0]}`;
    await db.query(
      `UPDATE contact_imports SET status = 'failed', error = $2, created = 0, updated = 0, kept_unsubscribed = 0, invalid_rows = $3, finished_at = now() WHERE id = $1`,
      [importId, reason.slice(0, 500), JSON.stringify(invalidRows)],
    );
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
    created: r.created, updated: r.updated, kept_unsubscribed: r.kept_unsubscribed, invalid_rows: r.invalid_rows, error: r.error,
    created_at: r.created_at.toISOString(), finished_at: r.finished_at?.toISOString() ?? null,
  };
}
