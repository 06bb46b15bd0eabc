import { ATTACHMENT_LIMITS } from '../../sending/attachments.ts';
import { MAX_SEND_PAGE } from '../../observability/sends.ts';

/**
 * useSend's request shapes (../shared/reference/usesend.openapi.json), validated without `anyOf`:
 * an address field is one address or an array of them, checked by the keyword that applies to
 * each type. Unknown properties are refused (400 naming them), never dropped.
 */
const email = { type: 'string', format: 'email', maxLength: 254 } as const;
const addresses = (maxItems: number) => ({
  type: ['string', 'array'], format: 'email', maxLength: 254, items: email, minItems: 1, maxItems,
  description: 'An address or an array of addresses',
}) as const;

const emailProperties = {
  to: addresses(1000),
  from: email,
  subject: { type: 'string', minLength: 1, maxLength: 998, description: 'Optional with templateId' },
  templateId: { type: 'string', minLength: 1, maxLength: 100, description: 'A stored template (/v1/templates id or slug)' },
  variables: { type: 'object', additionalProperties: { type: 'string' } },
  replyTo: addresses(10),
  cc: addresses(50),
  bcc: addresses(50),
  text: { type: ['string', 'null'] },
  html: { type: ['string', 'null'] },
  headers: { type: 'object', additionalProperties: { type: 'string', minLength: 1 } },
  attachments: {
    type: 'array',
    maxItems: ATTACHMENT_LIMITS.count,
    items: {
      type: 'object',
      required: ['filename', 'content'],
      additionalProperties: false,
      properties: { filename: { type: 'string', minLength: 1, maxLength: 255 }, content: { type: 'string', minLength: 1, description: 'Base64' } },
    },
  },
  scheduledAt: { type: 'string', format: 'date-time' },
  inReplyToId: { type: ['string', 'null'], maxLength: 100, description: 'Refused unless null (400 unsupported_field)' },
} as const;

export const EmailBody = { type: 'object', required: ['to', 'from'], additionalProperties: false, properties: emailProperties } as const;

export const BatchBody = { type: 'array', minItems: 1, maxItems: 100, items: EmailBody } as const;

export const RescheduleBody = { type: 'object', required: ['scheduledAt'], additionalProperties: false, properties: { scheduledAt: emailProperties.scheduledAt } } as const;

export const EmailList = {
  type: 'object',
  properties: {
    page: { type: 'integer', minimum: 1, maximum: MAX_SEND_PAGE, default: 1 },
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 50 },
    startDate: { type: 'string', format: 'date-time' },
    endDate: { type: 'string', format: 'date-time' },
    domainId: { type: 'string', maxLength: 64, description: 'Refused (400 unsupported_field)' },
  },
} as const;

export const CreateDomainBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1, maxLength: 253 }, region: { type: 'string', maxLength: 64, description: 'Answered back; the engine sends through its own transport' } },
} as const;

export const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } as const;

export const idempotencyHeader = {
  type: 'object',
  properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 255 } },
} as const;

/** useSend's answers, passed through as built (src/compat/usesend/translate.ts). */
export const UseSendObject = { type: 'object', additionalProperties: true } as const;
