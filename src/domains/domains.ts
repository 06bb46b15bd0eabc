import type { Config, DomainSettings } from '../config.ts';
import type { Db, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { DomainError, invalid } from '../errors.ts';
import { newId } from '../ids.ts';
import { decodeCursor, encodeCursor, UUID } from '../observability/cursor.ts';
import type { Page } from '../observability/messages.ts';
import { encryptSecret } from '../secrets.ts';
import type { DnsChecker } from './dns-check.ts';
import { newDkimKey } from './keys.ts';
import { addressDomain, domainAndParents, normalizeDomainName } from './names.ts';
import { expectedRecords, overallStatus, recordKey, type ExpectedRecord, type RecordCheck } from './records.ts';
import type { DkimKeyState, DomainStatus, RecordPurpose } from './status.ts';

/** What the domains module needs from the configuration. */
export interface DomainContext {
  settings: DomainSettings;
  /** AES-256 key sealing DKIM private keys (config.secretsKey). */
  secretsKey?: Buffer;
}

export interface DnsRecordView {
  type: ExpectedRecord['type'];
  name: string;
  value: string;
  priority?: number;
  purpose: RecordPurpose;
  required: boolean;
  status: DomainStatus;
  detail: string | null;
}

export interface DomainView {
  id: string;
  name: string;
  status: DomainStatus;
  status_reason: string | null;
  return_path: string;
  dkim_selector: string;
  tracking_host: string | null;
  dns_records: DnsRecordView[];
  created_at: string;
  verified_at: string | null;
  last_checked_at: string | null;
  next_check_at: string | null;
}

/** A sending_domains row with its keys, as every read below selects it. */
export interface DomainRow {
  id: string;
  tenant_id: string;
  name: string;
  return_path: string;
  tracking_host: string | null;
  status: DomainStatus;
  status_reason: string | null;
  record_status: Record<string, RecordCheck>;
  created_at: Date;
  verified_at: Date | null;
  last_checked_at: Date | null;
  next_check_at: Date | null;
  checking_since: Date;
  position: string;
  keys: Array<{ id: string; selector: string; state: DkimKeyState; public_key: string }>;
}

/** A domain row with its keys; callers add WHERE on `d`. */
export const SELECT_DOMAIN = `
  SELECT d.id, d.tenant_id, d.name, d.return_path, d.tracking_host, d.status, d.status_reason, d.record_status,
         d.created_at, d.verified_at, d.last_checked_at, d.next_check_at, d.checking_since, d.created_at::text AS position,
         coalesce((SELECT json_agg(json_build_object('id', k.id, 'selector', k.selector, 'state', k.state, 'public_key', k.public_key))
                     FROM domain_dkim_keys k WHERE k.domain_id = d.id), '[]') AS keys
    FROM sending_domains d`;

/** Absent records count as "pending" this long after a domain is added (or re-verified by hand). */
export const PENDING_GRACE_MS = 72 * 3_600_000;
const VERIFIED_RECHECK_MS = 24 * 3_600_000;
const TEMPORARY_RECHECK_MS = 5 * 60_000;

const notFound = (what: string) => new DomainError('not_found', 'not_found', `${what} not found`);

export function domainView(row: DomainRow, settings: DomainSettings): DomainView {
  const active = row.keys.find((k) => k.state === 'active');
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    status_reason: row.status_reason,
    return_path: row.return_path,
    dkim_selector: active?.selector ?? '',
    tracking_host: row.tracking_host,
    dns_records: expectedRecords(row, settings).map((r) => {
      const check = row.record_status[recordKey(r)];
      return {
        type: r.type,
        name: r.name,
        value: r.value,
        ...(r.priority !== undefined && { priority: r.priority }),
        purpose: r.purpose,
        required: r.required,
        status: check?.status ?? 'not_started',
        detail: check?.detail ?? null,
      };
    }),
    created_at: row.created_at.toISOString(),
    verified_at: row.verified_at?.toISOString() ?? null,
    last_checked_at: row.last_checked_at?.toISOString() ?? null,
    next_check_at: row.next_check_at?.toISOString() ?? null,
  };
}

