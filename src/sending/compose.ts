import DKIM from 'nodemailer/lib/dkim/index.js';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { Attachment } from './attachments.ts';
import { headerSafe } from './headers.ts';
import type { ListUnsubscribe } from './submit.ts';

/** What the dispatcher knows about one message when it is time to send it. */
export interface MessageToCompose {
  id: string;
  recipient: string;
  from: string;
  subject: string;
  html: string | null;
  text: string | null;
  headers: Record<string, string>;
  listUnsubscribe: ListUnsubscribe | null;
  /** The To header of every copy of a send with cc or bcc; absent: the recipient alone. */
  toHeader?: string[] | null;
  cc?: string[] | null;
  replyTo?: string[] | null;
  attachments?: Attachment[];
}

export interface ComposedMessage {
  id: string;
  /** The Message-ID header as sent, `<message uuid@from domain>`. */
  messageId: string;
  from: string;
  to: string;
  raw: Buffer;
  /** The envelope sender (SMTP MAIL FROM) when it is not `from`: the domain's return path. */
  envelopeFrom?: string;
}

/** How a message from a tenant's verified domain is signed and bounced (src/domains/signing.ts). */
export interface Signing {
  dkim: { domainName: string; keySelector: string; privateKey: string };
  envelopeFrom: string;
}

export interface MessageSigner {
  signingFor(tenantId: string, from: string): Promise<Signing | null>;
}

/** RFC 8058 headers: exactly one List-Unsubscribe (https first, then mailto) and the one-click POST marker. */
export function listUnsubscribeHeaders(lu: ListUnsubscribe): Record<string, string> {
  const targets = [`<${lu.url}>`];
  if (lu.mailto) targets.push(`<mailto:${lu.mailto}>`);
  return { 'List-Unsubscribe': targets.join(', '), 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' };
}

const MESSAGE_ID_HEADER = 'X-Send-Engine-Message-Id';

/**
 * nodemailer title-cases header names ("...-Message-ID"); ours and the caller's keep their spelling,
 * the rest get nodemailer's usual form.
 */
function headerKeyCase(exact: Map<string, string>) {
  return (key: string) =>
    exact.get(key.toLowerCase()) ??
    key.toLowerCase().replace(/^(mime|dkim)\b|^[a-z]|-(id|spf|fbl|md5)$|-[a-z]/g, (c) => c.toUpperCase());
}

// nodemailer's default list (RFC 6376 5.4.1) plus List-Unsubscribe-Post, which RFC 8058 requires signed.
const SIGNED_HEADERS =
  'From:Sender:Reply-To:Subject:Date:Message-ID:To:Cc:MIME-Version:Content-Type:Content-Transfer-Encoding:' +
  'In-Reply-To:References:List-Id:List-Help:List-Unsubscribe:List-Unsubscribe-Post:List-Subscribe:List-Post:List-Owner:List-Archive';

async function dkimSign(raw: Buffer, dkim: Signing['dkim']): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const signed = new DKIM({ ...dkim, headerFieldNames: SIGNED_HEADERS }).sign(raw);
  for await (const chunk of signed) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Builds the raw RFC 5322 message with nodemailer's MailComposer; with `signing`, DKIM-signs it
 * with the From domain's key (aligned for DMARC) and sets the return-path envelope sender.
 */
export async function composeMessage(m: MessageToCompose, signing?: Signing | null): Promise<ComposedMessage> {
  const domain = m.from.slice(m.from.lastIndexOf('@') + 1);
  // Stable per message: a resend after a crash carries the same Message-ID, so receivers can dedupe it.
  const messageId = `<${m.id}@${domain}>`;
  const headers: Record<string, string> = {
    ...Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, headerSafe(v)])),
    ...(m.listUnsubscribe ? listUnsubscribeHeaders(m.listUnsubscribe) : {}),
    [MESSAGE_ID_HEADER]: m.id,
  };
  const mail = new MailComposer({
    from: m.from,
    // The envelope recipient is always m.recipient (ComposedMessage.to); a Bcc copy's address is in no header.
    to: m.toHeader?.length ? m.toHeader : m.recipient,
    ...(m.cc?.length ? { cc: m.cc } : {}),
    ...(m.replyTo?.length ? { replyTo: m.replyTo } : {}),
    ...(m.attachments?.length ? { attachments: m.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.content })) } : {}),
    subject: headerSafe(m.subject),
    html: m.html || undefined,
    text: m.text || undefined,
    messageId,
    // Fixed, so nodemailer does not scan every body with regexes to choose (12% of a worker's CPU).
    textEncoding: 'quoted-printable',
    headers,
    normalizeHeaderKey: headerKeyCase(new Map(Object.keys(headers).map((k) => [k.toLowerCase(), k]))),
  } as ConstructorParameters<typeof MailComposer>[0]);
  const raw = await new Promise<Buffer>((resolve, reject) =>
    mail.compile().build((err, message) => (err ? reject(err) : resolve(message))),
  );
  if (!signing) return { id: m.id, messageId, from: m.from, to: m.recipient, raw };
  return { id: m.id, messageId, from: m.from, to: m.recipient, raw: await dkimSign(raw, signing.dkim), envelopeFrom: signing.envelopeFrom };
}
