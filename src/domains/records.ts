import type { DomainSettings } from '../config.ts';
import { dkimRecordValue } from './keys.ts';
import type { DkimKeyState, DomainStatus, RecordPurpose } from './status.ts';

/** A DNS record we ask the domain's owner to publish (or, for DMARC, to have). */
export interface ExpectedRecord {
  type: 'TXT' | 'MX' | 'CNAME';
  name: string;
  value: string;
  priority?: number;
  purpose: RecordPurpose;
  /** Needed for the domain to be verified (a rotation's next key and tracking are not). */
  required: boolean;
  /** The DKIM key's selector, for DKIM records. */
  selector?: string;
}

export interface DomainShape {
  name: string;
  return_path: string;
  tracking_host: string | null;
  keys: Array<{ selector: string; state: DkimKeyState; public_key: string }>;
}

/** Key of a record in sending_domains.record_status. */
export const recordKey = (r: Pick<ExpectedRecord, 'type' | 'name'>) => `${r.type} ${r.name}`;

/** The DMARC record we suggest when there is none: reports off, policy none (the minimum bulk senders need). */
export const SUGGESTED_DMARC = 'v=DMARC1; p=none;';

/**
 * Every record for a domain, in the order a person publishes them: DKIM (the active key, then a
 * rotation's next one), the return path's MX and SPF, DMARC, tracking.
 */
export function expectedRecords(domain: DomainShape, settings: Pick<DomainSettings, 'returnPathMx' | 'spfMechanisms' | 'trackingCnameTarget'>): ExpectedRecord[] {
  const keys = [...domain.keys].sort((a, b) => (a.state === b.state ? 0 : a.state === 'active' ? -1 : 1));
  const records: ExpectedRecord[] = keys.map((k) => ({
    type: 'TXT',
    name: `${k.selector}._domainkey.${domain.name}`,
    value: dkimRecordValue(k.public_key),
    purpose: 'dkim',
    required: k.state === 'active',
    selector: k.selector,
  }));
  records.push(
    { type: 'MX', name: domain.return_path, value: settings.returnPathMx, priority: 10, purpose: 'return_path', required: true },
    { type: 'TXT', name: domain.return_path, value: `v=spf1 ${settings.spfMechanisms.join(' ')} ~all`, purpose: 'spf', required: true },
    { type: 'TXT', name: `_dmarc.${domain.name}`, value: SUGGESTED_DMARC, purpose: 'dmarc', required: true },
  );
  if (domain.tracking_host && settings.trackingCnameTarget) {
    records.push({ type: 'CNAME', name: domain.tracking_host, value: settings.trackingCnameTarget, purpose: 'tracking', required: false });
  }
  return records;
}

export interface RecordCheck {
  status: Exclude<DomainStatus, 'not_started'>;
  detail: string;
}

/**
 * The domain's status from its required records: any failed -> failed; else any temporary
 * failure -> temporary_failure; else any pending -> pending; else verified.
 */
export function overallStatus(checks: Array<{ record: ExpectedRecord; check: RecordCheck }>): { status: DomainStatus; reason: string | null } {
  const required = checks.filter((c) => c.record.required);
  for (const status of ['failed', 'temporary_failure', 'pending'] as const) {
    const first = required.find((c) => c.check.status === status);
    if (first) return { status, reason: `${first.record.purpose} ${first.record.type} record at ${first.record.name}: ${first.check.detail}` };
  }
  return { status: 'verified', reason: null };
}