function requireSecretsKey(ctx: DomainContext): Buffer {
  // withEmbeddedDefaults (runtime.ts) refuses to start without one; this guards other callers.
  if (!ctx.secretsKey) throw new Error('no SECRETS_KEY configured: DKIM keys cannot be stored');
  return ctx.secretsKey;
}

async function loadDomain(db: Queryable, tenantId: string, id: string): Promise<DomainRow> {
  if (!UUID.test(id)) throw notFound(`domain ${id.slice(0, 80)}`);
  const { rows } = await db.query<DomainRow>(`${SELECT_DOMAIN} WHERE d.tenant_id = $1 AND d.id = $2`, [tenantId, id]);
  if (!rows[0]) throw notFound(`domain ${id}`);
  return rows[0];
}

async function insertKey(db: Queryable, ctx: DomainContext, domainId: string, state: DkimKeyState) {
  const key = await newDkimKey();
  const id = newId();
  await db.query(
    'INSERT INTO domain_dkim_keys (id, domain_id, selector, state, public_key, private_key_enc) VALUES ($1, $2, $3, $4, $5, $6)',
    [id, domainId, key.selector, state, key.publicKey, encryptSecret(requireSecretsKey(ctx), key.privateKeyPem, id)],
  );
}

/**
 * Adds a domain with a fresh DKIM key. The same name may be added by several tenants while none
 * has verified it (a squatter cannot block the owner); once one has, the others get 409
 * `domain_taken`. Verification is what proves control, each tenant with its own selector.
 */
export async function createDomain(db: Db, ctx: DomainContext, tenantId: string, input: string): Promise<DomainView> {
  const name = normalizeDomainName(input);
  const id = newId();
  await withTransaction(db, async (tx) => {
    const taken = await tx.query(`SELECT tenant_id = $2 AS ours FROM sending_domains WHERE name = $1 AND (status = 'verified' OR tenant_id = $2)`, [name, tenantId]);
    if (taken.rows.some((r) => r.ours)) throw new DomainError('conflict', 'domain_exists', `${name} is already one of this tenant's domains`);
    if (taken.rows.length) throw new DomainError('conflict', 'domain_taken', `${name} is verified by another tenant of this engine; ask the operator`);
    const tracking = ctx.settings.trackingCnameTarget ? `${ctx.settings.trackingSubdomain}.${name}` : null;
    const inserted = await tx.query(
      `INSERT INTO sending_domains (id, tenant_id, name, return_path, tracking_host, next_check_at)
       VALUES ($1, $2, $3, $4, $5, now() + interval '1 minute') ON CONFLICT (tenant_id, name) DO NOTHING`,
      [id, tenantId, name, `${ctx.settings.returnPathSubdomain}.${name}`, tracking],
    );
    if (inserted.rowCount === 0) throw new DomainError('conflict', 'domain_exists', `${name} is already one of this tenant's domains`);
    await insertKey(tx, ctx, id, 'active');
  });
  return domainView(await loadDomain(db, tenantId, id), ctx.settings);
}

/** A domain's id from its id or its name (the CLI takes either). */
export async function domainId(db: Queryable, tenantId: string, idOrName: string): Promise<string> {
  if (UUID.test(idOrName)) return idOrName;
  const { rows } = await db.query<{ id: string }>('SELECT id FROM sending_domains WHERE tenant_id = $1 AND name = $2', [tenantId, normalizeDomainName(idOrName)]);
  if (!rows[0]) throw notFound(`domain ${idOrName.slice(0, 80)}`);
  return rows[0].id;
}

export async function getDomain(db: Queryable, ctx: DomainContext, tenantId: string, id: string): Promise<DomainView> {
  return domainView(await loadDomain(db, tenantId, id), ctx.settings);
}

