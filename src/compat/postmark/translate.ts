import type { FastifyRequest } from 'fastify';
import type { HttpError } from '../../http/errors.ts';
import type { MessageView } from '../../observability/messages.ts';
import type { SuppressionView } from '../../observability/suppressions.ts';
import type { SendView } from '../../sending/sends.ts';
import type { SendInput } from '../../sending/submit.ts';
import type { TemplateView } from '../../templates/templates.ts';
import type { EndpointView } from '../../webhooks/endpoints.ts';
import type { WebhookEventType } from '../../webhooks/event-types.ts';
import { bareAddress, layerPath, notSupported } from '../root.ts';

/** Postmark's message (https://postmarkapp.com/developer/api/email-api), PascalCase as sent. */
export interface PostmarkEmail {
  From: string;
  To?: string;
  Cc?: string;
  Bcc?: string;
  Subject?: string;
  HtmlBody?: string;
  TextBody?: string;
  ReplyTo?: string;
  Tag?: string;
  Headers?: Array<{ Name: string; Value: string }>;
  TrackOpens?: boolean;
  TrackLinks?: string;
  Attachments?: Array<{ Name: string; Content: string; ContentType?: string; ContentID?: string | null; Disposition?: string | null }>;
  Metadata?: Record<string, string>;
  MessageStream?: string;
  // /email/withTemplate
  TemplateId?: string | number;
  TemplateAlias?: string;
  TemplateModel?: Record<string, unknown>;
  InlineCss?: boolean;
  [unsupported: string]: unknown;
}

const text = (max: number) => ({ type: 'string', maxLength: max }) as const;
const common = {
  From: text(1000),
  To: text(20_000),
  Cc: text(20_000),
  Bcc: text(20_000),
  ReplyTo: text(5000),
  Tag: text(1000),
  Headers: { type: 'array', maxItems: 100, items: { type: 'object', required: ['Name', 'Value'], properties: { Name: text(200), Value: text(2000) } } },
  TrackOpens: { type: 'boolean' },
  TrackLinks: { type: 'string', enum: ['None', 'HtmlAndText', 'HtmlOnly', 'TextOnly'] },
  Attachments: {
    type: 'array',
    maxItems: 20,
    items: {
      type: 'object',
      required: ['Name', 'Content'],
      properties: { Name: text(255), Content: { type: 'string' }, ContentType: { type: ['string', 'null'], maxLength: 255 }, ContentID: { type: ['string', 'null'] }, Disposition: { type: ['string', 'null'] } },
    },
  },
  Metadata: { type: 'object', maxProperties: 10, additionalProperties: { type: 'string', maxLength: 80 } },
  MessageStream: text(100),
} as const;

export const EmailBody = {
  type: 'object',
  required: ['From'],
  properties: { ...common, Subject: text(2000), HtmlBody: { type: 'string' }, TextBody: { type: 'string' } },
} as const;
export const TemplatedEmailBody = {
  type: 'object',
  required: ['From', 'TemplateModel'],
  properties: { ...common, TemplateId: { type: ['string', 'integer'], maxLength: 100 }, TemplateAlias: text(100), TemplateModel: { type: 'object' }, InlineCss: { type: 'boolean' } },
} as const;
export const BatchBody = { type: 'array', minItems: 1, maxItems: 500, items: { type: 'object' } } as const;

