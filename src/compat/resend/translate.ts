import type { DomainView } from '../../domains/domains.ts';
import type { DomainStatus } from '../../domains/status.ts';
import type { HttpError } from '../../http/errors.ts';
import type { SendView } from '../../sending/sends.ts';
import type { SendInput } from '../../sending/submit.ts';
import type { TemplateInput, TemplateView } from '../../templates/templates.ts';
import type { EndpointView } from '../../webhooks/endpoints.ts';
import type { WebhookEventType } from '../../webhooks/event-types.ts';
import { bareAddress, notSupported } from '../root.ts';

/** Resend's email as its API takes it (the SDK sends snake_case; fields it was not given are absent). */
export interface ResendEmail {
  from: string;
  to: string | string[];
  subject?: string;
  cc?: string | string[];
  bcc?: string | string[];
  reply_to?: string | string[];
  html?: string;
  text?: string;
  headers?: Record<string, string>;
  attachments?: Array<{ filename?: string; content?: string; content_type?: string; path?: string; content_id?: string }>;
  tags?: Array<{ name: string; value: string }>;
  scheduled_at?: string;
  template?: { id: string; variables?: Record<string, unknown> };
  [unsupported: string]: unknown;
}

const email = { type: 'string', format: 'email', maxLength: 254 } as const;
/** One address or a list (`maxLength` applies to the string form, the item keywords to the list). */
const addresses = (max: number) => ({ type: ['array', 'string'], maxLength: 1000, items: { type: 'string', maxLength: 1000 }, minItems: 1, maxItems: max }) as const;

/** Types are checked here; addresses, unknown fields and what we lack in toSendInput (one place for both routes). */
export const EmailBody = {
  type: 'object',
  required: ['from', 'to'],
  properties: {
    from: { type: 'string', minLength: 1, maxLength: 1000 },
    to: addresses(50),
    subject: { type: 'string', maxLength: 998 },
    cc: addresses(50),
    bcc: addresses(50),
    reply_to: addresses(10),
    html: { type: 'string' },
    text: { type: 'string' },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    attachments: {
      type: 'array',
      maxItems: 20,
      items: {
        type: 'object',
        properties: { filename: { type: 'string', maxLength: 255 }, content: { type: 'string' }, content_type: { type: 'string', maxLength: 255 }, path: { type: 'string' }, content_id: { type: 'string' } },
      },
    },
    tags: {
      type: 'array',
      maxItems: 50,
      items: { type: 'object', required: ['name', 'value'], properties: { name: { type: 'string', minLength: 1, maxLength: 256 }, value: { type: 'string', maxLength: 256 } } },
    },
    scheduled_at: { type: 'string', format: 'date-time', description: 'ISO 8601 only (Resend also takes "in 1 min"; we do not)' },
    template: {
      type: 'object',
      required: ['id'],
      properties: { id: { type: 'string', minLength: 1, maxLength: 100 }, variables: { type: 'object' } },
    },
  },
} as const;

export const BatchBody = { type: 'array', minItems: 1, maxItems: 100, items: EmailBody } as const;
export const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;
export const uuidParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', format: 'uuid' } } } as const;
export const listQuery = {
  type: 'object',
  properties: { limit: { type: 'integer', minimum: 1, maximum: 100 }, after: { type: 'string', maxLength: 200 }, before: { type: 'string', maxLength: 200 } },
} as const;

const HANDLED = new Set(['from', 'to', 'subject', 'cc', 'bcc', 'reply_to', 'html', 'text', 'headers', 'attachments', 'tags', 'scheduled_at', 'template']);
const list = (value: string | string[] | undefined) => (value === undefined ? undefined : [value].flat());

