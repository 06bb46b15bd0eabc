/** Schemas of /v1/lists (API-owned lists), their contacts and imports (src/lists/contacts.ts, import.ts). */

import { LIST_OWNERS } from '../../lists/contacts.ts';
import { IMPORT_STATUSES, MAX_INVALID_REPORTED } from '../../lists/import.ts';
import { MEMBER_STATUSES } from '../../lists/store.ts';
import { Pagination, pageQuery } from '../read-api.ts';

const uuid = { type: 'string', format: 'uuid' } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const email = { type: 'string', format: 'email', maxLength: 254 } as const;
const name = { type: 'string', minLength: 1, maxLength: 200 } as const;
const count = { type: 'integer', minimum: 0 } as const;

export const DoubleOptIn = {
  type: 'object',
  required: ['enabled'],
  additionalProperties: false,
  description: 'New contacts are pending until they confirm through a signed link sent in this message; html must contain {{ confirm_url }}.',
  properties: {
    enabled: { type: 'boolean' },
    from: email,
    subject: { type: 'string', minLength: 1, maxLength: 998 },
    html: { type: 'string', minLength: 1, maxLength: 500_000 },
  },
} as const;

export const CreateListRequest = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name, double_opt_in: DoubleOptIn },
} as const;

export const UpdateListRequest = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { name, double_opt_in: { ...DoubleOptIn, type: ['object', 'null'], description: 'null turns double opt-in off' } },
} as const;

export const ListResource = {
  type: 'object',
  required: ['id', 'name', 'owner', 'double_opt_in', 'members', 'created_at', 'updated_at'],
  properties: {
    id: uuid,
    name: { type: ['string', 'null'] },
    owner: { type: 'string', enum: [...LIST_OWNERS], description: 'api: written through /v1/lists; member_center: written by its signed webhooks only' },
    double_opt_in: { ...DoubleOptIn, type: ['object', 'null'] },
    members: {
      type: 'object',
      required: ['total', ...MEMBER_STATUSES],
      properties: Object.fromEntries(['total', ...MEMBER_STATUSES].map((k) => [k, count])),
    },
    created_at: dateTime,
    updated_at: dateTime,
  },
} as const;

export const ListPage = { type: 'object', required: ['data', 'pagination'], properties: { data: { type: 'array', items: ListResource }, pagination: Pagination } } as const;

export const ListsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { limit: pageQuery.limit, cursor: pageQuery.cursor, owner: { type: 'string', enum: [...LIST_OWNERS] } },
} as const;

const properties = { type: 'object', additionalProperties: true, maxProperties: 200, description: 'free-form; in templates as {{ contact.<name> }}' } as const;
const personName = { type: ['string', 'null'], maxLength: 200 } as const;

export const ContactInput = {
  type: 'object',
  required: ['email'],
  additionalProperties: false,
  properties: {
    email,
    first_name: personName,
    last_name: personName,
    properties,
    subscribed: { type: 'boolean', description: 'false opts the contact out (final); true never re-subscribes a contact whose opt-out stands' },
  },
} as const;

export const ContactPatch = { ...ContactInput, required: [], minProperties: 1 } as const;

export const Contact = {
  type: 'object',
  required: ['id', 'list_id', 'email', 'first_name', 'last_name', 'properties', 'status', 'opted_out_at', 'created_at', 'updated_at'],
  properties: {
    id: uuid,
    list_id: uuid,
    email: { type: 'string' },
    first_name: { type: ['string', 'null'] },
    last_name: { type: ['string', 'null'] },
    properties: { type: 'object', additionalProperties: true },
    status: { type: 'string', enum: [...MEMBER_STATUSES] },
    opted_out_at: { type: ['string', 'null'], format: 'date-time' },
    created_at: dateTime,
    updated_at: dateTime,
  },
} as const;

export const ContactPage = { type: 'object', required: ['data', 'pagination'], properties: { data: { type: 'array', items: Contact }, pagination: Pagination } } as const;

export const ContactsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { limit: pageQuery.limit, cursor: pageQuery.cursor, email: { type: 'string', maxLength: 254 }, status: { type: 'string', enum: [...MEMBER_STATUSES] } },
} as const;

export const ListParams = { type: 'object', required: ['id'], properties: { id: uuid } } as const;
export const ContactParams = { type: 'object', required: ['id', 'contact_id'], properties: { id: uuid, contact_id: uuid } } as const;

export const ContactImport = {
  type: 'object',
  required: ['id', 'list_id', 'format', 'status', 'rows_received', 'rows_invalid', 'created', 'updated', 'kept_unsubscribed', 'invalid_rows', 'error', 'created_at', 'finished_at'],
  properties: {
    id: uuid,
    list_id: uuid,
    format: { type: 'string', enum: ['csv', 'jsonl'] },
    status: { type: 'string', enum: [...IMPORT_STATUSES] },
    rows_received: count,
    rows_invalid: { ...count, description: 'rows skipped: no valid email, a bad subscribed value, text PostgreSQL cannot store' },
    created: count,
    updated: count,
    kept_unsubscribed: { ...count, description: 'rows asking subscribed=true whose opt-out stands' },
    invalid_rows: {
      type: 'array',
      description: `the first ${MAX_INVALID_REPORTED} invalid rows: the line of the file where the row ends (1-based; a CSV header is line 1) and why it was skipped`,
      items: { type: 'object', required: ['line', 'reason'], properties: { line: { type: 'integer', minimum: 1 }, reason: { type: 'string' } } },
    },
    error: { type: ['string', 'null'] },
    created_at: dateTime,
    finished_at: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;
