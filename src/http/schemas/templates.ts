import { MAX_LIMIT, Pagination, dateTime } from '../read-api.ts';

/** Stored, versioned templates (/v1/templates, docs/api.md). */

const liquid = (what: string) => ({ type: ['string', 'null'], maxLength: 2_000_000, description: `${what} (Liquid)` }) as const;

export const TemplateInput = {
  type: 'object',
  required: ['name', 'subject'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    subject: { type: 'string', minLength: 1, maxLength: 998, description: 'Subject (Liquid)' },
    html: liquid('HTML body'),
    text: liquid('Text body; without it, the rendered html as text (html-to-text)'),
    slug: { type: 'string', minLength: 1, maxLength: 100, description: 'a-z, 0-9, ., - and _ (e.g. welcome.html); defaults to one made from the name' },
  },
} as const;

export const Template = {
  type: 'object',
  required: ['id', 'slug', 'version', 'name', 'subject', 'html', 'text', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    slug: { type: 'string' },
    version: { type: 'integer', description: 'The current version; PUT adds one' },
    name: { type: 'string' },
    subject: { type: 'string' },
    html: { type: ['string', 'null'] },
    text: { type: ['string', 'null'] },
    created_at: dateTime,
    updated_at: dateTime,
  },
} as const;

export const TemplateVersion = {
  type: 'object',
  required: ['template_id', 'version', 'name', 'subject', 'html', 'text', 'created_at'],
  properties: {
    template_id: { type: 'string', format: 'uuid' },
    version: { type: 'integer' },
    name: { type: 'string' },
    subject: { type: 'string' },
    html: { type: ['string', 'null'] },
    text: { type: ['string', 'null'] },
    created_at: dateTime,
  },
} as const;

export const TemplatePage = { type: 'object', required: ['data', 'pagination'], properties: { data: { type: 'array', items: Template }, pagination: Pagination } } as const;
export const TemplateVersionPage = {
  type: 'object',
  required: ['data', 'pagination'],
  properties: { data: { type: 'array', items: TemplateVersion }, pagination: Pagination },
} as const;

export const Variables = { type: 'object', additionalProperties: true, description: 'Values the template refers to: {{ name }}, {{ order.total }}' } as const;

export const RenderTemplateRequest = {
  type: 'object',
  additionalProperties: false,
  properties: {
    variables: Variables,
    strict: { type: 'boolean', default: false, description: 'A variable the template uses but `variables` lacks is a 422 missing_variable (default: it renders empty)' },
    version: { type: 'integer', minimum: 1, maximum: 2_147_483_647, description: 'Default: the current version' },
  },
} as const;

export const RenderedTemplate = {
  type: 'object',
  required: ['template_id', 'version', 'subject', 'html', 'text'],
  properties: {
    template_id: { type: 'string', format: 'uuid' },
    version: { type: 'integer' },
    subject: { type: 'string' },
    html: { type: ['string', 'null'] },
    text: { type: ['string', 'null'] },
  },
} as const;

export const TestTemplateRequest = {
  type: 'object',
  required: ['to'],
  additionalProperties: false,
  properties: {
    to: { type: 'string', format: 'email', maxLength: 254 },
    from: { type: 'string', format: 'email', maxLength: 254, description: "Default: the tenant's default sender, else DEFAULT_FROM_ADDRESS" },
    variables: Variables,
    strict: { type: 'boolean', default: false },
  },
} as const;

export const TestTemplateResponse = {
  type: 'object',
  required: ['job_id', 'status', 'template_id', 'version'],
  properties: { job_id: { type: 'string', format: 'uuid' }, status: { type: 'string', enum: ['queued'] }, template_id: { type: 'string', format: 'uuid' }, version: { type: 'integer' } },
} as const;

export const templateIdParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100, description: 'Id or slug' } } } as const;
export const versionParams = {
  type: 'object',
  required: ['id', 'version'],
  properties: { id: templateIdParam.properties.id, version: { type: 'integer', minimum: 1, maximum: 2_147_483_647 } },
} as const;
export const templateListQuery = {
  type: 'object',
  properties: { limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: 50 }, cursor: { type: 'string', maxLength: 1000 } },
} as const;

const rate = { type: 'number', minimum: 0, maximum: 1 } as const;
const total = { type: 'integer' } as const;

export const TemplatePerformance = {
  type: 'object',
  required: ['template_id', 'data'],
  properties: {
    template_id: { type: 'string', format: 'uuid' },
    data: {
      type: 'array',
      items: {
        type: 'object',
        required: ['version', 'sends', 'sent', 'delivered', 'opens', 'clicks', 'bounced', 'complained', 'bounce_rate', 'complaint_rate', 'open_rate', 'click_rate'],
        properties: {
          version: { type: 'integer' },
          sends: { ...total, description: 'Transactional sends (jobs) accepted in the window with this version' },
          sent: total, delivered: total, opens: total, clicks: total, bounced: total, complained: total,
          bounce_rate: rate, complaint_rate: rate, open_rate: rate, click_rate: rate,
        },
      },
    },
  },
} as const;

export const windowQuery = {
  type: 'object',
  properties: { from: { type: 'string', maxLength: 64 }, to: { type: 'string', maxLength: 64 } },
} as const;
