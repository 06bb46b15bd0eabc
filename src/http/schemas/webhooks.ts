import { DELIVERY_STATUSES, ENDPOINT_STATUSES, WEBHOOK_EVENT_TYPES } from '../../webhooks/event-types.ts';
import { dateTime, nullableDateTime, nullableString, Pagination, pageQuery } from '../read-api.ts';

/** Outbound webhook endpoints and deliveries (ours; docs/webhooks.md "Outbound webhooks"). */

const uuid = { type: 'string', format: 'uuid' } as const;
const url = { type: 'string', minLength: 1, maxLength: 2048 } as const;
const eventTypes = {
  type: ['array', 'null'],
  items: { type: 'string', enum: WEBHOOK_EVENT_TYPES },
  minItems: 1,
  maxItems: WEBHOOK_EVENT_TYPES.length,
  description: 'Event types delivered to the endpoint; null or absent: all of them.',
} as const;
const description = { type: ['string', 'null'], maxLength: 500 } as const;

export const CreateEndpointRequest = {
  type: 'object',
  required: ['url'],
  additionalProperties: false,
  properties: { url, event_types: eventTypes, description },
} as const;

export const UpdateEndpointRequest = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { url, event_types: eventTypes, description, status: { type: 'string', enum: ENDPOINT_STATUSES } },
} as const;

export const Endpoint = {
  type: 'object',
  required: ['id', 'url', 'event_types', 'description', 'status', 'disabled_reason', 'created_at', 'updated_at'],
  properties: {
    id: uuid,
    url: { type: 'string' },
    event_types: { type: ['array', 'null'], items: { type: 'string' } },
    description: nullableString,
    status: { type: 'string', enum: ENDPOINT_STATUSES },
    disabled_reason: { ...nullableString, description: 'Why the engine (410, five days of failures) or a caller disabled it.' },
    created_at: dateTime,
    updated_at: dateTime,
  },
} as const;

export const CreatedEndpoint = {
  type: 'object',
  required: [...Endpoint.required, 'secret'],
  properties: { ...Endpoint.properties, secret: { type: 'string', description: 'Signing secret (whsec_…), shown only here.' } },
} as const;

export const RotatedSecret = {
  type: 'object',
  required: ['id', 'secret', 'previous_secret_expires_at'],
  properties: {
    id: uuid,
    secret: { type: 'string', description: 'The new signing secret, shown only here.' },
    previous_secret_expires_at: { ...dateTime, description: 'Until then deliveries carry both signatures.' },
  },
} as const;

export const EndpointPage = { type: 'object', required: ['data', 'pagination'], properties: { data: { type: 'array', items: Endpoint }, pagination: Pagination } } as const;

export const Delivery = {
  type: 'object',
  required: ['id', 'endpoint_id', 'event_id', 'event_type', 'status', 'attempts', 'created_at'],
  properties: {
    id: uuid,
    endpoint_id: uuid,
    event_id: { ...uuid, description: 'Also the webhook-id header.' },
    event_type: { type: 'string' },
    status: { type: 'string', enum: DELIVERY_STATUSES },
    attempts: { type: 'integer' },
    response_status: { type: ['integer', 'null'] },
    latency_ms: { type: ['integer', 'null'] },
    response_excerpt: { ...nullableString, description: 'The start of the last answer body.' },
    error: nullableString,
    next_attempt_at: { ...nullableDateTime, description: 'When pending: the next attempt.' },
    last_attempt_at: nullableDateTime,
    delivered_at: nullableDateTime,
    created_at: { ...dateTime, description: 'When the event was created.' },
  },
} as const;

export const DeliveryPage = { type: 'object', required: ['data', 'pagination'], properties: { data: { type: 'array', items: Delivery }, pagination: Pagination } } as const;

export const endpointListQuery = { type: 'object', properties: { limit: pageQuery.limit, cursor: pageQuery.cursor } } as const;
export const deliveryListQuery = {
  type: 'object',
  properties: { limit: pageQuery.limit, cursor: pageQuery.cursor, status: { type: 'string', enum: DELIVERY_STATUSES } },
} as const;
export const idParams = { type: 'object', required: ['id'], properties: { id: uuid } } as const;
