import type { Db, DbClient, Queryable } from '../db/pool.ts';
import { DomainError, invalid } from '../errors.ts';
import { newId } from '../ids.ts';
import { decodeCursor, encodeCursor } from '../observability/cursor.ts';
import type { Page } from '../observability/messages.ts';
import { OPT_OUT_CTES, OPT_OUT_STANDS } from './opt-out.ts';
import { inListTransaction, lockListExclusive, lockListShared, type MemberStatus } from './store.ts';

/**
 * Lists the API owns (/v1/lists) and their contacts. A list has one source of truth: the Member
 * Center's webhooks write its lists (src/lists/events.ts, sync.ts; they refuse an API list), the
 * API writes its own (these functions refuse a Member Center list). A contact is a subscriber row
 * of its list (subscribers.list_id), unique by lower(email) in it, with its membership.
 */

/** Who writes a list; mirrored by the CHECK on lists.owner (migration 019). */
export const LIST_OWNERS = ['member_center', 'api'] as const;
export type ListOwner = (typeof LIST_OWNERS)[number];

export interface DoubleOptIn {
  enabled: boolean;
  from?: string;
  subject?: string;
  html?: string;
}

export interface ListResource {
  id: string;
  name: string | null;
  owner: ListOwner;
  double_opt_in: DoubleOptIn | null;
  members: Record<MemberStatus | 'total', number>;
  created_at: string;
  updated_at: string;
}

export interface ContactInput {
  email: string;
  first_name?: string | null;
  last_name?: string | null;
  properties?: Record<string, unknown>;
  subscribed?: boolean;
}

export interface Contact {
  id: string;
  list_id: string;
  email: string;
  first_name: string | null;
  last_name: string | null;
  properties: Record<string, unknown>;
  status: MemberStatus;
  /** When an opt-out stands: no upsert, import or confirmation re-subscribes the contact. */
  opted_out_at: string | null;
  created_at: string;
  updated_at: string;
}

const notFound = (what: string) => new DomainError('not_found', 'not_found', `${what} not found`);

/**
 * The API list to write, locked for this transaction's membership writes: shared, like every
 * writer, or exclusive (an import: its plain INSERTs of new contacts rely on no concurrent writer).
 */
export async function listForWrite(client: Queryable, tenantId: string, listId: string, lock: 'shared' | 'exclusive' = 'shared'): Promise<{ doubleOptIn: DoubleOptIn | null }> {
  const { rows } = await client.query<{ owner: ListOwner; double_opt_in: DoubleOptIn | null }>(
    'SELECT owner, double_opt_in FROM lists WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL',
    [tenantId, listId],
  );
  if (!rows[0]) throw notFound(`list ${listId}`);
  if (rows[0].owner !== 'api') {
    throw new DomainError('conflict', 'list_owned_by_member_center', `list ${listId} is written by the Member Center's webhooks, not the API`);
  }
  await (lock === 'exclusive' ? lockListExclusive : lockListShared)(client, tenantId, listId);
  return { doubleOptIn: rows[0].double_opt_in?.enabled ? rows[0].double_opt_in : null };
}

function checkDoubleOptIn(d: DoubleOptIn | null | undefined) {
  if (d?.enabled && !(d.subject && d.html)) throw invalid('double_opt_in needs subject and html when enabled');
  if (d?.html && !d.html.includes('{{ confirm_url }}') && !d.html.includes('{{confirm_url}}')) {
    throw invalid('double_opt_in.html must contain {{ confirm_url }}');
  }
}

const LIST_SELECT = `
  SELECT l.id, l.name, l.owner, l.double_opt_in, l.created_at, l.updated_at,
         (SELECT jsonb_object_agg(status, n) FROM (
            SELECT status, count(*) AS n FROM list_members WHERE tenant_id = l.tenant_id AND list_id = l.id GROUP BY status) c) AS counts
    FROM lists l`;

function listView(r: { id: string; name: string | null; owner: ListOwner; double_opt_in: DoubleOptIn | null; created_at: Date; updated_at: Date; counts: Record<string, number> | null }): ListResource {
  const c = r.counts ?? {};
  const members = { total: 0, active: c.active ?? 0, pending: c.pending ?? 0, unsubscribed: c.unsubscribed ?? 0, bounced: c.bounced ?? 0, complaint: c.complaint ?? 0, suppressed: c.suppressed ?? 0 };
  members.total = Object.values(c).reduce((a, b) => a + b, 0);
  return { id: r.id, name: r.name, owner: r.owner, double_opt_in: r.double_opt_in, members, created_at: r.created_at.toISOString(), updated_at: r.updated_at.toISOString() };
}

