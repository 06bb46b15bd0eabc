import { ATTACHMENT_LIMITS } from '../../sending/attachments.ts';

/**
 * POST /v3/mail/send as SendGrid documents it. Every SendGrid field is declared, so an unknown one
 * is refused (400 naming it); the ones we declare but cannot do are refused by the translation.
 */
const email = { type: 'string', format: 'email', maxLength: 254 } as const;
const address = { type: 'object', required: ['email'], additionalProperties: false, properties: { email, name: { type: 'string', maxLength: 256 } } } as const;
const addresses = (maxItems: number) => ({ type: 'array', items: address, minItems: 1, maxItems }) as const;
const strings = { type: 'object', additionalProperties: { type: 'string' } } as const;
const unixTime = { type: 'integer', minimum: 0, maximum: 253402300799, description: 'Unix seconds' } as const;

const Personalization = {
  type: 'object',
  required: ['to'],
  additionalProperties: false,
  properties: {
    to: addresses(1000),
    cc: addresses(50),
    bcc: addresses(50),
    from: address,
    subject: { type: 'string', minLength: 1, maxLength: 998 },
    headers: strings,
    substitutions: strings,
    dynamic_template_data: { type: 'object', description: 'Variables of the stored template named by template_id' },
    custom_args: strings,
    send_at: unixTime,
  },
} as const;

export const MailSendBody = {
  type: 'object',
  required: ['personalizations', 'from'],
  additionalProperties: false,
  properties: {
    personalizations: { type: 'array', minItems: 1, maxItems: 100, items: Personalization },
    from: address,
    reply_to: address,
    reply_to_list: addresses(10),
    subject: { type: 'string', minLength: 1, maxLength: 998 },
    content: {
      type: 'array',
      minItems: 1,
      maxItems: 2,
      items: { type: 'object', required: ['type', 'value'], additionalProperties: false, properties: { type: { type: 'string', maxLength: 255 }, value: { type: 'string' } } },
    },
    attachments: {
      type: 'array',
      maxItems: ATTACHMENT_LIMITS.count,
      items: {
        type: 'object',
        required: ['content', 'filename'],
        additionalProperties: false,
        properties: {
          content: { type: 'string', minLength: 1, description: 'Base64' },
          filename: { type: 'string', minLength: 1, maxLength: 255 },
          type: { type: 'string', maxLength: 255 },
          disposition: { type: 'string', enum: ['attachment', 'inline'], description: 'inline is refused' },
          content_id: { type: 'string', maxLength: 255, description: 'Refused' },
        },
      },
    },
    template_id: { type: 'string', minLength: 1, maxLength: 100, description: 'A stored template (/v1/templates id or slug)' },
    headers: strings,
    categories: { type: 'array', maxItems: 10, items: { type: 'string', minLength: 1, maxLength: 255 } },
    custom_args: strings,
    send_at: unixTime,
    // Declared so that they are refused by name (docs/compat/sendgrid.md), not as unknown.
    batch_id: { type: 'string', maxLength: 255, description: 'Refused' },
    asm: { type: 'object', description: 'Refused' },
    ip_pool_name: { type: 'string', maxLength: 64, description: 'Refused' },
    sections: strings,
    mail_settings: { type: 'object', description: 'Refused when a setting is enabled' },
    tracking_settings: { type: 'object', description: 'Refused when a setting is enabled' },
  },
} as const;