/** Newest first, keyset pages on (created_at, id). */
export async function listDomainRows(db: Queryable, tenantId: string, options: { limit: number; cursor?: string; trackingOnly?: boolean }): Promise<Page<DomainRow>> {
  const after = decodeCursor(options.cursor, { t: 'time', i: 'uuid' });
  const params: unknown[] = [tenantId];
  const where = ['d.tenant_id = $1'];
  if (options.trackingOnly) where.push('d.tracking_host IS NOT NULL');
  if (after) {
    params.push(after.t, after.i);
    where.push(`(d.created_at, d.id) < ($2::timestamptz, $3::uuid)`);
  }
  params.push(options.limit + 1);
  const { rows } = await db
    .query<DomainRow>(`${SELECT_DOMAIN} WHERE ${where.join(' AND ')} ORDER BY d.created_at DESC, d.id DESC LIMIT $${params.length}`, params)
    .catch((err: { code?: string }) => {
      // A cursor whose timestamp looks right but is not a date (month 13): the client's input, not our fault.
      if (err.code?.startsWith('22')) throw invalid('malformed cursor: drop it and start from the first page', 'validation_failed');
      throw err;
    });
  const more = rows.length > options.limit;
  const data = more ? rows.slice(0, options.limit) : rows;
  const last = data[data.length - 1];
  return { data, nextCursor: more ? encodeCursor({ t: last.position, i: last.id }) : null };
}

export async function listDomains(db: Queryable, ctx: DomainContext, tenantId: string, options: { limit: number; cursor?: string }): Promise<Page<DomainView>> {
  const page = await listDomainRows(db, tenantId, options);
  return { data: page.data.map((r) => domainView(r, ctx.settings)), nextCursor: page.nextCursor };
}

