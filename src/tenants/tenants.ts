import type { Queryable } from '../db/pool.ts';
import { newId } from '../ids.ts';

export interface Tenant {
  id: string;
  name: string;
  created_at: Date;
}

export async function createTenant(db: Queryable, name: string): Promise<Tenant> {
  const { rows } = await db.query<Tenant>('INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING id, name, created_at', [newId(), name]);
  return rows[0];
}

export async function tenantExists(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM tenants WHERE id = $1', [id]);
  return rowCount === 1;
}

export interface TenantView {
  id: string;
  name: string;
  max_send_rate: number | null;
  /** Newsletter sending paused (by the guardrail or an operator); transactional goes on. */
  sending_paused: boolean;
  sending_paused_at: string | null;
  sending_pause_reason: string | null;
  created_at: string;
}

const TENANT_SELECT = 'SELECT id, name, max_send_rate, newsletter_paused_at, newsletter_pause_reason, created_at FROM tenants';

function tenantView(r: Record<string, any>): TenantView {
  return {
    id: r.id, name: r.name, max_send_rate: r.max_send_rate === null ? null : Number(r.max_send_rate),
    sending_paused: r.newsletter_paused_at !== null, sending_paused_at: r.newsletter_paused_at?.toISOString() ?? null,
    sending_pause_reason: r.newsletter_pause_reason, created_at: r.created_at.toISOString(),
  };
}

export async function getTenant(db: Queryable, id: string): Promise<TenantView | null> {
  const { rows } = await db.query(`${TENANT_SELECT} WHERE id = $1`, [id]);
  return rows[0] ? tenantView(rows[0]) : null;
}

/** Tenants by id (v7: creation order), after the cursor's id. */
export async function listTenants(db: Queryable, q: { limit: number; after?: string }): Promise<{ data: TenantView[]; more: boolean }> {
  const { rows } = await db.query(`${TENANT_SELECT} WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2`, [q.after ?? null, q.limit + 1]);
  return { data: rows.slice(0, q.limit).map(tenantView), more: rows.length > q.limit };
}

export async function updateTenant(db: Queryable, id: string, patch: { name?: string; max_send_rate?: number | null }): Promise<TenantView | null> {
  const { rows } = await db.query(
    `UPDATE tenants SET name = coalesce($2, name), max_send_rate = CASE WHEN $3 THEN $4::numeric ELSE max_send_rate END WHERE id = $1 RETURNING *`,
    [id, patch.name ?? null, patch.max_send_rate !== undefined, patch.max_send_rate ?? null],
  );
  return rows[0] ? tenantView(rows[0]) : null;
}

/** An operator's pause of newsletter sending (the guardrail's switch, src/events/guardrail.ts); resume with resumeNewsletters. */
export async function pauseTenantSending(db: Queryable, id: string, reason: string): Promise<TenantView | null> {
  const { rows } = await db.query(
    `UPDATE tenants SET newsletter_paused_at = coalesce(newsletter_paused_at, now()), newsletter_pause_reason = coalesce(newsletter_pause_reason, $2)
      WHERE id = $1 RETURNING *`,
    [id, reason],
  );
  return rows[0] ? tenantView(rows[0]) : null;
}
