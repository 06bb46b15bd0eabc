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

/** Tenants by name, for the operator's tenant switcher in the dashboard (bounded). */
export async function listTenants(db: Queryable, limit = 500): Promise<Tenant[]> {
  const { rows } = await db.query<Tenant>('SELECT id, name, created_at FROM tenants ORDER BY name, id LIMIT $1', [limit]);
  return rows;
}