export async function createList(db: Queryable, tenantId: string, req: { name: string; double_opt_in?: DoubleOptIn }): Promise<ListResource> {
  checkDoubleOptIn(req.double_opt_in);
  const id = newId();
  await db.query(`INSERT INTO lists (tenant_id, id, owner, name, double_opt_in) VALUES ($1, $2, 'api', $3, $4)`, [tenantId, id, req.name, req.double_opt_in ?? null]);
  return (await getListResource(db, tenantId, id))!;
}

export async function getListResource(db: Queryable, tenantId: string, id: string): Promise<ListResource | null> {
  const { rows } = await db.query(`${LIST_SELECT} WHERE l.tenant_id = $1 AND l.id = $2 AND l.deleted_at IS NULL`, [tenantId, id]);
  return rows[0] ? listView(rows[0]) : null;
}

/** Every list of the tenant (both owners), by id; keyset cursor on the id. */
export async function listLists(db: Queryable, tenantId: string, q: { limit: number; cursor?: string; owner?: ListOwner }): Promise<Page<ListResource>> {
  const after = decodeCursor(q.cursor, { id: 'uuid' });
  const { rows } = await db.query(
    `${LIST_SELECT} WHERE l.tenant_id = $1 AND l.deleted_at IS NULL AND ($2::uuid IS NULL OR l.id > $2) AND ($3::text IS NULL OR l.owner = $3)
      ORDER BY l.id LIMIT $4`,
    [tenantId, after?.id ?? null, q.owner ?? null, q.limit + 1],
  );
  const more = rows.length > q.limit;
  const data = rows.slice(0, q.limit).map(listView);
  return { data, nextCursor: more ? encodeCursor({ id: data[data.length - 1].id }) : null };
}

export async function updateList(db: Db, tenantId: string, id: string, req: { name?: string; double_opt_in?: DoubleOptIn | null }): Promise<ListResource> {
  checkDoubleOptIn(req.double_opt_in);
  await inListTransaction(db, async (tx) => {
    await listForWrite(tx, tenantId, id);
    await tx.query(
      `UPDATE lists SET name = coalesce($3, name), double_opt_in = CASE WHEN $4 THEN $5::jsonb ELSE double_opt_in END, updated_at = now()
        WHERE tenant_id = $1 AND id = $2`,
      [tenantId, id, req.name ?? null, req.double_opt_in !== undefined, req.double_opt_in ?? null],
    );
  });
  return (await getListResource(db, tenantId, id))!;
}

