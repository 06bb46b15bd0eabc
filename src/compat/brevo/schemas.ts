/**
 * Request schemas of the Brevo layer, in Brevo's field names. Objects are closed
 * (`additionalProperties: false`): a Brevo field this engine does not have is refused with its
 * name (errors.ts), never dropped. Display names (`name`) are such a field: we send bare addresses.
 */
import { ATTACHMENT_LIMITS } from '../../sending/attachments.ts';

const email = { type: 'string', format: 'email', maxLength: 254 } as const;
const address = { type: 'object', required: ['email'], additionalProperties: false, properties: { email } } as const;
const addresses = (maxItems: number, minItems = 0) => ({ type: 'array', items: address, minItems, maxItems }) as const;
export const brevoInt = { type: 'integer', minimum: 1, maximum: 2_147_483_647 } as const;

const content = {
  subject: { type: 'string', minLength: 1, maxLength: 998 },
  htmlContent: { type: 'string' },
  textContent: { type: 'string' },
  params: { type: 'object', description: 'Template variables: `{{ params.name }}` (Brevo) and `{{ name }}` both work' },
} as const;

export const SendTransacEmail = {
  type: 'object',
  additionalProperties: false,
  properties: {
    sender: address,
    to: addresses(1000, 1),
    cc: addresses(50),
    bcc: addresses(50),
    replyTo: address,
    ...content,
    templateId: brevoInt,
    attachment: {
      type: 'array',
      maxItems: ATTACHMENT_LIMITS.count,
      items: {
        type: 'object',
        additionalProperties: false,
        properties: { content: { type: 'string', minLength: 1 }, name: { type: 'string', minLength: 1, maxLength: 255 }, url: { type: 'string', maxLength: 2048 } },
      },
    },
    headers: { type: 'object', additionalProperties: { type: 'string', maxLength: 998 }, description: '`idempotencyKey` is the send\'s idempotency key' },
    tags: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 100 }, maxItems: 20 },
    scheduledAt: { type: 'string', format: 'date-time' },
    messageVersions: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      items: {
        type: 'object',
        required: ['to'],
        additionalProperties: false,
        properties: { to: addresses(1000, 1), cc: addresses(50), bcc: addresses(50), replyTo: address, ...content },
      },
    },
  },
} as const;

export interface BrevoAddress {
  email: string;
}
export interface BrevoContent {
  subject?: string;
  htmlContent?: string;
  textContent?: string;
  params?: Record<string, unknown>;
}
export interface BrevoVersion extends BrevoContent {
  to: BrevoAddress[];
  cc?: BrevoAddress[];
  bcc?: BrevoAddress[];
  replyTo?: BrevoAddress;
}
export interface SendTransacEmailBody extends BrevoContent {
  sender?: BrevoAddress;
  to?: BrevoAddress[];
  cc?: BrevoAddress[];
  bcc?: BrevoAddress[];
  replyTo?: BrevoAddress;
  templateId?: number;
  attachment?: Array<{ content?: string; name?: string; url?: string }>;
  headers?: Record<string, string>;
  tags?: string[];
  scheduledAt?: string;
  messageVersions?: BrevoVersion[];
}

export const SendTransacEmailResponse = {
  type: 'object',
  properties: { messageId: { type: 'string' }, messageIds: { type: 'array', items: { type: 'string' } } },
} as const;

export const emailListQuery = {
  type: 'object',
  properties: {
    email: { type: 'string', maxLength: 254 },
    templateId: brevoInt,
    messageId: { type: 'string', maxLength: 300 },
    startDate: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
    endDate: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
    sort: { type: 'string', enum: ['asc', 'desc'], default: 'desc' },
    limit: { type: 'integer', minimum: 0, maximum: 1000, default: 500 },
    offset: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 },
  },
} as const;

export const EmailList = {
  type: 'object',
  properties: {
    count: { type: 'integer' },
    transactionalEmails: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          email: { type: 'string' }, subject: { type: 'string' }, templateId: { type: 'integer' }, messageId: { type: 'string' }, uuid: { type: 'string' },
          date: { type: 'string' }, from: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
} as const;

export const uuidParam = (name: string) => ({ type: 'object', required: [name], properties: { [name]: { type: 'string', format: 'uuid' } } }) as const;
export const intParam = (name: string) => ({ type: 'object', required: [name], properties: { [name]: brevoInt } }) as const;

export const EmailContent = {
  type: 'object',
  properties: {
    email: { type: 'string' }, subject: { type: 'string' }, templateId: { type: 'integer' }, date: { type: 'string' }, body: { type: 'string' },
    attachmentCount: { type: 'integer' },
    events: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, time: { type: 'string' } } } },
  },
} as const;

export const TemplateBody = (required: string[]) => ({
  type: 'object',
  required,
  additionalProperties: false,
  properties: {
    templateName: { type: 'string', minLength: 1, maxLength: 200 },
    subject: { type: 'string', minLength: 1, maxLength: 998 },
    htmlContent: { type: 'string', minLength: 1 },
    sender: address,
    isActive: { type: 'boolean' },
  },
}) as const;

export interface TemplateBodyInput {
  templateName?: string;
  subject?: string;
  htmlContent?: string;
  sender?: BrevoAddress;
  isActive?: boolean;
}

export const templateListQuery = {
  type: 'object',
  properties: {
    templateStatus: { type: 'boolean' },
    limit: { type: 'integer', minimum: 0, maximum: 1000, default: 50 },
    offset: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 },
    sort: { type: 'string', enum: ['asc', 'desc'], default: 'desc' },
  },
} as const;

const templateOverview = {
  type: 'object',
  properties: {
    id: { type: 'integer' }, name: { type: 'string' }, subject: { type: 'string' }, isActive: { type: 'boolean' }, testSent: { type: 'boolean' },
    sender: { type: 'object', properties: { email: { type: 'string' } } }, replyTo: { type: 'string' }, toField: { type: 'string' }, tag: { type: 'string' },
    htmlContent: { type: 'string' }, createdAt: { type: 'string' }, modifiedAt: { type: 'string' }, doiTemplate: { type: 'boolean' },
    customTemplateId: { type: 'string', description: 'Our template id (uuid), which the native API takes' },
  },
} as const;
export const TemplateOverview = templateOverview;
export const TemplateList = { type: 'object', properties: { count: { type: 'integer' }, templates: { type: 'array', items: templateOverview } } } as const;
export const CreatedInt = { type: 'object', properties: { id: { type: 'integer' } } } as const;
