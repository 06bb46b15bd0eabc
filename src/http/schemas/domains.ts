/**
 * Schemas of the sending-domain routes (src/http/routes/domains.ts): our /v1/domains resource and
 * the SendOps-shaped read views /v1/identities and /v1/tracking-domains.
 */
import { DOMAIN_STATUSES, RECORD_PURPOSES } from '../../domains/status.ts';
import { dateTime, nullableDateTime, nullableString, Pagination } from '../read-api.ts';

const status = { type: 'string', enum: [...DOMAIN_STATUSES] } as const;

export const DnsRecord = {
  type: 'object',
  required: ['type', 'name', 'value', 'purpose', 'status'],
  properties: {
    type: { type: 'string', enum: ['TXT', 'MX', 'CNAME'] },
    name: { type: 'string' },
    value: { type: 'string' },
    priority: { type: 'integer', description: 'MX preference' },
    purpose: { type: 'string', enum: [...RECORD_PURPOSES] },
    required: { type: 'boolean', description: 'Needed for the domain to be verified' },
    status,
    detail: { ...nullableString, description: 'What the last check found' },
  },
} as const;

export const Domain = {
  type: 'object',
  required: ['id', 'name', 'status', 'dns_records', 'created_at'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string', description: 'ASCII (IDNA) form' },
    status,
    status_reason: { ...nullableString, description: 'The first record standing in the way, and why' },
    return_path: { type: 'string', description: 'Host of the envelope sender (MAIL FROM)' },
    dkim_selector: { type: 'string', description: 'Selector of the key that signs' },
    tracking_host: nullableString,
    dns_records: { type: 'array', items: DnsRecord },
    created_at: dateTime,
    verified_at: nullableDateTime,
    last_checked_at: nullableDateTime,
    next_check_at: nullableDateTime,
  },
} as const;

export const DomainPage = { type: 'object', required: ['data', 'pagination'], properties: { data: { type: 'array', items: Domain }, pagination: Pagination } } as const;

export const CreateDomainRequest = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1, maxLength: 253 } },
} as const;

export const Identity = {
  type: 'object',
  required: ['identity', 'type', 'verification_status', 'dkim_status', 'created_at'],
  properties: {
    identity: { type: 'string' },
    type: { type: 'string', enum: ['email', 'domain'] },
    verification_status: status,
    dkim_status: status,
    mail_from_domain: nullableString,
    created_at: dateTime,
  },
} as const;

export const IdentityPage = { type: 'object', required: ['data', 'pagination'], properties: { data: { type: 'array', items: Identity }, pagination: Pagination } } as const;

export const TrackingDomain = {
  type: 'object',
  required: ['domain', 'status', 'dns_records', 'created_at', 'verified_at'],
  properties: {
    domain: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'verified', 'failed'] },
    ssl_status: { ...nullableString, description: 'Always null: TLS is terminated by the operator at TRACKING_CNAME_TARGET' },
    dns_records: {
      type: 'array',
      items: { type: 'object', required: ['type', 'name', 'value'], properties: { type: { type: 'string' }, name: { type: 'string' }, value: { type: 'string' } } },
    },
    created_at: dateTime,
    verified_at: nullableDateTime,
  },
} as const;

export const TrackingDomainPage = {
  type: 'object',
  required: ['data', 'pagination'],
  properties: { data: { type: 'array', items: TrackingDomain }, pagination: Pagination },
} as const;

export const UpdateAccountRequest = {
  type: 'object',
  required: ['default_from'],
  additionalProperties: false,
  properties: {
    default_from: { type: ['string', 'null'], format: 'email', maxLength: 254, description: 'An address on a verified domain; null clears it' },
  },
} as const;
