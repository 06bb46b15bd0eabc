import type { DomainView } from '../../domains/domains.ts';
import type { DomainStatus } from '../../domains/status.ts';
import { newId } from '../../ids.ts';
import type { SendEvent, SendView } from '../../observability/sends.ts';
import type { SendInput } from '../../sending/submit.ts';
import { badRequest } from './errors.ts';

/** POST /api/v1/emails as useSend's SDK sends it (its openapi document, `usesend-js`). */
export interface UseSendEmail {
  to: string | string[];
  from: string;
  subject?: string;
  templateId?: string;
  variables?: Record<string, string>;
  replyTo?: string | string[];
  cc?: string | string[];
  bcc?: string | string[];
  text?: string | null;
  html?: string | null;
  headers?: Record<string, string>;
  attachments?: Array<{ filename: string; content: string }>;
  scheduledAt?: string;
  inReplyToId?: string | null;
}

/**
 * Our message status -> useSend's email status (docs/compat/usesend.md has this table). A queued
 * message whose send has a future `scheduled_at` is useSend's SCHEDULED.
 */
export const EMAIL_STATUS: Record<string, string> = {
  queued: 'QUEUED', sending: 'QUEUED', sent: 'SENT', delivered: 'DELIVERED', opened: 'OPENED', clicked: 'CLICKED',
  bounced: 'BOUNCED', complained: 'COMPLAINED', suppressed: 'SUPPRESSED', failed: 'FAILED', expired: 'FAILED', cancelled: 'CANCELLED',
};

/** Our message event types -> useSend's email event statuses. */
export const EVENT_STATUS: Record<string, string> = {
  send: 'SENT', provider_send: 'SENT', delivery: 'DELIVERED', bounce: 'BOUNCED', complaint: 'COMPLAINED', open: 'OPENED', click: 'CLICKED',
  delivery_delay: 'DELIVERY_DELAYED', deferral: 'DELIVERY_DELAYED', reject: 'REJECTED', rendering_failure: 'RENDERING_FAILURE',
  failure: 'FAILED', suppression: 'SUPPRESSED', cancelled: 'CANCELLED',
};

/** Our domain (and record) status -> useSend's. */
export const DOMAIN_STATUS: Record<DomainStatus, string> = {
  not_started: 'NOT_STARTED', pending: 'PENDING', verified: 'SUCCESS', failed: 'FAILED', temporary_failure: 'TEMPORARY_FAILURE',
};

const list = (value: string | string[] | undefined): string[] | undefined => (value === undefined ? undefined : [value].flat());

/** useSend's email -> our send. The schema checked types and addresses; what we cannot do is refused here. */
export function toSendInput(email: UseSendEmail, idempotencyKey: string | undefined): SendInput {
  if (email.inReplyToId !== undefined && email.inReplyToId !== null) {
    throw badRequest('inReplyToId is not supported by this engine: set In-Reply-To and References in headers', 'unsupported_field');
  }
  const templated = email.templateId !== undefined;
  if (!templated && email.subject === undefined) throw badRequest('subject is required without templateId');
  if (!templated && !email.html && !email.text) throw badRequest('html or text is required without templateId');
  const replyTo = list(email.replyTo);
  const input: SendInput = {
    message_type: 'transactional',
    from: email.from,
    to: list(email.to)!,
    cc: list(email.cc),
    bcc: list(email.bcc),
    reply_to: replyTo?.length ? replyTo : undefined,
    ...(templated
      ? { template_id: email.templateId, variables: email.variables ?? {}, subject: email.subject }
      : { subject: email.subject, html: email.html ?? '', text: email.text ?? '' }),
    headers: email.headers,
    attachments: email.attachments,
    scheduled_at: email.scheduledAt,
    tags: { campaign_id: '', site_id: '', list_id: '', segment: '', api: 'usesend' },
    // useSend's key is optional: without one every request is a new send.
    idempotency_key: idempotencyKey ?? `usesend:${newId()}`,
  };
  // Absent stays absent: the idempotency hash and the template check see what was given.
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as SendInput;
}

function emailStatus(status: string, scheduledAt: string | null): string {
  if (status === 'queued' && scheduledAt && Date.parse(scheduledAt) > Date.now()) return 'SCHEDULED';
  return EMAIL_STATUS[status] ?? status.toUpperCase();
}

/** GET /api/v1/emails/{id}: the send with its events (the scheduling and any cancel as events too, as useSend has them). */
export function emailView(send: SendView, events: SendEvent[], tenantId: string) {
  const emailEvents = [
    { emailId: send.id, status: send.scheduled_at ? 'SCHEDULED' : 'QUEUED', createdAt: send.created_at, data: null },
    ...events.map((e) => ({ emailId: send.id, status: EVENT_STATUS[e.type] ?? e.type.toUpperCase(), createdAt: e.occurred_at, data: { ...e.data, messageId: e.message_id } })),
  ];
  if (send.status === 'cancelled') emailEvents.push({ emailId: send.id, status: 'CANCELLED', createdAt: send.updated_at, data: null });
  return {
    id: send.id,
    teamId: tenantId,
    to: send.to,
    replyTo: send.reply_to,
    cc: send.cc,
    bcc: send.bcc,
    from: send.from,
    subject: send.subject,
    html: send.html || null,
    text: send.text || null,
    createdAt: send.created_at,
    updatedAt: send.updated_at,
    latestStatus: emailStatus(send.status, send.scheduled_at),
    scheduledAt: send.scheduled_at,
    emailEvents,
  };
}

/** An item of GET /api/v1/emails. */
export function emailListItem(send: SendView) {
  return {
    id: send.id,
    to: send.to,
    replyTo: send.reply_to,
    cc: send.cc,
    bcc: send.bcc,
    from: send.from,
    subject: send.subject,
    html: send.html || null,
    text: send.text || null,
    createdAt: send.created_at,
    updatedAt: send.updated_at,
    latestStatus: emailStatus(send.status, send.scheduled_at),
    scheduledAt: send.scheduled_at,
    domainId: null,
  };
}

const dkimKey = (value: string) => /(?:^|;)\s*p=([^;\s]+)/.exec(value)?.[1] ?? '';

/** Our sending domain -> useSend's domain object. */
export function domainView(d: DomainView, tenantId: string, region = 'default') {
  const byPurpose = (purpose: string) => d.dns_records.find((r) => r.purpose === purpose);
  const dkim = byPurpose('dkim');
  const spf = byPurpose('spf');
  return {
    id: d.id,
    name: d.name,
    teamId: tenantId,
    status: DOMAIN_STATUS[d.status],
    region,
    clickTracking: d.tracking_host !== null,
    openTracking: d.tracking_host !== null,
    publicKey: dkim ? dkimKey(dkim.value) : '',
    dkimStatus: dkim ? DOMAIN_STATUS[dkim.status] : null,
    spfDetails: spf ? DOMAIN_STATUS[spf.status] : null,
    createdAt: d.created_at,
    updatedAt: d.last_checked_at ?? d.created_at,
    dmarcAdded: byPurpose('dmarc')?.status === 'verified',
    isVerifying: d.status === 'pending',
    errorMessage: d.status_reason,
    subdomain: null,
    verificationError: d.status === 'failed' || d.status === 'temporary_failure' ? d.status_reason : null,
    lastCheckedTime: d.last_checked_at,
    dnsRecords: d.dns_records.map((r) => ({
      type: r.type,
      name: r.name,
      value: r.value,
      ttl: 'Auto',
      priority: r.priority === undefined ? null : String(r.priority),
      status: DOMAIN_STATUS[r.status],
      recommended: !r.required,
    })),
  };
}
