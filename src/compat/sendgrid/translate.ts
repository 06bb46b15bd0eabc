import type { SendInput } from '../../sending/submit.ts';
import { SendGridError, unsupported } from './errors.ts';

interface Address {
  email: string;
  name?: string;
}

interface Personalization {
  to: Address[];
  cc?: Address[];
  bcc?: Address[];
  from?: Address;
  subject?: string;
  headers?: Record<string, string>;
  substitutions?: Record<string, string>;
  dynamic_template_data?: Record<string, unknown>;
  custom_args?: Record<string, string>;
  send_at?: number;
}

/** POST /v3/mail/send (schemas.ts). */
export interface MailSend {
  personalizations: Personalization[];
  from: Address;
  reply_to?: Address;
  reply_to_list?: Address[];
  subject?: string;
  content?: Array<{ type: string; value: string }>;
  attachments?: Array<{ content: string; filename: string; type?: string; disposition?: 'attachment' | 'inline'; content_id?: string }>;
  template_id?: string;
  headers?: Record<string, string>;
  categories?: string[];
  custom_args?: Record<string, string>;
  send_at?: number;
  batch_id?: string;
  asm?: object;
  ip_pool_name?: string;
  sections?: Record<string, string>;
  mail_settings?: Record<string, unknown>;
  tracking_settings?: Record<string, unknown>;
}

// Fields SendGrid has and this engine does not: refused whenever given.
const REFUSED = ['batch_id', 'asm', 'ip_pool_name', 'sections'] as const;

/** `mail_settings.sandbox_mode`, `tracking_settings.ganalytics`...: refused when switched on; `{enable: false}` asks for nothing. */
function refuseEnabled(group: 'mail_settings' | 'tracking_settings', settings: Record<string, unknown> | undefined) {
  for (const [name, setting] of Object.entries(settings ?? {})) {
    const enable = setting && typeof setting === 'object' ? (setting as { enable?: unknown }).enable : undefined;
    if (enable !== false) throw unsupported(`${group}.${name}`);
  }
}

/** The bare address: the engine's sends carry no display names, and a given name is refused rather than lost. */
function bare(address: Address, field: string): string {
  if (address.name !== undefined && address.name !== '') throw unsupported(`${field}.name`, `${field}.name (display names)`);
  return address.email;
}
const bareList = (list: Address[] | undefined, field: string) => list?.map((a, i) => bare(a, `${field}.${i}`));

/** SendGrid's legacy substitutions: each key replaced by its value, literally. */
function substitute(text: string, substitutions: Record<string, string> | undefined): string {
  let out = text;
  for (const [key, value] of Object.entries(substitutions ?? {})) out = out.split(key).join(value);
  return out;
}

const isoTime = (unixSeconds: number | undefined) => (unixSeconds === undefined ? undefined : new Date(unixSeconds * 1000).toISOString());

/**
 * One native send per personalization (its own recipients, subject, substitutions or template
 * data), all sharing the message's content, attachments and reply-to. `idempotencyBase` is fresh
 * per request: SendGrid has no idempotency keys.
 */
export function toSendInputs(body: MailSend, idempotencyBase: string): SendInput[] {
  for (const field of REFUSED) if (body[field] !== undefined) throw unsupported(field);
  refuseEnabled('mail_settings', body.mail_settings);
  refuseEnabled('tracking_settings', body.tracking_settings);

  let html: string | undefined;
  let text: string | undefined;
  for (const [i, part] of (body.content ?? []).entries()) {
    const type = part.type.toLowerCase();
    if (type === 'text/html' && html === undefined) html = part.value;
    else if (type === 'text/plain' && text === undefined) text = part.value;
    else throw new SendGridError(`content.${i}.type`, `content.${i}.type must be text/plain or text/html, each at most once`);
  }
  const attachments = body.attachments?.map((a, i) => {
    if (a.disposition === 'inline' || a.content_id !== undefined) {
      const field = `attachments.${i}.${a.content_id !== undefined ? 'content_id' : 'disposition'}`;
      throw unsupported(field, `${field} (inline attachments)`);
    }
    return { filename: a.filename, content: a.content, ...(a.type ? { content_type: a.type } : {}) };
  });
  const replyTo = body.reply_to_list ? bareList(body.reply_to_list, 'reply_to_list') : body.reply_to ? [bare(body.reply_to, 'reply_to')] : undefined;
  const from = bare(body.from, 'from');

  return body.personalizations.map((p, i) => {
    const at = `personalizations.${i}`;
    const subject = p.subject ?? body.subject;
    const common = {
      message_type: 'transactional' as const,
      from: p.from ? bare(p.from, `${at}.from`) : from,
      to: bareList(p.to, `${at}.to`)!,
      ...(p.cc ? { cc: bareList(p.cc, `${at}.cc`) } : {}),
      ...(p.bcc ? { bcc: bareList(p.bcc, `${at}.bcc`) } : {}),
      ...(replyTo ? { reply_to: replyTo } : {}),
      ...(attachments ? { attachments } : {}),
      ...(body.headers || p.headers ? { headers: { ...body.headers, ...p.headers } } : {}),
      ...((p.send_at ?? body.send_at) !== undefined ? { scheduled_at: isoTime(p.send_at ?? body.send_at) } : {}),
      tags: {
        campaign_id: '', site_id: '', list_id: '', segment: '', api: 'sendgrid',
        ...(body.categories ? { categories: body.categories } : {}),
        ...(body.custom_args || p.custom_args ? { custom_args: { ...body.custom_args, ...p.custom_args } } : {}),
      },
      idempotency_key: `${idempotencyBase}:${i}`,
    };
    if (body.template_id !== undefined) {
      if (p.substitutions) throw unsupported(`${at}.substitutions`, `${at}.substitutions with template_id (use dynamic_template_data)`);
      if (p.subject !== undefined) throw unsupported(`${at}.subject`, `${at}.subject with template_id (the stored template has the subject)`);
      return { ...common, template_id: body.template_id, variables: p.dynamic_template_data ?? {} };
    }
    if (p.dynamic_template_data !== undefined) throw new SendGridError(`${at}.dynamic_template_data`, `${at}.dynamic_template_data needs template_id`);
    if (subject === undefined) throw new SendGridError('subject', 'The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.');
    if (html === undefined && text === undefined) throw new SendGridError('content', 'Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block.');
    return {
      ...common,
      subject: substitute(subject, p.substitutions),
      html: substitute(html ?? '', p.substitutions),
      text: substitute(text ?? '', p.substitutions),
    };
  });
}