/** Removes a domain, its keys and (if it was on it) the default sender. Mail from it is then refused. */
export async function deleteDomain(db: Queryable, tenantId: string, id: string): Promise<void> {
  if (!UUID.test(id)) throw notFound(`domain ${id.slice(0, 80)}`);
  const { rowCount } = await db.query('DELETE FROM sending_domains WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
  if (rowCount === 0) throw notFound(`domain ${id}`);
}

/**
 * Starts a DKIM rotation: a new key ("next") whose record is to be published beside the current
 * one. The current key keeps signing until a check finds the new record; then the new key signs
 * and the old one is dropped (its record may be removed).
 */
export async function rotateDkim(db: Db, ctx: DomainContext, tenantId: string, id: string): Promise<DomainView> {
  if (!UUID.test(id)) throw notFound(`domain ${id.slice(0, 80)}`);
  await withTransaction(db, async (tx) => {
    const { rows } = await tx.query<{ state: DkimKeyState; selector: string }>(
      `SELECT k.state, k.selector FROM sending_domains d JOIN domain_dkim_keys k ON k.domain_id = d.id
        WHERE d.tenant_id = $1 AND d.id = $2 FOR UPDATE OF d`,
      [tenantId, id],
    );
    if (!rows.length) throw notFound(`domain ${id}`);
    const next = rows.find((r) => r.state === 'next');
    if (next) throw new DomainError('conflict', 'rotation_in_progress', `a rotation is waiting for the record of selector ${next.selector}: publish it and verify`);
    await insertKey(tx, ctx, id, 'next');
    await tx.query(`UPDATE sending_domains SET next_check_at = now() + interval '1 minute' WHERE id = $1`, [id]);
  });
  return getDomain(db, ctx, tenantId, id);
}

/** When the scheduled check looks again: daily once verified, soon after a DNS error, with backoff while pending. */
function nextCheck(status: DomainStatus, checkingSince: Date, now: number): Date | null {
  if (status === 'verified') return new Date(now + VERIFIED_RECHECK_MS);
  if (status === 'temporary_failure') return new Date(now + TEMPORARY_RECHECK_MS);
  const age = now - checkingSince.getTime();
  if (age >= PENDING_GRACE_MS) return null;
  return new Date(now + Math.min(3_600_000, Math.max(60_000, age / 4)));
}

/**
 * Looks every record up and stores the outcome. Absent records are `pending` during the 72 h
 * after the domain was added (or re-verified by hand), `failed` after that and for a domain that
 * was verified: a removed record demotes it, and status_reason names the record. A rotation's
 * next key found in DNS becomes the signing key.
 */
export async function checkDomain(db: Db, ctx: DomainContext, checker: DnsChecker, row: DomainRow): Promise<DomainRow> {
  const now = Date.now();
  const grace = row.verified_at === null && now - row.checking_since.getTime() < PENDING_GRACE_MS;
  const records = expectedRecords(row, ctx.settings);
  let checks = await Promise.all(records.map(async (record) => ({ record, check: await checker.check(record, grace ? 'pending' : 'failed') })));
  const next = row.keys.find((k) => k.state === 'next');
  const promote = next !== undefined && checks.some((c) => c.record.selector === next.selector && c.check.status === 'verified');
  if (promote) {
    // The new key is live: it signs from now on, and is what the domain's status depends on.
    checks = checks
      .filter((c) => !(c.record.purpose === 'dkim' && c.record.selector !== next.selector))
      .map((c) => (c.record.selector === next.selector ? { ...c, record: { ...c.record, required: true } } : c));
  }
  let { status, reason } = overallStatus(checks);
  const recordStatus = Object.fromEntries(checks.map((c) => [recordKey(c.record), c.check]));
  const save = async () => {
    await withTransaction(db, async (tx) => {
      if (promote) {
        await tx.query(`DELETE FROM domain_dkim_keys WHERE domain_id = $1 AND state = 'active'`, [row.id]);
        await tx.query(`UPDATE domain_dkim_keys SET state = 'active' WHERE domain_id = $1 AND state = 'next'`, [row.id]);
      }
      await tx.query(
        `UPDATE sending_domains
            SET status = $2, status_reason = $3, record_status = $4, last_checked_at = now(), next_check_at = $5,
                -- A DNS error does not take a verified domain's standing away; a failed check does.
                verified_at = CASE WHEN $2 = 'verified' THEN coalesce(verified_at, now()) WHEN $2 = 'temporary_failure' THEN verified_at END,
                checking_since = CASE WHEN status = 'verified' AND $2 <> 'verified' THEN now() ELSE checking_since END
          WHERE id = $1`,
        [row.id, status, reason, recordStatus, nextCheck(status, row.checking_since, now)],
      );
    });
  };
  try {
    await save();
  } catch (err) {
    if ((err as { constraint?: string }).constraint !== 'sending_domains_verified_once') throw err;
    status = 'failed';
    reason = `${row.name} is verified by another tenant of this engine`;
    await save();
  }
  return (await db.query<DomainRow>(`${SELECT_DOMAIN} WHERE d.id = $1`, [row.id])).rows[0];
}

/** PUT /v1/domains/{id}/verify: checks now. A domain not verified gets a fresh 72 h of pending. */
export async function verifyDomain(db: Db, ctx: DomainContext, checker: DnsChecker, tenantId: string, id: string): Promise<DomainView> {
  const row = await loadDomain(db, tenantId, id);
  if (row.verified_at === null) {
    await db.query('UPDATE sending_domains SET checking_since = now() WHERE id = $1', [row.id]);
    row.checking_since = new Date();
  }
  return domainView(await checkDomain(db, ctx, checker, row), ctx.settings);
}

/**
 * The scheduled re-check: claims due domains in one statement (pushing their next check out, so
 * a concurrent worker skips them) and checks a few at a time. Returns how many were checked.
 */
export async function checkDueDomains(db: Db, ctx: DomainContext, checker: DnsChecker, batch = 50): Promise<number> {
  const { rows } = await db.query<DomainRow>(
    `WITH due AS (
       UPDATE sending_domains SET next_check_at = now() + interval '15 minutes'
        WHERE id IN (SELECT id FROM sending_domains WHERE next_check_at <= now() ORDER BY next_check_at LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING id
     )
     ${SELECT_DOMAIN} JOIN due ON due.id = d.id`,
    [batch],
  );
  let index = 0;
  const lane = async () => {
    while (index < rows.length) await checkDomain(db, ctx, checker, rows[index++]);
  };
  await Promise.all(Array.from({ length: Math.min(4, rows.length) }, lane));
  return rows.length;
}

/**
 * SQL scalar subquery: the verified tracking host (CNAME checked) of the tenant's domain covering a
 * From address, or NULL. For statements of other modules (the list job renderer) to compose.
 */
export const trackingHostFor = (tenantExpr: string, fromExpr: string) => `(
  SELECT d.tracking_host FROM sending_domains d
   WHERE d.tenant_id = ${tenantExpr} AND d.tracking_host IS NOT NULL
     AND d.record_status -> ('CNAME ' || d.tracking_host) ->> 'status' = 'verified'
     AND (lower(split_part(${fromExpr}, '@', 2)) = d.name OR lower(split_part(${fromExpr}, '@', 2)) LIKE '%.' || d.name)
   ORDER BY length(d.name) DESC LIMIT 1)`;

/**
 * Whether sends must come from a verified domain: REQUIRE_VERIFIED_DOMAIN (default on) when mail
 * really leaves (smtp, ses); the capture transport of the quick start stays permissive.
 */
export const verifiedDomainRequired = (config: Pick<Config, 'transport' | 'domains'>) => config.domains.requireVerified && config.transport !== 'capture';

/** The tenant's domain that covers an address (its domain or the nearest parent), if any. */
async function coveringDomain(db: Queryable, tenantId: string, address: string) {
  const domain = addressDomain(address);
  if (!domain) return { domain: null, row: undefined };
  const { rows } = await db.query<{ id: string; name: string; status: DomainStatus; status_reason: string | null; sendable: boolean }>(
    `SELECT id, name, status, status_reason, (status = 'verified' OR (status = 'temporary_failure' AND verified_at IS NOT NULL)) AS sendable
       FROM sending_domains WHERE tenant_id = $1 AND name = ANY($2) ORDER BY length(name) DESC`,
    [tenantId, domainAndParents(domain)],
  );
  return { domain, row: rows.find((r) => r.sendable) ?? rows[0] };
}

/**
 * Refuses mail from a domain the tenant has not verified (422 `domain_not_verified`), saying
 * which domain and what to do. A verified domain covers its subdomains.
 */
export async function assertVerifiedSender(db: Queryable, tenantId: string, from: string): Promise<void> {
  const { domain, row } = await coveringDomain(db, tenantId, from);
  if (row?.sendable) return;
  const name = domain ?? from.slice(from.lastIndexOf('@') + 1, 200);
  const state = row
    ? `${row.name} is ${row.status}${row.status_reason ? ` (${row.status_reason})` : ''}: publish its records and verify it (PUT /v1/domains/${row.id}/verify)`
    : `add it (POST /v1/domains {"name": "${name}"}), publish the DNS records the answer lists and verify it (PUT /v1/domains/{id}/verify)`;
  throw new DomainError('invalid', 'domain_not_verified', `${name} is not a verified sending domain of this tenant: ${state}. See docs/domains.md`);
}

/**
 * PATCH /v1/account {default_from}: the address list send jobs use without `from`. It must be
 * on one of the tenant's verified domains (or a subdomain); null clears it.
 */
export async function setDefaultSender(db: Queryable, tenantId: string, address: string | null): Promise<void> {
  if (address === null) {
    await db.query('DELETE FROM default_senders WHERE tenant_id = $1', [tenantId]);
    return;
  }
  const { domain, row } = await coveringDomain(db, tenantId, address);
  if (!domain) throw invalid(`default_from must be an email address`, 'validation_error');
  if (!row?.sendable) await assertVerifiedSender(db, tenantId, address);
  await db.query(
    `INSERT INTO default_senders (tenant_id, address, domain_id) VALUES ($1, $2, $3)
     ON CONFLICT (tenant_id) DO UPDATE SET address = EXCLUDED.address, domain_id = EXCLUDED.domain_id, updated_at = now()`,
    [tenantId, address, row!.id],
  );
}

export async function defaultSender(db: Queryable, tenantId: string): Promise<string | null> {
  const { rows } = await db.query<{ address: string }>('SELECT address FROM default_senders WHERE tenant_id = $1', [tenantId]);
  return rows[0]?.address ?? null;
}
