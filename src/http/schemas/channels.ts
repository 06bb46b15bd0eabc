import { CHANNEL_STATES, SENDER_ID_STATUSES, SMS_FLOWS } from '../../channels/types.ts';
import { dateTime, nullableDateTime, nullableString } from '../read-api.ts';

/** SMS and WhatsApp (docs/sms.md, docs/whatsapp.md): camelCase, as the reference's /v1/sms and /v1/whatsapp. */

const uuid = { type: 'string', format: 'uuid' } as const;
const phone = { type: 'string', minLength: 2, maxLength: 32, description: 'E.164: + and country code' } as const;
const idempotencyKey = { type: 'string', minLength: 1, maxLength: 255 } as const;

export const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } } as const;

export const SmsSendRequest = {
  type: 'object',
  required: ['to', 'body', 'senderId', 'flow'],
  additionalProperties: false,
  properties: {
    to: phone,
    body: { type: 'string', minLength: 1, maxLength: 1600 },
    senderId: { type: 'string', minLength: 1, maxLength: 16, description: 'An approved sender id (GET /v1/sms/sender-ids)' },
    flow: { type: 'string', enum: SMS_FLOWS, description: 'OTP: claimed first, expires after SMS_OTP_VALIDITY_SECONDS unsent' },
    idempotency_key: idempotencyKey,
  },
} as const;

export const Accepted = {
  type: 'object',
  required: ['id', 'status', 'replayed'],
  properties: {
    id: uuid,
    status: { type: 'string', enum: ['QUEUED'] },
    replayed: { type: 'boolean', description: 'The idempotency key matched an earlier identical request: nothing new was queued.' },
    segments: { type: 'integer' },
    encoding: { type: 'string', enum: ['GSM-7', 'UCS-2'] },
  },
} as const;

const template = {
  type: 'object',
  required: ['name', 'language'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 512 },
    language: { type: 'string', minLength: 2, maxLength: 15, description: 'e.g. en_US' },
    components: { type: 'array', maxItems: 20, items: { type: 'object' }, description: 'Graph API template components with their parameters' },
  },
} as const;

export const WhatsAppSendRequest = {
  type: 'object',
  required: ['to', 'type'],
  additionalProperties: false,
  properties: {
    to: phone,
    type: { type: 'string', enum: ['template', 'text'] },
    template,
    text: { type: 'string', minLength: 1, maxLength: 4096, description: 'Session message: only within 24 h of the handset\'s last message' },
    idempotency_key: idempotencyKey,
  },
} as const;

export const ChannelMessage = {
  type: 'object',
  required: ['id', 'channel', 'to', 'status', 'engineStatus', 'createdAt'],
  properties: {
    id: uuid,
    channel: { type: 'string', enum: ['sms', 'whatsapp'] },
    to: { type: 'string' },
    status: { type: 'string', enum: CHANNEL_STATES },
    engineStatus: { type: 'string', description: 'queued, sending, sent, delivered, opened (read), failed, expired, suppressed (opted out), cancelled' },
    body: nullableString,
    senderId: nullableString,
    flow: { type: ['string', 'null'] },
    segments: { type: ['integer', 'null'] },
    encoding: nullableString,
    template: { type: ['object', 'null'], additionalProperties: true },
    phoneNumberId: nullableString,
    externalId: { ...nullableString, description: "The provider's message id" },
    attempts: { type: 'integer' },
    error: nullableString,
    createdAt: dateTime,
    sentAt: nullableDateTime,
    expiresAt: nullableDateTime,
    updatedAt: dateTime,
  },
} as const;

export const ChannelPage = {
  type: 'object',
  required: ['data', 'page', 'pageSize', 'total'],
  properties: {
    data: { type: 'array', items: ChannelMessage },
    page: { type: 'integer' },
    pageSize: { type: 'integer' },
    total: { type: ['integer', 'null'], description: 'Matching messages; null when the page is past the end' },
  },
} as const;

export const Timeline = {
  type: 'object',
  required: ['id', 'status', 'events'],
  properties: {
    id: uuid,
    status: { type: 'string', enum: CHANNEL_STATES },
    events: {
      type: 'array',
      items: {
        type: 'object',
        required: ['type', 'occurredAt'],
        properties: { type: { type: 'string' }, occurredAt: dateTime, data: { type: 'object', additionalProperties: true } },
      },
    },
  },
} as const;

const pageParams = {
  page: { type: 'integer', minimum: 1, maximum: 100000, default: 1 },
  pageSize: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
  status: { type: 'string', enum: CHANNEL_STATES },
  query: { type: 'string', minLength: 1, maxLength: 200, description: 'Part of the recipient, the body or the provider id' },
} as const;

export const smsListQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { ...pageParams, flow: { type: 'string', enum: SMS_FLOWS } },
} as const;
export const whatsappListQuery = { type: 'object', additionalProperties: false, properties: pageParams } as const;

export const SenderIdRequestBody = {
  type: 'object',
  required: ['senderId'],
  additionalProperties: false,
  properties: { senderId: { type: 'string', minLength: 1, maxLength: 16 }, purpose: { type: 'string', maxLength: 500 } },
} as const;

export const ReviewBody = {
  type: 'object',
  required: ['decision'],
  additionalProperties: false,
  properties: { decision: { type: 'string', enum: ['approve', 'reject'] }, note: { type: 'string', maxLength: 500 } },
} as const;

export const SenderId = {
  type: 'object',
  required: ['id', 'sender_id', 'status', 'created_at'],
  properties: {
    id: uuid,
    sender_id: { type: 'string' },
    status: { type: 'string', enum: SENDER_ID_STATUSES },
    purpose: nullableString,
    review_note: nullableString,
    created_at: dateTime,
    reviewed_at: nullableDateTime,
  },
} as const;

export const SenderIdList = { type: 'object', required: ['data'], properties: { data: { type: 'array', items: SenderId } } } as const;

export const WhatsAppLine = {
  type: 'object',
  required: ['whatsappPhoneNumberId', 'hasAccessToken', 'usesPlatformDefault', 'platformLineConfigured'],
  properties: {
    whatsappPhoneNumberId: nullableString,
    hasAccessToken: { type: 'boolean', description: 'The token itself is never shown' },
    usesPlatformDefault: { type: 'boolean' },
    platformLineConfigured: { type: 'boolean' },
  },
} as const;

export const WhatsAppLinePatch = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    whatsappPhoneNumberId: { type: ['string', 'null'], minLength: 1, maxLength: 32 },
    whatsappAccessToken: { type: ['string', 'null'], minLength: 1, maxLength: 4096 },
  },
} as const;

export const DlrBody = {
  type: 'object',
  required: ['id', 'status'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 200, description: "The provider's message id (submit_sm_resp message_id)" },
    status: { type: 'string', minLength: 1, maxLength: 40, description: 'DELIVRD, UNDELIV, REJECTD, EXPIRED, DELETED (or delivered / failed)' },
    err: { type: 'string', maxLength: 40 },
  },
} as const;

export const InboundSmsBody = {
  type: 'object',
  required: ['from', 'to', 'text'],
  properties: {
    from: { type: 'string', minLength: 1, maxLength: 32, description: 'The handset (E.164)' },
    to: { type: 'string', minLength: 1, maxLength: 32, description: 'The sender id or number it answered' },
    text: { type: 'string', maxLength: 1600 },
  },
} as const;

export const tokenQuery = { type: 'object', properties: { token: { type: 'string', maxLength: 256 } } } as const;

export const Received = { type: 'object', required: ['received'], properties: { received: { type: 'integer' } } } as const;
