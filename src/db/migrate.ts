import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db, DbClient } from './pool.ts';

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
const FUNCTIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'functions');
// Any constant works; it only has to be the same in every process that migrates.
const MIGRATION_LOCK_KEY = 0x5e_4d_00_01;

/**
 * Runs fn while holding the schema lock (fn gets the locking connection): one process at a time
 * changes the schema (our migrations, pg-boss's schema and queues), however many start at once.
 */
export async function withSchemaLock<T>(db: Db, fn: (client: DbClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    return await fn(client);
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
    client.release();
  }
}

/**
 * Applies migrations/*.sql in name order, each in its own transaction, then functions/*.sql (see
 * applyFunctions), all under the schema lock so that several processes starting at once apply each
 * file exactly once.
 */
export async function migrate(db: Db, options: { onProgress?: (p: { done: number; total: number; file: string | null }) => void } = {}): Promise<string[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort();
  return withSchemaLock(db, async (client) => {
    const applied: string[] = [];
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set((await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name));
    const pending = files.filter((f) => !done.has(f));
    options.onProgress?.({ done: 0, total: pending.length, file: null });
    for (const file of pending) {
      const sql = await readFile(path.join(MIGRATIONS_DIR, file), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file]);
        await client.query('COMMIT');
        applied.push(file);
        options.onProgress?.({ done: applied.length, total: pending.length, file });
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${file} failed: ${(err as Error).message}`);
      }
    }
    return [...applied, ...(await applyFunctions(client))];
  });
}

/**
 * functions/*.sql hold the living bodies of SQL functions and triggers (CREATE OR REPLACE
 * FUNCTION / TRIGGER): a change is an edit of its file, never a copy in a new migration. Applied
 * after the migrations, in name order, in one transaction; a file is applied again only when its
 * text changed (schema_functions keeps each file's SHA-256), because replacing a trigger locks its
 * table against writes, which every process start would otherwise do to the busiest tables.
 */
async function applyFunctions(client: DbClient): Promise<string[]> {
  await client.query('CREATE TABLE IF NOT EXISTS schema_functions (name text PRIMARY KEY, sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
  const known = new Map((await client.query<{ name: string; sha256: string }>('SELECT name, sha256 FROM schema_functions')).rows.map((r) => [r.name, r.sha256]));
  const files = (await readdir(FUNCTIONS_DIR)).filter((f) => f.endsWith('.sql')).sort();
  const changed: { file: string; sql: string; sha256: string }[] = [];
  for (const file of files) {
    const sql = await readFile(path.join(FUNCTIONS_DIR, file), 'utf8');
    const sha256 = createHash('sha256').update(sql).digest('hex');
    if (known.get(file) !== sha256) changed.push({ file, sql, sha256 });
  }
  if (!changed.length) return [];
  await client.query('BEGIN');
  try {
    for (const { file, sql, sha256 } of changed) {
      await client.query(sql).catch((err: Error) => {
        throw new Error(`functions/${file} failed: ${err.message}`);
      });
      await client.query(
        'INSERT INTO schema_functions (name, sha256) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, applied_at = now()',
        [file, sha256],
      );
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
  return changed.map((c) => `functions/${c.file}`);
}
