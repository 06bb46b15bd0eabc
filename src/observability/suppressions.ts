import type { Db, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { DomainError } from '../errors.ts';
import { newId } from '../ids.ts';
import { decodeCursor, encodeCursor, type Window } from './cursor.ts';
import type { Page } from './messages.ts';
import { excludeUndeliverable } from './undeliverable.ts';

export interface SuppressionView {
  email: string;
  reason: string;
  suppressed_at: string;
  source: string;
  diagnostic: string | null;
}

interface Row {
  email: string;
  reason: string;
  created_at: Date;
  source: string;
  diagnostic: string | null;
  position: string;
}

/** The reference's two provenances; ours are 'ses' (provider feedback) and the rest. */
const view = (r: Row): SuppressionView => ({
  email: r.email,
  reason: r.reason,
  suppressed_at: r.created_at.toISOString(),
  source: r.source === 'ses' ? 'ses_event' : r.source === 'api' ? 'api' : 'manual',
  diagnostic: r.diagnostic,
});

const COLUMNS = 'email, reason, created_at, source, diagnostic, created_at::text AS position';
/** Substring search answers every match at once (the reference's full-scan mode), bounded. */
export const SEARCH_MAX = 1000;

export async function listSuppressions(
  db: Queryable,
  tenantId: string,
  filters: { window: Window; reason?: string; email?: string },
  options: { limit: number; cursor?: string },
): Promise<Page<SuppressionView>> {
  const params: unknown[] = [tenantId, filters.window.from, filters.window.to];
  const where = ['tenant_id = $1', 'created_at >= $2', 'created_at <= $3'];
  if (filters.reason) {
    params.push(filters.reason.toLowerCase());
    where.push(`reason = $${params.length}`);
  }
  if (filters.email !== undefined) {
    params.push(`%${filters.email.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`, SEARCH_MAX);
    const { rows } = await db.query<Row>(
      `SELECT ${COLUMNS} FROM suppressions WHERE ${where.join(' AND ')} AND email LIKE $${params.length - 1}
        ORDER BY created_at DESC, email DESC LIMIT $${params.length}`,
      params,
    );
    return { data: rows.map(view), nextCursor: null };
  }
  // Stale or malformed cursors start over at page 1, as the reference says for this list.
  let after: { t: string; e: string } | undefined;
  try {
    after = decodeCursor(options.cursor, { t: 'time', e: 'text' });
  } catch {
    after = undefined;
  }
  if (after) {
    params.push(after.t, after.e);
    where.push(`(created_at, email) < ($${params.length - 1}::timestamptz, $${params.length})`);
  }
  params.push(options.limit + 1);
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM suppressions WHERE ${where.join(' AND ')}
      ORDER BY created_at DESC, email DESC LIMIT $${params.length}`,
    params,
  );
  const more = rows.length > options.limit;
  const page = more ? rows.slice(0, options.limit) : rows;
  const last = page[page.length - 1];
  return { data: page.map(view), nextCursor: more ? encodeCursor({ t: last.position, e: last.email }) : null };
}

export async function getSuppression(db: Queryable, tenantId: string, email: string): Promise<SuppressionView> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM suppressions WHERE tenant_id = $1 AND email = lower($2)`, [tenantId, email]);
  if (!rows.length) throw new DomainError('not_found', 'not_found', 'address is not suppressed');
  return view(rows[0]);
}

export interface Actor {
  /** `api_key:<id>` or the JWT subject. */
  id: string;
}

/** Adds (or keeps) a suppression and records who and why; `created` is false when it existed. */
export async function addSuppression(db: Db, tenantId: string, input: { email: string; reason: string; comment?: string }, actor: Actor) {
  return withTransaction(db, async (client) => {
    const { rows } = await client.query<Row & { created: boolean }>(
      `WITH ins AS (
         INSERT INTO suppressions (tenant_id, email, reason, source, diagnostic)
         VALUES ($1, lower($2), $3, 'api', $4)
         ON CONFLICT (tenant_id, email) DO NOTHING
         RETURNING ${COLUMNS}, true AS created
       )
       SELECT * FROM ins
       UNION ALL
       SELECT ${COLUMNS}, false FROM suppressions WHERE tenant_id = $1 AND email = lower($2) AND NOT EXISTS (SELECT 1 FROM ins)`,
      [tenantId, input.email, input.reason, input.comment ?? null],
    );
    // A concurrent insert committed after this statement's snapshot: neither branch saw a row.
    const row = rows[0] ?? { ...(await client.query<Row>(`SELECT ${COLUMNS} FROM suppressions WHERE tenant_id = $1 AND email = lower($2)`, [tenantId, input.email])).rows[0], created: false };
    if (row.created) {
      await client.query(
        `INSERT INTO suppression_audit (id, tenant_id, email, action, actor, reason, comment) VALUES ($1, $2, $3, 'added', $4, $5, $6)`,
        [newId(), tenantId, row.email, actor.id, input.reason, input.comment ?? null],
      );
    }
    return { suppression: view(row), created: row.created };
  });
}

export async function removeSuppression(db: Db, tenantId: string, email: string, input: { comment?: string }, actor: Actor): Promise<SuppressionView> {
  return withTransaction(db, async (client) => {
    const { rows } = await client.query<Row>(
      `DELETE FROM suppressions WHERE tenant_id = $1 AND email = lower($2) RETURNING ${COLUMNS}`,
      [tenantId, email],
    );
    if (!rows.length) throw new DomainError('not_found', 'not_found', 'address is not suppressed');
    await client.query(
      `INSERT INTO suppression_audit (id, tenant_id, email, action, actor, reason, comment) VALUES ($1, $2, $3, 'removed', $4, $5, $6)`,
      [newId(), tenantId, rows[0].email, actor.id, rows[0].reason, input.comment ?? null],
    );
    // Removing a suppression is the operator's exclusion: pollers of /v1/undeliverable get a tombstone.
    await excludeUndeliverable(client, tenantId, rows[0].email, actor.id, input.comment ?? null);
    return view(rows[0]);
  });
}

export async function suppressionAudit(db: Queryable, tenantId: string, email: string) {
  const { rows } = await db.query<{ action: string; actor: string; reason: string | null; comment: string | null; created_at: Date }>(
    `SELECT action, actor, reason, comment, created_at FROM suppression_audit
      WHERE tenant_id = $1 AND email = lower($2) ORDER BY created_at, id`,
    [tenantId, email],
  );
  return rows.map((r) => ({ ...r, created_at: r.created_at.toISOString() }));
}
