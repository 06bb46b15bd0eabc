import { createHash } from 'node:crypto';
import { invalid } from '../errors.ts';
import { findUnstorableText, printable } from '../text.ts';
import { UUID, type EventType, type NormalizedEvent, type SuppressKind } from './types.ts';

/** The contract's SesEvent, as validated against its schema. */
export interface ContractSesEvent {
  event_type: 'bounce' | 'hard_bounced' | 'soft_bounced' | 'complaint' | 'suppression' | 'delivery' | 'open' | 'click';
  message_id: string;
  tenant_id: string;
  email: string;
  bounce_type?: 'hard' | 'soft';
  occurred_at: string;
}

const MAX_ID = 256;
const MAX_ADDRESS = 320;
const MAX_TEXT = 2000;
const MAX_RECIPIENTS = 100;

/**
 * Rejects what PostgreSQL would refuse later (NUL, lone surrogates), so a bad body is a 422 before
 * any write instead of an error halfway.
 */
export function assertStorable(value: unknown): void {
  const at = findUnstorableText(value);
  if (at !== undefined) throw invalid(`${printable(at)}: strings must not contain NUL or unpaired surrogates`, 'invalid_text');
}

/** ISO time within sane bounds; anything else is the sender's mistake. */
function time(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length > 64) throw invalid(`${field} must be a date-time string`);
  const ms = Date.parse(value);
  const year = new Date(ms).getUTCFullYear();
  if (!Number.isFinite(ms) || year < 2000 || year > 2200) throw invalid(`${field} must be a date-time between 2000 and 2200`);
  return new Date(ms).toISOString();
}

/** Cut to max UTF-16 units without splitting a surrogate pair (PostgreSQL refuses half of one). */
function clip(v: unknown, max = MAX_TEXT): string | undefined {
  if (typeof v !== 'string') return undefined;
  if (v.length <= max) return v;
  const code = v.charCodeAt(max - 1);
  return v.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}
const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
/** A small free-form object (link tags, topic preferences) kept as is; a large one is dropped. */
const small = (v: unknown) => (isObject(v) && JSON.stringify(v).length <= MAX_TEXT ? v : undefined);

function object(parent: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = parent[key];
  if (!isObject(v)) throw invalid(`${key} must be an object`);
  return v;
}

function address(v: unknown, field: string): string {
  if (typeof v !== 'string' || !v.includes('@') || v.length > MAX_ADDRESS) throw invalid(`${field} must be an email address`);
  // SES may give "Name <a@b>"; the bare address is what we sent to and suppress.
  const bare = /<([^<>\s]+@[^<>\s]+)>\s*$/.exec(v)?.[1] ?? v.trim();
  return bare.toLowerCase();
}

function addresses(list: unknown, field: string, pick: (item: unknown) => unknown = (x) => x): string[] {
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_RECIPIENTS) {
    throw invalid(`${field} must be a list of 1 to ${MAX_RECIPIENTS} recipients`);
  }
  return list.map((item, i) => address(pick(item), `${field}[${i}]`));
}

function bounceKind(subType: string | undefined, bounceType: string | undefined): { type: EventType; suppress: SuppressKind; bounceClass: string } {
  if (subType === 'OnAccountSuppressionList' || subType === 'Suppressed') return { type: 'suppression', suppress: 'provider', bounceClass: 'suppressed' };
  if (bounceType === 'Permanent') return { type: 'bounce', suppress: 'hard', bounceClass: 'hard' };
  return { type: 'bounce', suppress: 'soft', bounceClass: bounceType === 'Transient' ? 'soft' : 'undetermined' };
}

/** The contract body (already schema-valid) as one event. */
export function normalizeContractEvent(body: ContractSesEvent): NormalizedEvent {
  assertStorable(body);
  if (body.message_id.length === 0 || body.message_id.length > MAX_ID) throw invalid(`message_id must be 1 to ${MAX_ID} characters`);
  const occurredAt = time(body.occurred_at, 'occurred_at');
  const base = {
    // Either of our ids or the provider's: both are tried, ours first.
    ourId: UUID.test(body.message_id) ? body.message_id.toLowerCase() : null,
    providerId: body.message_id,
    learnProviderId: null,
    claimedTenant: body.tenant_id.toLowerCase(),
    recipient: address(body.email, 'email'),
    recipientStrict: false,
    occurredAt,
    discriminator: occurredAt,
    diagnostic: null,
  };
  const data = { source: 'webhook', event_type: body.event_type };
  switch (body.event_type) {
    case 'hard_bounced':
    case 'soft_bounced':
    case 'bounce': {
      const cls = body.event_type === 'hard_bounced' ? 'hard' : body.event_type === 'soft_bounced' ? 'soft' : (body.bounce_type ?? 'undetermined');
      return { ...base, type: 'bounce', suppress: cls === 'hard' ? 'hard' : 'soft', data: { ...data, bounce_class: cls } };
    }
    case 'complaint':
      return { ...base, type: 'complaint', suppress: 'complaint', data };
    case 'suppression':
      return { ...base, type: 'suppression', suppress: 'provider', data: { ...data, bounce_class: 'suppressed' } };
    case 'delivery':
      return { ...base, type: 'delivery', suppress: null, data };
    case 'open':
      return { ...base, type: 'open', suppress: null, data };
    case 'click':
      return { ...base, type: 'click', suppress: null, data };
  }
}

