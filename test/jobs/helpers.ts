import { randomUUID } from 'node:crypto';
import type { Db } from '../../src/db/pool.ts';
import { newId } from '../../src/ids.ts';

export interface SeededMember {
  id: string;
  email: string;
  status: string;
}

/**
 * A list as the Member Center webhooks would leave it: subscribers and memberships with statuses,
 * written set-based. `count` members named user0..userN@<domain> unless `members` are given.
 */
export async function seedList(
  db: Db,
  tenantId: string,
  spec: { count?: number; domain?: string; members?: Array<{ email: string; status?: string }> },
): Promise<{ listId: string; members: SeededMember[] }> {
  const listId = randomUUID();
  const domain = spec.domain ?? 'example.com';
  const given: Array<{ email: string; status?: string }> = spec.members ?? Array.from({ length: spec.count ?? 0 }, (_, i) => ({ email: `user${i}@${domain}` }));
  const members: SeededMember[] = given.map((m) => ({
    id: newId(),
    email: m.email,
    status: m.status ?? 'active',
  }));
  await db.query('INSERT INTO lists (tenant_id, id) VALUES ($1, $2)', [tenantId, listId]);
  await db.query(
    `INSERT INTO subscribers (tenant_id, id, email, status, updated_at)
     SELECT $1, id, email, 'active', now() FROM unnest($2::uuid[], $3::text[]) AS t(id, email)`,
    [tenantId, members.map((m) => m.id), members.map((m) => m.email)],
  );
  await db.query(
    `INSERT INTO list_members (tenant_id, list_id, subscriber_id, status, reason, source_id, status_at)
     SELECT $1, $2, id, status, 'seed', gen_random_uuid(), now() - interval '1 minute'
       FROM unnest($3::uuid[], $4::text[]) AS t(id, status)`,
    [tenantId, listId, members.map((m) => m.id), members.map((m) => m.status)],
  );
  return { listId, members };
}
