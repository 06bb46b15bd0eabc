/**
 * JSON Schemas of the Member Center webhooks, as in the contract
 * (shared/spec/send-engine.openapi.yaml: SubscriptionEvent, SubscriberPayload, FullSyncBatch),
 * and of GET /api/lists/{id}, which is ours.
 */

import { OPT_OUT_SOURCES } from '../../lists/opt-out.ts';

const uuid = { type: 'string', format: 'uuid' } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
/** Batches of one full sync: beyond the integer columns' range a number is a client error, not a 500. */
const MAX_BATCHES = 1_000_000;

export const SubscriberPayload = {
  type: 'object',
  required: ['id', 'email', 'status'],
  properties: {
    id: uuid,
    email: { type: 'string', format: 'email' },
    status: { type: 'string', enum: ['active', 'unsubscribed', 'bounced', 'complaint', 'suppressed'] },
    preferences: { type: 'object', additionalProperties: true },
  },
} as const;

export const SubscriptionEvent = {
  type: 'object',
  required: ['event_id', 'event_type', 'tenant_id', 'list_id', 'subscriber', 'occurred_at'],
  properties: {
    event_id: uuid,
    event_type: { type: 'string', enum: ['subscription.activated', 'subscription.unsubscribed', 'preferences.updated'] },
    tenant_id: uuid,
    list_id: uuid,
    subscriber: SubscriberPayload,
    occurred_at: dateTime,
  },
} as const;

export const FullSyncBatch = {
  type: 'object',
  required: ['sync_id', 'batch_no', 'batch_total', 'tenant_id', 'list_id', 'subscribers', 'occurred_at'],
  properties: {
    sync_id: uuid,
    batch_no: { type: 'integer', minimum: 1, maximum: MAX_BATCHES },
    batch_total: { type: 'integer', minimum: 1, maximum: MAX_BATCHES },
    tenant_id: uuid,
    list_id: uuid,
    subscribers: { type: 'array', items: SubscriberPayload },
    occurred_at: dateTime,
  },
} as const;

export const WebhookAccepted = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['accepted'] },
    applied: { type: 'boolean', description: 'false when the event was older than the state it would change' },
    sync_state: { type: 'string', enum: ['receiving', 'completed', 'superseded'] },
    batches_received: { type: 'integer' },
    batch_total: { type: 'integer' },
    removed: { type: 'integer' },
    kept_unsubscribed: {
      type: 'integer',
      description: 'members this sync listed as active (so far) who stay unsubscribed: they opted out at the engine (one-click, link, complaint, API)',
    },
  },
} as const;

const count = { type: 'integer', minimum: 0 } as const;

export const ListDetail = {
  type: 'object',
  required: ['id', 'created_at', 'synced_at', 'members', 'last_sync'],
  properties: {
    id: uuid,
    created_at: dateTime,
    synced_at: { type: ['string', 'null'], format: 'date-time' },
    members: {
      type: 'object',
      required: ['total', 'active', 'unsubscribed', 'bounced', 'complaint', 'suppressed'],
      properties: { total: count, active: count, unsubscribed: count, bounced: count, complaint: count, suppressed: count },
    },
    last_sync: {
      type: ['object', 'null'],
      properties: {
        sync_id: uuid,
        state: { type: 'string', enum: ['receiving', 'completed', 'superseded'] },
        occurred_at: dateTime,
        batch_total: count,
        batches_received: count,
        subscribers_received: count,
        removed: { type: ['integer', 'null'] },
        kept_unsubscribed: { ...count, description: 'members this sync listed as active who stay unsubscribed after an engine opt-out' },
        started_at: dateTime,
        completed_at: { type: ['string', 'null'], format: 'date-time' },
      },
    },
  },
} as const;

export const MemberParams = {
  type: 'object',
  required: ['id', 'subscriber_id'],
  properties: { id: uuid, subscriber_id: uuid },
} as const;

export const MemberOptOut = {
  type: 'object',
  required: ['list_id', 'subscriber_id', 'status', 'changed', 'opted_out_at', 'opt_out_source'],
  properties: {
    list_id: uuid,
    subscriber_id: uuid,
    status: { type: 'string', enum: ['active', 'unsubscribed', 'bounced', 'complaint', 'suppressed'] },
    changed: { type: 'boolean', description: 'true when this request unsubscribed an active member; false when it was not active' },
    opted_out_at: { type: ['string', 'null'], format: 'date-time', description: 'the standing engine opt-out, if any: only a later subscription.activated undoes it' },
    opt_out_source: { type: ['string', 'null'], enum: [...OPT_OUT_SOURCES, null] },
  },
} as const;
