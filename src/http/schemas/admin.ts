/** Schemas of the admin API (/v1/admin/*), guarded by ADMIN_TOKEN (src/http/routes/admin.ts). */

import { SCOPES } from '../../auth/scopes.ts';
import { RATE_PER_SECOND } from '../../jobs/jobs.ts';
import { Pagination, pageQuery } from '../read-api.ts';

const uuid = { type: 'string', format: 'uuid' } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;
const name = { type: 'string', minLength: 1, maxLength: 200 } as const;
const rate = { type: ['number', 'null'], minimum: RATE_PER_SECOND.min, maximum: RATE_PER_SECOND.max, description: 'messages per second for the tenant\'s newsletters; null: the engine default' } as const;

export const Tenant = {
  type: 'object',
  required: ['id', 'name', 'max_send_rate', 'sending_paused', 'sending_paused_at', 'sending_pause_reason', 'created_at'],
  properties: {
    id: uuid, name: { type: 'string' }, max_send_rate: { type: ['number', 'null'] },
    sending_paused: { type: 'boolean', description: 'newsletter sending paused (guardrail or operator); transactional sends go on' },
    sending_paused_at: nullableDateTime, sending_pause_reason: { type: ['string', 'null'] }, created_at: dateTime,
  },
} as const;

export const CreatedTenant = {
  type: 'object',
  required: [...Tenant.required, 'token'],
  properties: { ...Tenant.properties, token: { type: 'string', description: 'a live API key with the default scopes, shown once' } },
} as const;

export const TenantPage = { type: 'object', required: ['data', 'pagination'], properties: { data: { type: 'array', items: Tenant }, pagination: Pagination } } as const;
export const TenantsQuery = { type: 'object', additionalProperties: false, properties: { limit: pageQuery.limit, cursor: pageQuery.cursor } } as const;
export const CreateTenantRequest = { type: 'object', required: ['name'], additionalProperties: false, properties: { name, max_send_rate: rate } } as const;
export const UpdateTenantRequest = { type: 'object', additionalProperties: false, minProperties: 1, properties: { name, max_send_rate: rate } } as const;
export const PauseTenantRequest = { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } } } as const;

export const TenantParams = { type: 'object', required: ['id'], properties: { id: uuid } } as const;
export const KeyParams = { type: 'object', required: ['id', 'key_id'], properties: { id: uuid, key_id: uuid } } as const;
export const ClientParams = { type: 'object', required: ['id', 'client_id'], properties: { id: uuid, client_id: uuid } } as const;

const scopes = { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: Object.keys(SCOPES) } } as const;

export const CreateKeyRequest = {
  type: 'object',
  required: ['scopes'],
  additionalProperties: false,
  properties: { scopes, environment: { type: 'string', enum: ['live', 'test'], default: 'live' }, name },
} as const;

export const IssuedKey = {
  type: 'object',
  required: ['key_id', 'secret', 'prefix', 'scopes', 'environment'],
  properties: {
    key_id: uuid, secret: { type: 'string', description: 'shown once; only its hash is stored' }, prefix: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string' } }, environment: { type: 'string', enum: ['live', 'test'] },
    old_key_expires_at: { ...dateTime, description: 'rotation: the old secret keeps working until then' },
  },
} as const;

export const ApiKey = {
  type: 'object',
  required: ['key_id', 'name', 'prefix', 'scopes', 'environment', 'created_at', 'expires_at', 'revoked_at', 'rotated_from'],
  properties: {
    key_id: uuid, name: { type: 'string' }, prefix: { type: 'string' }, scopes: { type: 'array', items: { type: 'string' } },
    environment: { type: 'string', enum: ['live', 'test'] }, created_at: dateTime, expires_at: nullableDateTime, revoked_at: nullableDateTime,
    rotated_from: { type: ['string', 'null'], format: 'uuid' },
  },
} as const;
export const ApiKeyList = { type: 'object', required: ['data'], properties: { data: { type: 'array', items: ApiKey } } } as const;

export const WebhookClientSecret = {
  type: 'object',
  required: ['client_id', 'secret'],
  properties: { client_id: uuid, secret: { type: 'string', description: 'shown once' } },
} as const;
export const WebhookClient = {
  type: 'object',
  required: ['client_id', 'created_at', 'rotated_at', 'rotating'],
  properties: { client_id: uuid, created_at: dateTime, rotated_at: nullableDateTime, rotating: { type: 'boolean', description: 'the previous secret is still accepted (retire it when the Member Center signs with the new one)' } },
} as const;
export const WebhookClientList = { type: 'object', required: ['data'], properties: { data: { type: 'array', items: WebhookClient } } } as const;
