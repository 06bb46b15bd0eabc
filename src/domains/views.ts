import type { DomainSettings } from '../config.ts';
import type { Queryable } from '../db/pool.ts';
import { DomainError } from '../errors.ts';
import type { Page } from '../observability/messages.ts';
import { listDomainRows, SELECT_DOMAIN, type DomainRow } from './domains.ts';
import { normalizeDomainName } from './names.ts';
import { expectedRecords, recordKey } from './records.ts';
import type { DomainStatus } from './status.ts';

/**
 * The SendOps reference's read views over the same sending_domains rows: each domain is a
 * `domain` identity; each domain with a tracking host is a tracking domain.
 */

export interface IdentityView {
  identity: string;
  type: 'domain';
  verification_status: DomainStatus;
  dkim_status: DomainStatus;
  mail_from_domain: string;
  created_at: string;
}

export interface TrackingDomainView {
  domain: string;
  status: 'pending' | 'verified' | 'failed';
  ssl_status: null;
  dns_records: Array<{ type: string; name: string; value: string }>;
  created_at: string;
  verified_at: string | null;
}

const notFound = (what: string) => new DomainError('not_found', 'not_found', `${what} is not one of this tenant's ${what.includes('@') ? 'identities' : 'domains'}`);

function identityView(row: DomainRow, settings: DomainSettings): IdentityView {
  const dkim = expectedRecords(row, settings).find((r) => r.purpose === 'dkim' && r.required);
  return {
    identity: row.name,
    type: 'domain',
    verification_status: row.status,
    dkim_status: (dkim && row.record_status[recordKey(dkim)]?.status) || 'not_started',
    mail_from_domain: row.return_path,
    created_at: row.created_at.toISOString(),
  };
}

function trackingView(row: DomainRow, settings: DomainSettings): TrackingDomainView {
  const records = expectedRecords(row, settings);
  const cname = records.find((r) => r.purpose === 'tracking');
  const dkim = records.filter((r) => r.purpose === 'dkim' && r.required);
  const states = [cname, ...dkim].map((r) => (r ? row.record_status[recordKey(r)]?.status : undefined));
  // The reference's coalesced status: verified when every record is, failed on any failure, else pending.
  const status = states.every((s) => s === 'verified') ? 'verified' : states.includes('failed') ? 'failed' : 'pending';
  return {
    domain: row.tracking_host!,
    status,
    ssl_status: null,
    dns_records: [cname, ...dkim].filter((r) => r !== undefined).map((r) => ({ type: r.type, name: r.name, value: r.value })),
    created_at: row.created_at.toISOString(),
    verified_at: status === 'verified' ? (row.last_checked_at?.toISOString() ?? null) : null,
  };
}


export async function listIdentities(db: Queryable, settings: DomainSettings, tenantId: string, options: { limit: number; cursor?: string }): Promise<Page<IdentityView>> {
  const page = await listDomainRows(db, tenantId, options);
  return { data: page.data.map((r) => identityView(r, settings)), nextCursor: page.nextCursor };
}

/** One identity by domain name, case-insensitively (IDNA too). Addresses are not identities here: 404. */
export async function getIdentity(db: Queryable, settings: DomainSettings, tenantId: string, identity: string): Promise<IdentityView> {
  let name: string;
  try {
    name = normalizeDomainName(identity);
  } catch {
    throw notFound(identity.slice(0, 200));
  }
  const { rows } = await db.query<DomainRow>(`${SELECT_DOMAIN} WHERE d.tenant_id = $1 AND d.name = $2`, [tenantId, name]);
  if (!rows[0]) throw notFound(name);
  return identityView(rows[0], settings);
}

export async function listTrackingDomains(db: Queryable, settings: DomainSettings, tenantId: string, options: { limit: number; cursor?: string }): Promise<Page<TrackingDomainView>> {
  const page = await listDomainRows(db, tenantId, { ...options, trackingOnly: true });
  return { data: page.data.map((r) => trackingView(r, settings)), nextCursor: page.nextCursor };
}

export async function getTrackingDomain(db: Queryable, settings: DomainSettings, tenantId: string, host: string): Promise<TrackingDomainView> {
  let name: string;
  try {
    name = normalizeDomainName(host);
  } catch {
    throw notFound(host.slice(0, 200));
  }
  const { rows } = await db.query<DomainRow>(`${SELECT_DOMAIN} WHERE d.tenant_id = $1 AND d.tracking_host = $2`, [tenantId, name]);
  if (!rows[0]) throw notFound(name);
  return trackingView(rows[0], settings);
}