export type SesNormalized = { kind: 'events'; events: NormalizedEvent[]; eventType: string } | { kind: 'ignored'; reason: string };

/** Our message id from the original headers SES echoes back (when the configuration set includes them). */
function ourIdFromMail(mail: Record<string, unknown>): string | null {
  if (Array.isArray(mail.headers)) {
    for (const h of mail.headers) {
      if (isObject(h) && typeof h.name === 'string' && h.name.toLowerCase() === 'x-send-engine-message-id' && typeof h.value === 'string') {
        const v = h.value.trim();
        if (UUID.test(v)) return v.toLowerCase();
      }
    }
  }
  // Our Message-ID is <message uuid@domain>, and SES keeps it in commonHeaders.
  const common = mail.commonHeaders;
  if (isObject(common) && typeof common.messageId === 'string') {
    const m = /^<([0-9a-f-]{36})@/i.exec(common.messageId);
    if (m && UUID.test(m[1])) return m[1].toLowerCase();
  }
  return null;
}

/**
 * An SES event-publishing record (`eventType`) or identity notification (`notificationType`) as
 * one event per affected recipient.
 */
export function normalizeSesMessage(input: unknown): SesNormalized {
  assertStorable(input);
  if (!isObject(input)) throw invalid('SES message must be a JSON object');
  const eventType = typeof input.eventType === 'string' ? input.eventType : input.notificationType;
  if (typeof eventType !== 'string') throw invalid('SES message has no eventType or notificationType');
  // SES posts this once when a topic is attached to an identity: nothing to record.
  if (eventType === 'AmazonSnsSubscriptionSucceeded') return { kind: 'ignored', reason: 'subscription succeeded notice' };

  const mail = object(input, 'mail');
  const providerId = mail.messageId;
  if (typeof providerId !== 'string' || !providerId || providerId.length > MAX_ID) throw invalid('mail.messageId must be a string');
  const ourId = ourIdFromMail(mail);
  const mailTime = () => time(mail.timestamp, 'mail.timestamp');
  const destination = () => addresses(mail.destination, 'mail.destination');

  type Part = { recipient: string; type: EventType; suppress: SuppressKind | null; diagnostic?: string; data: Record<string, unknown> };
  let occurredAt: string;
  let discriminator: string | undefined;
  let parts: Part[];
  switch (eventType) {
    case 'Send':
      occurredAt = mailTime();
      parts = destination().map((recipient) => ({ recipient, type: 'provider_send', suppress: null, data: {} }));
      break;
    case 'Delivery': {
      const d = object(input, 'delivery');
      occurredAt = time(d.timestamp, 'delivery.timestamp');
      const data = { smtp_response: clip(d.smtpResponse), reporting_mta: clip(d.reportingMTA, 256), processing_time_ms: typeof d.processingTimeMillis === 'number' ? d.processingTimeMillis : undefined };
      parts = (d.recipients === undefined ? destination() : addresses(d.recipients, 'delivery.recipients')).map((recipient) => ({ recipient, type: 'delivery', suppress: null, data }));
      break;
    }
    case 'Bounce': {
      const b = object(input, 'bounce');
      occurredAt = time(b.timestamp, 'bounce.timestamp');
      discriminator = clip(b.feedbackId, 200);
      const kind = bounceKind(clip(b.bounceSubType, 64), clip(b.bounceType, 64));
      const list = b.bouncedRecipients;
      const recipients = addresses(list, 'bounce.bouncedRecipients', (r) => (isObject(r) ? r.emailAddress : undefined));
      parts = recipients.map((recipient, i) => {
        const r = (list as Record<string, unknown>[])[i];
        const diagnostic = clip(r.diagnosticCode);
        return {
          recipient,
          type: kind.type,
          suppress: kind.suppress,
          diagnostic,
          data: {
            bounce_type: clip(b.bounceType, 64), bounce_subtype: clip(b.bounceSubType, 64), bounce_class: kind.bounceClass,
            diagnostic, action: clip(r.action, 64), status: clip(r.status, 64), reporting_mta: clip(b.reportingMTA, 256), feedback_id: discriminator,
          },
        };
      });
      break;
    }
    case 'Complaint': {
      const c = object(input, 'complaint');
      occurredAt = time(c.timestamp, 'complaint.timestamp');
      discriminator = clip(c.feedbackId, 200);
      const onList = c.complaintSubType === 'OnAccountSuppressionList';
      const data = {
        feedback_type: clip(c.complaintFeedbackType, 64), complaint_subtype: clip(c.complaintSubType, 64),
        user_agent: clip(c.userAgent, 512), feedback_id: discriminator, arrival_date: clip(c.arrivalDate, 64),
        ...(onList ? { bounce_class: 'suppressed' } : {}),
      };
      parts = addresses(c.complainedRecipients, 'complaint.complainedRecipients', (r) => (isObject(r) ? r.emailAddress : undefined)).map((recipient) => ({
        recipient,
        type: onList ? 'suppression' : 'complaint',
        suppress: onList ? 'provider' : 'complaint',
        diagnostic: typeof data.feedback_type === 'string' ? `complaint: ${data.feedback_type}` : 'complaint',
        data,
      }));
      break;
    }
    case 'Reject': {
      const r = isObject(input.reject) ? input.reject : {};
      occurredAt = mailTime();
      parts = destination().map((recipient) => ({ recipient, type: 'reject', suppress: null, diagnostic: clip(r.reason), data: { reason: clip(r.reason) } }));
      break;
    }
    case 'DeliveryDelay': {
      const d = object(input, 'deliveryDelay');
      occurredAt = time(d.timestamp, 'deliveryDelay.timestamp');
      const list = d.delayedRecipients;
      const recipients = addresses(list, 'deliveryDelay.delayedRecipients', (r) => (isObject(r) ? r.emailAddress : undefined));
      parts = recipients.map((recipient, i) => {
        const r = (list as Record<string, unknown>[])[i];
        return {
          recipient, type: 'delivery_delay', suppress: null,
          data: { delay_type: clip(d.delayType, 64), expiration_time: clip(d.expirationTime, 64), diagnostic: clip(r.diagnosticCode), status: clip(r.status, 64) },
        };
      });
      break;
    }
    case 'Open': {
      const o = object(input, 'open');
      occurredAt = time(o.timestamp, 'open.timestamp');
      const data = { user_agent: clip(o.userAgent, 512), ip_address: clip(o.ipAddress, 64) };
      parts = destination().map((recipient) => ({ recipient, type: 'open', suppress: null, data }));
      break;
    }
    case 'Click': {
      const c = object(input, 'click');
      occurredAt = time(c.timestamp, 'click.timestamp');
      const link = clip(c.link, 4096);
      // Two links clicked in the same millisecond are two events.
      discriminator = `${occurredAt}:${createHash('sha256').update(link ?? '').digest('hex').slice(0, 16)}`;
      const data = { url: link, user_agent: clip(c.userAgent, 512), ip_address: clip(c.ipAddress, 64), link_tags: small(c.linkTags) };
      parts = destination().map((recipient) => ({ recipient, type: 'click', suppress: null, data }));
      break;
    }
    case 'Rendering Failure': {
      const f = isObject(input.failure) ? input.failure : {};
      occurredAt = mailTime();
      parts = destination().map((recipient) => ({
        recipient, type: 'rendering_failure', suppress: null, diagnostic: clip(f.errorMessage),
        data: { error: clip(f.errorMessage), template: clip(f.templateName, 256) },
      }));
      break;
    }
    case 'Subscription': {
      const s = object(input, 'subscription');
      occurredAt = time(s.timestamp, 'subscription.timestamp');
      const data = { contact_list: clip(s.contactList, 256), subscription_source: clip(s.source, 64), new_topic_preferences: small(s.newTopicPreferences) };
      parts = destination().map((recipient) => ({ recipient, type: 'subscription', suppress: null, data }));
      break;
    }
    default:
      throw invalid(`unsupported SES event type "${eventType.slice(0, 64)}"`);
  }
  const strict = new Set(parts.map((p) => p.recipient)).size > 1;
  const events = parts.map<NormalizedEvent>((p) => ({
    ourId,
    providerId,
    learnProviderId: providerId,
    claimedTenant: null,
    type: p.type,
    recipient: p.recipient,
    recipientStrict: strict,
    occurredAt,
    discriminator: discriminator ?? occurredAt,
    suppress: p.suppress,
    diagnostic: p.diagnostic ?? null,
    data: { source: 'ses', ses_event_type: eventType, provider_message_id: providerId, recipient: p.recipient, ...p.data },
  }));
  return { kind: 'events', events, eventType };
}