const SEND_FIELDS = new Set(['From', 'To', 'Cc', 'Bcc', 'ReplyTo', 'Tag', 'Headers', 'TrackOpens', 'TrackLinks', 'Attachments', 'Metadata', 'MessageStream']);
const CONTENT_FIELDS = new Set(['Subject', 'HtmlBody', 'TextBody']);
const TEMPLATE_FIELDS = new Set(['TemplateId', 'TemplateAlias', 'TemplateModel', 'InlineCss']);
const EMAIL = /^[^\s@<>()",;:]+@[^\s@<>()",;:]+\.[^\s@<>()",;:]+$/;

/** "a@x.test, b@y.test" as addresses; names (`"Name" <a@x.test>`) are refused, not dropped. */
function addresses(field: string, value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const out = value.split(',').map((a) => bareAddress(field, a)).filter(Boolean);
  for (const a of out) if (!EMAIL.test(a) || a.length > 254) throw notSupported(field, `"${a}" is not an email address`);
  return out;
}

/** Postmark's message as our send (POST /v1/send-jobs): transactional, one key per request (Postmark has no idempotency). */
export function toSendInput(body: PostmarkEmail, idempotencyKey: string, templated: boolean): SendInput {
  const allowed = templated ? TEMPLATE_FIELDS : CONTENT_FIELDS;
  for (const field of Object.keys(body)) if (!SEND_FIELDS.has(field) && !allowed.has(field)) throw notSupported(field);
  if (body.TrackOpens === true) throw notSupported('TrackOpens', 'open tracking of transactional sends is not supported by Send Engine');
  if (body.TrackLinks !== undefined && body.TrackLinks !== 'None') throw notSupported('TrackLinks', 'link tracking of transactional sends is not supported by Send Engine');
  if (body.MessageStream !== undefined && body.MessageStream !== 'outbound') throw notSupported('MessageStream', 'only the "outbound" (transactional) stream is supported by Send Engine');
  if (body.InlineCss === true) throw notSupported('InlineCss');
  body.Attachments?.forEach((a, i) => {
    if (a.ContentID) throw notSupported(`Attachments[${i}].ContentID`, 'inline (cid) attachments are not supported by Send Engine');
    if (a.Disposition && a.Disposition !== 'attachment') throw notSupported(`Attachments[${i}].Disposition`, 'only "attachment" is supported by Send Engine');
  });
  const to = addresses('To', body.To);
  if (!to) throw notSupported('To', 'at least one recipient is required');
  const headers = body.Headers ? Object.fromEntries(body.Headers.map((h) => [h.Name, h.Value])) : undefined;
  const content = templated
    ? templateContent(body)
    : { subject: body.Subject ?? '', html: body.HtmlBody ?? '', text: body.TextBody ?? '' };
  if (!templated && !body.Subject) throw notSupported('Subject', 'is required');
  if (!templated && !body.HtmlBody && !body.TextBody) throw notSupported('HtmlBody', 'HtmlBody or TextBody is required');
  return {
    message_type: 'transactional',
    from: addresses('From', body.From)?.[0] ?? (() => { throw notSupported('From', 'is required'); })(),
    to,
    cc: addresses('Cc', body.Cc),
    bcc: addresses('Bcc', body.Bcc),
    reply_to: addresses('ReplyTo', body.ReplyTo),
    ...content,
    headers,
    attachments: body.Attachments?.map((a) => ({ filename: a.Name, content: a.Content, ...(a.ContentType ? { content_type: a.ContentType } : {}) })),
    // The contract's tag keys, empty; Postmark's Tag and Metadata beside them.
    tags: { campaign_id: '', site_id: '', list_id: '', segment: '', ...body.Metadata, ...(body.Tag ? { tag: body.Tag } : {}) },
    idempotency_key: idempotencyKey,
  };
}

function templateContent(body: PostmarkEmail) {
  if ((body.TemplateId === undefined) === (body.TemplateAlias === undefined)) throw notSupported('TemplateId', 'give TemplateId or TemplateAlias (one of them)');
  return { template_id: String(body.TemplateId ?? body.TemplateAlias), variables: body.TemplateModel ?? {} };
}

/** What /email answers for an accepted send. */
export const sendingResponse = (to: string, messageId: string, at: Date = new Date()) => ({ To: to, SubmittedAt: at.toISOString(), MessageID: messageId, ErrorCode: 0, Message: 'OK' });

/** Our message statuses as Postmark's outbound `Status` (docs/compat/postmark.md has the table). */
export const STATUS: Record<string, string> = {
  queued: 'Queued', sending: 'Queued', sent: 'Sent', delivered: 'Sent', opened: 'Sent', clicked: 'Sent',
  bounced: 'Sent', complained: 'Sent', suppressed: 'Blocked', failed: 'Failed', expired: 'Failed', cancelled: 'Canceled',
};

const recipient = (Email: string) => ({ Email, Name: '' });

/** One row of GET /messages/outbound: one per recipient (our messages are per recipient). */
export function outboundMessage(m: MessageView) {
  return {
    MessageID: m.id, Tag: '', To: [recipient(m.to)], Cc: [], Bcc: [], Recipients: [m.to], ReceivedAt: m.created_at, From: m.from ?? '',
    Subject: m.subject ?? '', Attachments: [], Status: STATUS[m.status] ?? m.status, TrackOpens: false, TrackLinks: 'None', Metadata: {},
    MessageStream: 'outbound', Sandboxed: false,
  };
}

/** Our timeline types (as the read API names them) and Postmark's MessageEvents types. */
const EVENT: Record<string, string> = {
  Send: 'Sent', Delivery: 'Delivered', DeliveryDelay: 'Transient', Bounce: 'Bounced', Complaint: 'SpamComplaint', Open: 'Opened', Click: 'LinkClicked', Reject: 'Failed',
};

export function messageDetails(send: SendView, messageRecipient: string, status: string, events: Array<{ type: string; occurred_at: string; metadata?: Record<string, unknown> }>) {
  const tags = Object.fromEntries(Object.entries(send.tags).filter(([k, v]) => !(['campaign_id', 'site_id', 'list_id', 'segment'].includes(k) && v === '')));
  const { tag, ...metadata } = tags as Record<string, string>;
  return {
    MessageID: send.message_id, Tag: tag ?? '', To: send.to.map(recipient), Cc: send.cc.map(recipient), Bcc: send.bcc.map(recipient),
    Recipients: send.copies.map((c) => c.recipient), ReceivedAt: send.created_at, From: send.from, Subject: send.subject,
    Attachments: [], Status: STATUS[status] ?? status, TrackOpens: false, TrackLinks: 'None', Metadata: metadata, MessageStream: 'outbound', Sandboxed: false,
    TextBody: send.text, HtmlBody: send.html, Body: send.html || send.text,
    MessageEvents: events.map((e) => ({ Recipient: messageRecipient, Type: EVENT[e.type] ?? e.type, ReceivedAt: e.occurred_at, Details: e.metadata ?? {} })),
  };
}

export const TemplateBody = {
  type: 'object',
  properties: {
    Name: text(200), Subject: text(2000), HtmlBody: { type: ['string', 'null'] }, TextBody: { type: ['string', 'null'] }, Alias: { type: ['string', 'null'], maxLength: 100 },
    TemplateType: { type: 'string', maxLength: 20 }, LayoutTemplate: { type: ['string', 'null'], maxLength: 100 },
  },
} as const;
export interface PostmarkTemplateInput {
  Name?: string;
  Subject?: string;
  HtmlBody?: string | null;
  TextBody?: string | null;
  Alias?: string | null;
  TemplateType?: string;
  LayoutTemplate?: string | null;
}
const TEMPLATE_INPUT = new Set(Object.keys(TemplateBody.properties));

/** Layouts are Postmark's; our templates are standard ones only. */
export function checkTemplateInput(body: PostmarkTemplateInput) {
  for (const field of Object.keys(body)) if (!TEMPLATE_INPUT.has(field)) throw notSupported(field);
  if (body.TemplateType !== undefined && body.TemplateType !== 'Standard') throw notSupported('TemplateType', 'only Standard templates are supported by Send Engine (no layouts)');
  if (body.LayoutTemplate) throw notSupported('LayoutTemplate', 'layouts are not supported by Send Engine');
}

/** A template as Postmark shows it: TemplateId is our id (a UUID, not a number), Alias our slug. */
export const templateSummary = (t: TemplateView) => ({ TemplateId: t.id, Name: t.name, Alias: t.slug, Active: true, TemplateType: 'Standard', LayoutTemplate: null });
export const templateView = (t: TemplateView) => ({ ...templateSummary(t), Subject: t.subject, HtmlBody: t.html, TextBody: t.text, AssociatedServerId: 0 });

/** Postmark's webhook triggers and our event types. */
const TRIGGERS: Record<string, WebhookEventType[]> = {
  Open: ['message.opened'],
  Click: ['message.clicked'],
  Delivery: ['message.delivered'],
  Bounce: ['message.bounced'],
  SpamComplaint: ['message.complained'],
  SubscriptionChange: ['suppression.created', 'suppression.deleted'],
};
const trigger = { type: 'object', properties: { Enabled: { type: 'boolean' }, PostFirstOpenOnly: { type: 'boolean' }, IncludeContent: { type: 'boolean' } } } as const;
export const WebhookBody = {
  type: 'object',
  properties: {
    Url: text(2048),
    MessageStream: text(100),
    HttpAuth: { type: 'object' },
    HttpHeaders: { type: 'array' },
    Triggers: { type: 'object', properties: Object.fromEntries(Object.keys(TRIGGERS).map((k) => [k, trigger])) },
  },
} as const;
export interface PostmarkWebhookInput {
  Url?: string;
  MessageStream?: string;
  HttpAuth?: unknown;
  HttpHeaders?: unknown[];
  Triggers?: Record<string, { Enabled?: boolean; PostFirstOpenOnly?: boolean; IncludeContent?: boolean }>;
}

/** Our event types for Postmark's triggers; undefined when the request does not name them. */
export function webhookEvents(body: PostmarkWebhookInput): WebhookEventType[] | undefined {
  for (const field of Object.keys(body)) if (!(field in WebhookBody.properties)) throw notSupported(field);
  if (body.HttpAuth !== undefined) throw notSupported('HttpAuth', 'deliveries are signed (Standard Webhooks) instead of basic auth');
  if (body.HttpHeaders?.length) throw notSupported('HttpHeaders', 'custom delivery headers are not supported by Send Engine');
  if (body.MessageStream !== undefined && body.MessageStream !== 'outbound') throw notSupported('MessageStream', 'only the "outbound" stream is supported by Send Engine');
  if (!body.Triggers) return undefined;
  const events: WebhookEventType[] = [];
  for (const [name, t] of Object.entries(body.Triggers)) {
    if (!TRIGGERS[name]) throw notSupported(`Triggers.${name}`);
    if (t.PostFirstOpenOnly) throw notSupported(`Triggers.${name}.PostFirstOpenOnly`);
    if (t.IncludeContent) throw notSupported(`Triggers.${name}.IncludeContent`);
    if (t.Enabled) events.push(...TRIGGERS[name]);
  }
  if (!events.length) throw notSupported('Triggers', 'enable at least one trigger');
  return events;
}

export function webhookView(e: EndpointView) {
  const on = (name: string) => ({ Enabled: e.event_types === null || TRIGGERS[name].some((t) => e.event_types!.includes(t)) });
  return {
    ID: e.id,
    Url: e.url,
    MessageStream: 'outbound',
    HttpAuth: null,
    HttpHeaders: [],
    Triggers: {
      Open: { ...on('Open'), PostFirstOpenOnly: false }, Click: on('Click'), Delivery: on('Delivery'),
      Bounce: { ...on('Bounce'), IncludeContent: false }, SpamComplaint: { ...on('SpamComplaint'), IncludeContent: false }, SubscriptionChange: on('SubscriptionChange'),
    },
  };
}

/** Our suppression reasons and sources as Postmark's. */
const REASON: Record<string, string> = { bounce: 'HardBounce', hard_bounce: 'HardBounce', complaint: 'SpamComplaint' };
const ORIGIN: Record<string, string> = { ses_event: 'Recipient', api: 'Customer', manual: 'Admin' };
export const suppressionView = (s: SuppressionView) => ({
  EmailAddress: s.email, SuppressionReason: REASON[s.reason] ?? 'ManualSuppression', Origin: ORIGIN[s.source] ?? 'Admin', CreatedAt: s.suppressed_at,
});

/**
 * Postmark's error for ours: HTTP 401/422/429/500 with its ErrorCode (docs/compat/postmark.md).
 * Not found is 422 with the resource's code where Postmark has one (701 message, 1101 template).
 */
export function postmarkError(e: HttpError, request: FastifyRequest): { status: number; code: number } {
  if (e.status === 401 || e.status === 403) return { status: 401, code: 10 };
  if (e.status === 429) return { status: 429, code: 429 };
  if (e.status >= 500) return { status: e.status, code: e.status };
  if (e.code === 'domain_not_verified') return { status: 422, code: 400 };
  if (e.status === 404) {
    const path = layerPath(request);
    if (path.startsWith('/messages/')) return { status: 422, code: 701 };
    if (/^\/(templates\/|email\/(withTemplate|batchWithTemplates)$)/.test(path)) return { status: 422, code: 1101 };
    return { status: 404, code: 404 };
  }
  return { status: 422, code: 300 };
}
