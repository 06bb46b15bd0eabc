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

/** Deepest page the contact and campaign listings serve: they walk cursors to reach a numbered page. */
export const MAX_PAGE = 100;

const bookFields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  emoji: { type: 'string', maxLength: 16, description: 'Refused unless empty' },
  properties: { type: 'object', additionalProperties: { type: 'string' }, description: 'Refused unless empty' },
  doubleOptInEnabled: { type: 'boolean' },
  doubleOptInFrom: { type: ['string', 'null'], format: 'email', maxLength: 254 },
  doubleOptInSubject: { type: 'string', minLength: 1, maxLength: 998 },
  doubleOptInContent: { type: 'string', description: 'Refused (useSend editor JSON)' },
} as const;
export const BookBody = { type: 'object', required: ['name'], additionalProperties: false, properties: bookFields } as const;
export const BookPatch = { type: 'object', additionalProperties: false, properties: bookFields } as const;
const uuid = { type: 'string', format: 'uuid' } as const;
export const BookParam = { type: 'object', required: ['contactBookId'], properties: { contactBookId: uuid } } as const;
export const ContactParam = {
  type: 'object',
  required: ['contactBookId', 'contactId'],
  properties: { contactBookId: uuid, contactId: uuid },
} as const;
/** PUT upserts by email: the id in the path is not looked at (useSend's SDK always sends one). */
export const ContactUpsertParam = {
  type: 'object',
  required: ['contactBookId', 'contactId'],
  properties: { contactBookId: uuid, contactId: { type: 'string', minLength: 1, maxLength: 100 } },
} as const;

const contactFields = {
  email,
  firstName: { type: 'string', maxLength: 200 },
  lastName: { type: 'string', maxLength: 200 },
  properties: { type: 'object', additionalProperties: { type: 'string' }, maxProperties: 200 },
  subscribed: { type: 'boolean', description: 'false opts the contact out (final, as on /v1/lists)' },
} as const;
export const ContactBody = { type: 'object', required: ['email'], additionalProperties: false, properties: contactFields } as const;
const { email: _email, ...patchable } = contactFields;
export const ContactPatchBody = { type: 'object', additionalProperties: false, properties: patchable } as const;

export const ContactList = {
  type: 'object',
  properties: {
    emails: { type: 'string', maxLength: 2000, description: 'One address (several are refused)' },
    ids: { type: 'string', maxLength: 2000, description: 'Refused' },
    page: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 1 },
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 50 },
  },
} as const;

export const CampaignBody = {
  type: 'object',
  required: ['name', 'from', 'subject', 'contactBookId'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    from: email,
    subject: { type: 'string', minLength: 1, maxLength: 998 },
    previewText: { type: 'string', description: 'Refused' },
    contactBookId: uuid,
    content: { type: 'string', description: 'Refused (useSend editor JSON): give html' },
    html: { type: 'string', minLength: 1 },
    replyTo: addresses(10),
    cc: addresses(50),
    bcc: addresses(50),
    sendNow: { type: 'boolean' },
    scheduledAt: { type: 'string', format: 'date-time', description: 'ISO 8601 (natural language is not understood)' },
    batchSize: { type: 'integer', minimum: 1, maximum: 100000, description: 'Refused' },
  },
} as const;

export const ScheduleCampaignBody = {
  type: 'object',
  additionalProperties: false,
  properties: { scheduledAt: CampaignBody.properties.scheduledAt, batchSize: CampaignBody.properties.batchSize },
} as const;

export const CampaignParam = { type: 'object', required: ['campaignId'], properties: { campaignId: uuid } } as const;

export const CampaignList = {
  type: 'object',
  properties: {
    page: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 1 },
    status: { type: 'string', enum: ['DRAFT', 'SCHEDULED', 'RUNNING', 'IN_PROGRESS', 'PAUSED', 'SENT', 'COMPLETED', 'CANCELLED', 'FAILED'] },
    search: { type: 'string', maxLength: 200 },
  },
} as const;