/** Deleted lists stay for history; a list a live campaign sends to is kept (409 list_in_use). */
export async function deleteList(db: Db, tenantId: string, id: string): Promise<void> {
  await inListTransaction(db, async (tx) => {
    await listForWrite(tx, tenantId, id);
    const live = await tx.query(`SELECT 1 FROM send_jobs WHERE tenant_id = $1 AND list_id = $2 AND status IN ('pending', 'running', 'paused') LIMIT 1`, [tenantId, id]);
    if (live.rowCount) throw new DomainError('conflict', 'list_in_use', `list ${id} has a scheduled, running or paused campaign`);
    await tx.query('UPDATE lists SET deleted_at = now(), updated_at = now() WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
  });
}

export interface ContactWriteResult {
  created: number;
  updated: number;
  /** Rows asking subscribed=true whose opt-out stands: they stay unsubscribed. */
  kept_unsubscribed: number;
  /** Subscribers created pending (double opt-in): their confirmation messages are to be queued. */
  pending: Array<{ id: string; email: string }>;
  ids: string[];
}

/**
 * Writes contacts (one, or a batch of an import) in two set-based statements, rows deduplicated by
 * address (last wins):
 * 1. subscribers upserted by (list, lower(email)) (names kept unless given, properties merged), and
 *    memberships: a new contact is active, pending (double opt-in) or unsubscribed (subscribed
 *    false); an existing one changes only when asked to subscribe and no opt-out stands
 *    (OPT_OUT_STANDS, src/lists/opt-out.ts): then active, or pending again under double opt-in.
 * 2. subscribed=false on an active contact is an engine opt-out (source 'api', OPT_OUT_CTES): it
 *    stands from then on and queues subscription.unsubscribed for webhook endpoints.
 * `mode` 'create' refuses an address already in the list (409 contact_exists).
 */
export async function writeContacts(
  client: DbClient,
  tenantId: string,
  listId: string,
  rowsJson: string,
  options: { doubleOptIn: boolean; mode: 'create' | 'upsert' },
): Promise<ContactWriteResult> {
  // The CTEs below join on the address; their row counts are unknown to the planner, which would
  // otherwise nest-loop 5,000 x 5,000 lower() comparisons per import batch.
  await client.query('SET LOCAL enable_nestloop = off');
  const { rows } = await client.query<{ created: number; updated: number; kept_unsubscribed: number; pending: Array<{ id: string; email: string }> | null; ids: string[] | null; existed: number }>(
    `WITH input AS (
       SELECT DISTINCT ON (lower(r.email)) r.email, r.first_name, r.last_name, r.properties, r.subscribed
         FROM ROWS FROM (jsonb_to_recordset($3::jsonb) AS (email text, first_name text, last_name text, properties jsonb, subscribed boolean))
              WITH ORDINALITY AS r(email, first_name, last_name, properties, subscribed, ord)
        ORDER BY lower(r.email), r.ord DESC
     ), subs AS (
       INSERT INTO subscribers AS s (tenant_id, id, list_id, email, status, updated_at, first_name, last_name, properties)
       SELECT $1, uuid_v7(), $2, i.email, 'active', now(), i.first_name, i.last_name, coalesce(i.properties, '{}')
         FROM input i ORDER BY lower(i.email)
       ON CONFLICT (tenant_id, list_id, lower(email)) WHERE list_id IS NOT NULL DO UPDATE
         SET first_name = coalesce(excluded.first_name, s.first_name), last_name = coalesce(excluded.last_name, s.last_name),
             properties = s.properties || excluded.properties, updated_at = now()
       RETURNING s.id, s.email, (s.xmax = 0) AS inserted
     ), members AS (
       INSERT INTO list_members AS m (tenant_id, list_id, subscriber_id, status, reason, source_id, status_at)
       SELECT $1, $2, subs.id,
              CASE WHEN i.subscribed IS FALSE THEN 'unsubscribed' WHEN $4 THEN 'pending' ELSE 'active' END,
              -- 'api.subscribe' marks rows asking to be subscribed: only they may re-subscribe.
              CASE WHEN i.subscribed IS TRUE THEN 'api.subscribe' ELSE 'api' END, $5::uuid, now()
         FROM subs JOIN input i ON lower(i.email) = lower(subs.email)
        ORDER BY subs.id
       ON CONFLICT (tenant_id, list_id, subscriber_id) DO UPDATE
         SET status = CASE WHEN excluded.status = 'unsubscribed' THEN 'unsubscribed' WHEN $4 THEN 'pending' ELSE 'active' END,
             reason = excluded.reason, source_id = excluded.source_id, status_at = greatest(now(), m.status_at), updated_at = now()
         -- Re-subscribe only an unsubscribed contact whose opt-out does not stand; a pending one
         -- (never confirmed, so never subscribed) asked to unsubscribe simply is.
         WHERE (excluded.reason = 'api.subscribe' AND m.status = 'unsubscribed' AND NOT (${OPT_OUT_STANDS}))
            OR (excluded.status = 'unsubscribed' AND m.status = 'pending')
       RETURNING m.subscriber_id, m.status
     )
     SELECT (SELECT count(*) FROM subs WHERE inserted)::int AS created,
            (SELECT count(*) FROM subs WHERE NOT inserted)::int AS updated,
            (SELECT count(*)::int FROM subs JOIN input i ON lower(i.email) = lower(subs.email)
               JOIN list_members m ON m.tenant_id = $1 AND m.list_id = $2 AND m.subscriber_id = subs.id
              WHERE NOT subs.inserted AND i.subscribed IS TRUE AND ${OPT_OUT_STANDS}) AS kept_unsubscribed,
            (SELECT jsonb_agg(jsonb_build_object('id', subs.id, 'email', subs.email)) FROM members JOIN subs ON subs.id = members.subscriber_id
              WHERE members.status = 'pending') AS pending,
            (SELECT array_agg(id::text) FROM subs) AS ids,
            (SELECT count(*) FROM subs WHERE NOT inserted)::int AS existed`,
    [tenantId, listId, rowsJson, options.doubleOptIn, newId()],
  );
  await client.query('SET LOCAL enable_nestloop = on');
  const r = rows[0];
  if (options.mode === 'create' && r.existed > 0) {
    throw new DomainError('conflict', 'contact_exists', 'a contact with this email is already in the list (PUT upserts it)');
  }
  // Asked to unsubscribe: an engine opt-out of the active ones (set-based, like every opt-out).
  // rowsJson is JSON.stringify output: without this text no row asks it (most imports).
  if (rowsJson.includes('"subscribed":false')) await client.query(
    `WITH opt_out_targets AS (
       SELECT $1::uuid AS tenant_id, $2::uuid AS list_id, s.id AS subscriber_id, 'api'::text AS source, NULL::uuid AS message_id
         FROM ROWS FROM (jsonb_to_recordset($3::jsonb) AS (email text, subscribed boolean)) i
         JOIN subscribers s ON s.tenant_id = $1 AND s.list_id = $2 AND lower(s.email) = lower(i.email)
        WHERE i.subscribed IS FALSE
     ), ${OPT_OUT_CTES}
     SELECT count(*) FROM opted_out`,
    [tenantId, listId, rowsJson],
  );
  return { created: r.created, updated: r.updated, kept_unsubscribed: r.kept_unsubscribed, pending: r.pending ?? [], ids: r.ids ?? [] };
}

const CONTACT_SELECT = `
  SELECT s.id, m.list_id, s.email, s.first_name, s.last_name, s.properties, m.status, m.opted_out_at, s.created_at,
         greatest(s.updated_at, m.updated_at) AS updated_at
    FROM subscribers s JOIN list_members m ON m.tenant_id = s.tenant_id AND m.list_id = s.list_id AND m.subscriber_id = s.id`;

function contactView(r: Record<string, any>): Contact {
  return {
    id: r.id, list_id: r.list_id, email: r.email, first_name: r.first_name, last_name: r.last_name, properties: r.properties,
    status: r.status, opted_out_at: r.opted_out_at?.toISOString() ?? null, created_at: r.created_at.toISOString(), updated_at: r.updated_at.toISOString(),
  };
}

/** The API list's contact, or null (another tenant's, another list's, a Member Center list). */
export async function getContact(db: Queryable, tenantId: string, listId: string, contactId: string): Promise<Contact | null> {
  const { rows } = await db.query(
    `${CONTACT_SELECT} JOIN lists l ON l.tenant_id = s.tenant_id AND l.id = s.list_id AND l.deleted_at IS NULL
      WHERE s.tenant_id = $1 AND s.list_id = $2 AND s.id = $3`,
    [tenantId, listId, contactId],
  );
  return rows[0] ? contactView(rows[0]) : null;
}

export async function listContacts(db: Queryable, tenantId: string, listId: string, q: { limit: number; cursor?: string; email?: string; status?: MemberStatus }): Promise<Page<Contact> | null> {
  const list = await getListResource(db, tenantId, listId);
  if (!list || list.owner !== 'api') return null;
  const after = decodeCursor(q.cursor, { id: 'uuid' });
  const { rows } = await db.query(
    `${CONTACT_SELECT}
      WHERE s.tenant_id = $1 AND s.list_id = $2 AND ($3::uuid IS NULL OR s.id > $3)
        AND ($4::text IS NULL OR lower(s.email) = lower($4)) AND ($5::text IS NULL OR m.status = $5)
      ORDER BY s.id LIMIT $6`,
    [tenantId, listId, after?.id ?? null, q.email ?? null, q.status ?? null, q.limit + 1],
  );
  const more = rows.length > q.limit;
  const data = rows.slice(0, q.limit).map(contactView);
  return { data, nextCursor: more ? encodeCursor({ id: data[data.length - 1].id }) : null };
}

/** Creates (mode 'create') or upserts one contact; returns it and the double opt-in work to do. */
export async function putContact(db: Db, tenantId: string, listId: string, input: ContactInput, mode: 'create' | 'upsert', onPending?: PendingHandler) {
  return inListTransaction(db, async (tx) => {
    const { doubleOptIn } = await listForWrite(tx, tenantId, listId);
    const result = await writeContacts(tx, tenantId, listId, JSON.stringify([input]), { doubleOptIn: doubleOptIn !== null, mode });
    if (doubleOptIn && onPending && result.pending.length) await onPending(tx, doubleOptIn, result.pending);
    const contact = (await getContact(tx, tenantId, listId, result.ids[0]))!;
    return { contact, created: result.created === 1 };
  });
}

/** Queues what a double opt-in list sends its new pending contacts, in the transaction that made them. */
export type PendingHandler = (tx: DbClient, doubleOptIn: DoubleOptIn, pending: Array<{ id: string; email: string }>) => Promise<void>;

/** Changes a contact by id: email, names, properties (merged), subscribed (see writeContacts). */
export async function patchContact(db: Db, tenantId: string, listId: string, contactId: string, patch: Partial<ContactInput>, onPending?: PendingHandler) {
  return inListTransaction(db, async (tx) => {
    const { doubleOptIn } = await listForWrite(tx, tenantId, listId);
    const current = await getContact(tx, tenantId, listId, contactId);
    if (!current) throw notFound(`contact ${contactId}`);
    if (patch.email && patch.email.toLowerCase() !== current.email.toLowerCase()) {
      const taken = await tx.query('SELECT 1 FROM subscribers WHERE tenant_id = $1 AND list_id = $2 AND lower(email) = lower($3)', [tenantId, listId, patch.email]);
      if (taken.rowCount) throw new DomainError('conflict', 'contact_exists', 'another contact of the list has this email');
      await tx.query('UPDATE subscribers SET email = $4, updated_at = now() WHERE tenant_id = $1 AND list_id = $2 AND id = $3', [tenantId, listId, contactId, patch.email]);
    }
    const result = await writeContacts(tx, tenantId, listId, JSON.stringify([{ ...patch, email: patch.email ?? current.email }]), { doubleOptIn: doubleOptIn !== null, mode: 'upsert' });
    if (doubleOptIn && onPending && result.pending.length) await onPending(tx, doubleOptIn, result.pending);
    return (await getContact(tx, tenantId, listId, contactId))!;
  });
}

/**
 * Removes a contact. One whose opt-out stands is kept, unsubscribed, with its names and properties
 * erased: adding the address again must not re-subscribe it.
 */
export async function deleteContact(db: Db, tenantId: string, listId: string, contactId: string): Promise<void> {
  await inListTransaction(db, async (tx) => {
    await listForWrite(tx, tenantId, listId);
    const { rows } = await tx.query<{ stands: boolean }>(
      `SELECT ${OPT_OUT_STANDS} AS stands FROM list_members m JOIN subscribers s ON s.tenant_id = m.tenant_id AND s.id = m.subscriber_id AND s.list_id = m.list_id
        WHERE m.tenant_id = $1 AND m.list_id = $2 AND m.subscriber_id = $3 FOR UPDATE OF m`,
      [tenantId, listId, contactId],
    );
    if (!rows[0]) throw notFound(`contact ${contactId}`);
    if (rows[0].stands) {
      await tx.query(`UPDATE subscribers SET first_name = NULL, last_name = NULL, properties = '{}', updated_at = now() WHERE tenant_id = $1 AND id = $2`, [tenantId, contactId]);
      return;
    }
    await tx.query('DELETE FROM list_members WHERE tenant_id = $1 AND list_id = $2 AND subscriber_id = $3', [tenantId, listId, contactId]);
    await tx.query('DELETE FROM subscribers WHERE tenant_id = $1 AND list_id = $2 AND id = $3', [tenantId, listId, contactId]);
  });
}

/**
 * Integer ids of API lists (migration 025), for APIs that name lists by number (Brevo's `listIds`):
 * a per-tenant sequence, never reused. Another tenant's number, or a deleted list's, is not found.
 */
export async function listIdByNumber(db: Queryable, tenantId: string, number: number): Promise<string> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM lists WHERE tenant_id = $1 AND number = $2 AND deleted_at IS NULL', [tenantId, number]);
  if (!rows[0]) throw notFound(`list ${number}`);
  return rows[0].id;
}

/** The numbers of these lists of the tenant, by list id (lists without a number are absent). */
export async function listNumbers(db: Queryable, tenantId: string, ids: string[]): Promise<Map<string, number>> {
  const { rows } = await db.query<{ id: string; number: number }>(
    'SELECT id, number FROM lists WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND number IS NOT NULL',
    [tenantId, ids],
  );
  return new Map(rows.map((r) => [r.id, r.number]));
}

/** One address's contacts in every API list of the tenant (Brevo's contact is the address across lists). */
export async function contactsByEmail(db: Queryable, tenantId: string, email: string): Promise<Contact[]> {
  const { rows } = await db.query(
    `${CONTACT_SELECT} JOIN lists l ON l.tenant_id = s.tenant_id AND l.id = s.list_id AND l.deleted_at IS NULL AND l.owner = 'api'
      WHERE s.tenant_id = $1 AND lower(s.email) = lower($2) ORDER BY s.created_at, s.id`,
    [tenantId, email],
  );
  return rows.map(contactView);
}