/** Our address check (the native schema's `format: email`), after the display-name refusal. */
function addressList(field: string, value: string | string[] | undefined): string[] | undefined {
  const out = list(value)?.map((a, i) => bareAddress(Array.isArray(value) ? `${field}[${i}]` : field, a));
  for (const a of out ?? []) if (!EMAIL.test(a) || a.length > email.maxLength) throw notSupported(field, `"${a}" is not an email address`);
  return out;
}
const EMAIL = /^[^\s@<>()",;:]+@[^\s@<>()",;:]+\.[^\s@<>()",;:]+$/;

/** Resend's email as our send (POST /v1/send-jobs): transactional, the key from Idempotency-Key. */
export function toSendInput(body: ResendEmail, idempotencyKey: string): SendInput {
  for (const field of Object.keys(body)) if (!HANDLED.has(field)) throw notSupported(field);
  body.attachments?.forEach((a, i) => {
    if (a.path !== undefined) throw notSupported(`attachments[${i}].path`, 'attachments fetched from a URL are not supported by Send Engine; give content (base64)');
    if (a.content_id !== undefined) throw notSupported(`attachments[${i}].content_id`, 'inline (cid) attachments are not supported by Send Engine');
    if (a.content === undefined || a.filename === undefined) throw notSupported(`attachments[${i}]`, 'filename and content (base64) are required');
  });
  if (body.template && (body.subject !== undefined || body.html !== undefined || body.text !== undefined)) {
    throw notSupported('template', 'give template or subject/html/text, not both');
  }
  if (!body.template && body.subject === undefined) throw notSupported('subject', 'is required without template');
  if (!body.template && body.html === undefined && body.text === undefined) throw notSupported('html', 'html or text is required without template');
  const from = addressList('from', body.from)![0];
  return {
    message_type: 'transactional',
    from,
    to: addressList('to', body.to)!,
    cc: addressList('cc', body.cc),
    bcc: addressList('bcc', body.bcc),
    reply_to: addressList('reply_to', body.reply_to),
    ...(body.template
      ? { template_id: body.template.id, variables: body.template.variables ?? {} }
      : { subject: body.subject, html: body.html ?? '', text: body.text ?? '' }),
    headers: body.headers,
    attachments: body.attachments?.map((a) => ({ filename: a.filename!, content: a.content!, ...(a.content_type ? { content_type: a.content_type } : {}) })),
    scheduled_at: body.scheduled_at,
    // The contract's tag keys, empty; Resend's name/value tags beside them.
    tags: { campaign_id: '', site_id: '', list_id: '', segment: '', ...Object.fromEntries((body.tags ?? []).map((t) => [t.name, t.value])) },
    idempotency_key: idempotencyKey,
  };
}

/**
 * Our message statuses as Resend's `last_event` (docs/compat/resend.md has the table). A send's
 * last event is its first recipient's (the message whose id Resend was given).
 */
export const LAST_EVENT: Record<string, string> = {
  queued: 'queued', sending: 'queued', sent: 'sent', delivered: 'delivered', opened: 'opened', clicked: 'clicked',
  bounced: 'bounced', complained: 'complained', suppressed: 'suppressed', failed: 'failed', expired: 'failed', cancelled: 'canceled',
};

export function emailView(send: SendView) {
  const first = send.copies.find((c) => c.id === send.message_id) ?? send.copies[0];
  const scheduled = first.status === 'queued' && send.scheduled_at !== null && Date.parse(send.scheduled_at) > Date.now();
  const userTags = Object.entries(send.tags).filter(([k, v]) => !['campaign_id', 'site_id', 'list_id', 'segment'].includes(k) || v !== '');
  return {
    object: 'email',
    id: send.message_id,
    from: send.from,
    to: send.to,
    cc: send.cc.length ? send.cc : null,
    bcc: send.bcc.length ? send.bcc : null,
    reply_to: send.reply_to,
    subject: send.subject,
    html: send.html || null,
    text: send.text || null,
    created_at: send.created_at,
    scheduled_at: send.scheduled_at,
    last_event: scheduled ? 'scheduled' : LAST_EVENT[first.status] ?? first.status,
    message_id: `<${send.message_id}@${send.from.slice(send.from.lastIndexOf('@') + 1)}>`,
    tags: userTags.map(([name, value]) => ({ name, value: String(value) })),
  };
}

/** Resend's record kinds for ours. */
const RECORD: Record<string, string> = { dkim: 'DKIM', spf: 'SPF', return_path: 'SPF', dmarc: 'DMARC', tracking: 'Tracking' };
/** Resend's domain statuses have no temporary failure: the DNS check will run again, so it is pending. */
const DOMAIN_STATUS: Record<DomainStatus, string> = { not_started: 'not_started', pending: 'pending', verified: 'verified', failed: 'failed', temporary_failure: 'pending' };

export function domainView(d: DomainView, withRecords: boolean) {
  return {
    id: d.id,
    name: d.name,
    status: DOMAIN_STATUS[d.status],
    created_at: d.created_at,
    capabilities: { sending: 'enabled', receiving: 'disabled' },
    ...(withRecords
      ? {
          records: d.dns_records.map((r) => ({
            record: RECORD[r.purpose] ?? r.purpose,
            name: r.name,
            type: r.type,
            ttl: 'Auto',
            status: r.status,
            value: r.value,
            ...(r.priority !== undefined ? { priority: r.priority } : {}),
          })),
        }
      : {}),
  };
}

/** Resend's webhook events and ours; Resend's others (contacts, domains, topics, inbound) we do not emit. */
const EVENTS: Record<string, WebhookEventType> = {
  'email.sent': 'message.sent',
  'email.delivered': 'message.delivered',
  'email.delivery_delayed': 'message.delivery_delayed',
  'email.bounced': 'message.bounced',
  'email.complained': 'message.complained',
  'email.opened': 'message.opened',
  'email.clicked': 'message.clicked',
  'email.failed': 'message.failed',
  'email.suppressed': 'message.suppressed',
  'suppression.added': 'suppression.created',
  'suppression.removed': 'suppression.deleted',
};
const RESEND_EVENTS = Object.fromEntries(Object.entries(EVENTS).map(([resend, ours]) => [ours, resend]));

export function ourEvents(events: string[]): WebhookEventType[] {
  return events.map((e, i) => {
    const ours = EVENTS[e];
    if (!ours) throw notSupported(`events[${i}]`, `"${e}" is not an event Send Engine emits (it emits ${Object.keys(EVENTS).join(', ')})`);
    return ours;
  });
}

export const WebhookBody = {
  type: 'object',
  required: ['endpoint', 'events'],
  additionalProperties: false,
  properties: { endpoint: { type: 'string', minLength: 1, maxLength: 2048 }, events: { type: 'array', minItems: 1, maxItems: 50, items: { type: 'string', maxLength: 100 } } },
} as const;

export const UpdateWebhookBody = {
  type: 'object',
  additionalProperties: false,
  properties: { ...WebhookBody.properties, status: { type: 'string', enum: ['enabled', 'disabled'] } },
} as const;

/** An endpoint as Resend shows it; event types only we have keep our names. The secret is shown once, at creation. */
export function webhookView(e: EndpointView) {
  return {
    id: e.id,
    endpoint: e.url,
    created_at: e.created_at,
    status: e.status,
    events: e.event_types?.map((t) => RESEND_EVENTS[t] ?? t) ?? null,
  };
}

/** Resend's error `name` for our error. */
export function resendName(e: HttpError): string {
  if (e.code === 'not_supported') return 'invalid_parameter';
  if (e.code === 'idempotency_conflict') return 'invalid_idempotent_request';
  if (e.code.startsWith('attachment') || e.code === 'invalid_attachment') return 'invalid_attachment';
  if (e.code === 'domain_not_verified') return 'invalid_from_address';
  switch (e.status) {
    case 401: return /^missing/.test(e.message) ? 'missing_api_key' : 'invalid_api_key';
    case 403: return 'restricted_api_key';
    case 404: return 'not_found';
    case 405: return 'method_not_allowed';
    case 409: return 'invalid_parameter';
    case 422: return 'validation_error';
    case 429: return 'rate_limit_exceeded';
    default: return e.status >= 500 ? 'application_error' : 'validation_error';
  }
}

/** Resend's template as its API takes it (the SDK sends snake_case). */
export interface ResendTemplateInput {
  name?: string;
  subject?: string;
  html?: string;
  text?: string;
  alias?: string;
  [unsupported: string]: unknown;
}

export const TemplateBody = {
  type: 'object',
  properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, subject: { type: 'string', maxLength: 998 }, html: { type: 'string' }, text: { type: 'string' }, alias: { type: 'string', maxLength: 100 } },
} as const;

/** Our template fields for Resend's; what ours lack (a default from/reply-to, declared variables) is refused by name. */
export function templateInput(body: ResendTemplateInput): Partial<TemplateInput> {
  for (const field of Object.keys(body)) {
    if (field === 'from' || field === 'reply_to') throw notSupported(field, 'templates carry no sender in Send Engine; give it with each send');
    if (field === 'variables') throw notSupported(field, 'declared variables are not supported by Send Engine (Liquid takes what the send gives)');
    if (!(field in TemplateBody.properties)) throw notSupported(field);
  }
  return { name: body.name, subject: body.subject, html: body.html, text: body.text, slug: body.alias };
}

/** Ours are live once saved: always published, no drafts. */
export const templateSummary = (t: TemplateView) => ({
  id: t.id, name: t.name, alias: t.slug, status: 'published', published_at: t.updated_at, created_at: t.created_at, updated_at: t.updated_at,
});
export const templateView = (t: TemplateView) => ({
  object: 'template', ...templateSummary(t), subject: t.subject, html: t.html ?? '', text: t.text, variables: null, from: null, reply_to: null,
  has_unpublished_versions: false, current_version_id: `${t.id}:${t.version}`,
});
