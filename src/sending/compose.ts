import { randomBytes } from 'node:crypto';
import { domainToASCII } from 'node:url';
import mimeFuncs from 'nodemailer/lib/mime-funcs/index.js';
import { bodyHash, dkimSignature, type DkimKey } from './dkim.ts';
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
  dkim: DkimKey;
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
const CRLF = '\r\n';
const HEX = Buffer.from('0123456789ABCDEF');

/**
 * Quoted-printable (RFC 2045 §6.7) of a text's UTF-8 bytes, CRLF line ends, lines of at most 76.
 * A space stays literal only before a printable character (a tab never), so a line never ends in
 * white space and no run or tab is left for relaxed DKIM canonicalisation to rewrite: the encoded part is canonical as
 * written (dkim.ts then hashes it without rewriting). '=' is always encoded, so the boundary
 * (`=_…`) can never occur in a part.
 */
export function quotedPrintable(text: string): string {
  const src = Buffer.from(text, 'utf8');
  const n = src.length;
  const out = Buffer.allocUnsafe(n * 3 + Math.ceil(n / 24) * 3 + 3);
  let o = 0;
  let col = 0;
  for (let i = 0; i < n; i++) {
    const c = src[i];
    if (c === 10 || (c === 13 && src[i + 1] === 10)) {
      if (c === 13) i++;
      out[o++] = 13;
      out[o++] = 10;
      col = 0;
      continue;
    }
    let literal = c >= 33 && c <= 126 && c !== 61;
    if (c === 32) {
      const next = i + 1 < n ? src[i + 1] : 10;
      literal = next >= 33 && next <= 126;
    }
    const width = literal ? 1 : 3;
    if (col + width > 75) {
      out[o++] = 61;
      out[o++] = 13;
      out[o++] = 10;
      col = 0;
    }
    if (literal) out[o++] = c;
    else {
      out[o++] = 61;
      out[o++] = HEX[c >> 4];
      out[o++] = HEX[c & 15];
    }
    col += width;
  }
  return out.toString('latin1', 0, o);
}

// Typed without its fourth argument (encode the whole value as one run of words, as MailComposer does).
const encodeWords = mimeFuncs.encodeWords.bind(mimeFuncs) as (value: string, encoding: 'Q', maxLength: number, encodeAll: boolean) => string;

/** `Name: a, b`: an address list, folded at 76 between addresses. */
function addressField(name: string, list: string[]): string {
  return mimeFuncs.foldLines(`${name}: ${list.map(address).join(', ')}`, 76);
}

// Base64 of an attachment, once per attachment object: every copy of a send shares the same Buffer.
const base64Lines = new WeakMap<Buffer, string>();
function base64Of(content: Buffer): string {
  let encoded = base64Lines.get(content);
  if (encoded === undefined) {
    encoded = (content.toString('base64').match(/.{1,76}/g) ?? []).join(CRLF);
    base64Lines.set(content, encoded);
  }
  return encoded;
}

/** An attachment's MIME part: RFC 2231 file names through nodemailer's header builder. */
function attachmentPart(a: Attachment): string {
  const type = mimeFuncs.buildHeaderValue({ value: a.contentType, params: { name: a.filename } });
  const disposition = mimeFuncs.buildHeaderValue({ value: 'attachment', params: { filename: a.filename } });
  return `Content-Type: ${type}${CRLF}Content-Transfer-Encoding: base64${CRLF}Content-Disposition: ${disposition}${CRLF}${CRLF}${base64Of(a.content)}${CRLF}`;
}

/** `Name: value`, RFC 2047-encoded when not ASCII and folded at 76 as nodemailer does. */
function field(name: string, value: string): string {
  return mimeFuncs.foldLines(`${name}: ${encodeWords(value, 'Q', 52, true)}`, 76);
}

/** An address as written in From/To: the domain in IDNA form, the local part as given (SMTPUTF8). */
function address(addr: string): string {
  if (/^[\x21-\x7e]*$/.test(addr)) return addr;
  const at = addr.lastIndexOf('@');
  return at < 0 ? addr : `${addr.slice(0, at)}@${domainToASCII(addr.slice(at + 1)) || addr.slice(at + 1)}`;
}

let dateSecond = 0;
let dateValue = '';
function dateHeader(now: number): string {
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = `Date: ${new Date(second * 1000).toUTCString().replace('GMT', '+0000')}`;
  }
  return dateValue;
}

/** The last input and output of an encoding: a value shared by consecutive messages is encoded once. */
class Memo {
  private input: string | null = null;
  private output = '';
  constructor(private readonly encode: (input: string) => string) {}
  get(input: string): string {
    if (input !== this.input) {
      this.output = this.encode(input);
      this.input = input;
    }
    return this.output;
  }
}

/**
 * Builds raw RFC 5322 messages that share a sender and custom headers (a list job, a proxy send to
 * many): what is the same for every recipient (the fixed header fields, the boundary, the part
 * headers) is built once here; an encoded subject or body part is reused while it repeats (a
 * template whose output does not depend on the recipient is encoded once), and a DKIM body hash
 * while the body repeats. Per recipient only what differs is written: To, Message-ID, our id,
 * List-Unsubscribe, Date, and whatever the template personalised.
 *
 * Header fields are a list of `Name: value` strings, body parts a list of (headers, encoded
 * content): a new header or MIME part is one more entry.
 */
export class MessageComposer {
  // '=' never occurs in a quoted-printable part unencoded: this boundary cannot collide with content.
  private readonly boundary = `=_se_${randomBytes(12).toString('hex')}`;
  // The outer boundary of messages with attachments (multipart/mixed around the alternative).
  private readonly mixedBoundary = `=_sm_${randomBytes(12).toString('hex')}`;
  private readonly fixedFields: string[];
  private readonly domain: string;
  private readonly subject = new Memo((s) => field('Subject', headerSafe(s)));
  private readonly text = new Memo(quotedPrintable);
  private readonly html = new Memo(quotedPrintable);
  private readonly bodyHash = new Memo(bodyHash);

  constructor(
    private readonly from: string,
    headers: Record<string, string>,
  ) {
    this.domain = from.slice(from.lastIndexOf('@') + 1);
    this.fixedFields = [
      // The caller's headers keep their spelling; values rendered per recipient get spaces for controls.
      ...Object.entries(headers).map(([k, v]) => field(k, headerSafe(v))),
      `From: ${address(from)}`,
      'MIME-Version: 1.0',
    ];
  }

  compose(m: MessageToCompose, signing?: Signing | null, now = Date.now()): ComposedMessage {
    // Stable per message: a resend after a crash carries the same Message-ID, so receivers can dedupe it.
    const messageId = `<${m.id}@${this.domain}>`;
    // The envelope recipient is always m.recipient (ComposedMessage.to); a Bcc copy's address is in no header.
    const fields = [...this.fixedFields, addressField('To', m.toHeader?.length ? m.toHeader : [m.recipient])];
    if (m.cc?.length) fields.push(addressField('Cc', m.cc));
    if (m.replyTo?.length) fields.push(addressField('Reply-To', m.replyTo));
    fields.push(this.subject.get(m.subject), `Message-ID: ${messageId}`, dateHeader(now), `${MESSAGE_ID_HEADER}: ${m.id}`);
    if (m.listUnsubscribe) {
      const lu = listUnsubscribeHeaders(m.listUnsubscribe);
      fields.push(field('List-Unsubscribe', lu['List-Unsubscribe']), `List-Unsubscribe-Post: ${lu['List-Unsubscribe-Post']}`);
    }
    const parts: Array<[contentType: string, encoded: string]> = [];
    if (m.text) parts.push(['text/plain; charset=utf-8', this.text.get(m.text)]);
    if (m.html) parts.push(['text/html; charset=utf-8', this.html.get(m.html)]);
    if (!parts.length) parts.push(['text/plain; charset=utf-8', '']);
    // The text itself: one part, or multipart/alternative of text and html.
    let contentHeaders: string[];
    let content: string;
    if (parts.length === 1) {
      contentHeaders = [`Content-Type: ${parts[0][0]}`, 'Content-Transfer-Encoding: quoted-printable'];
      content = `${parts[0][1]}${CRLF}`;
    } else {
      contentHeaders = [`Content-Type: multipart/alternative;${CRLF} boundary="${this.boundary}"`];
      const delimiter = `--${this.boundary}`;
      content = '';
      for (const [type, encoded] of parts) content += `${delimiter}${CRLF}Content-Type: ${type}${CRLF}Content-Transfer-Encoding: quoted-printable${CRLF}${CRLF}${encoded}${CRLF}`;
      content += `${delimiter}--${CRLF}`;
    }
    let body: string;
    if (!m.attachments?.length) {
      fields.push(...contentHeaders);
      body = content;
    } else {
      // Attachments: multipart/mixed of the text (as above) and one base64 part per attachment.
      fields.push(`Content-Type: multipart/mixed;${CRLF} boundary="${this.mixedBoundary}"`);
      const delimiter = `--${this.mixedBoundary}`;
      body = `${delimiter}${CRLF}${contentHeaders.join(CRLF)}${CRLF}${CRLF}${content}`;
      for (const a of m.attachments) body += `${delimiter}${CRLF}${attachmentPart(a)}`;
      body += `${delimiter}--${CRLF}`;
    }
    const base = { id: m.id, messageId, from: m.from, to: m.recipient };
    const head = fields.join(CRLF);
    if (!signing) return { ...base, raw: Buffer.from(`${head}${CRLF}${CRLF}${body}`, 'utf8') };
    const signature = dkimSignature(fields, this.bodyHash.get(body), signing.dkim, now);
    return { ...base, raw: Buffer.from(`${signature}${CRLF}${head}${CRLF}${CRLF}${body}`, 'utf8'), envelopeFrom: signing.envelopeFrom };
  }
}

// Composers by sender and custom headers: consecutive messages of one proxy send share theirs.
const composers = new Map<string, MessageComposer>();
const COMPOSERS = 200;

/** The composer for messages like `m` (same sender and custom headers), kept across calls. */
export function composerFor(m: Pick<MessageToCompose, 'from' | 'headers'>): MessageComposer {
  const names = Object.keys(m.headers);
  const key = names.length ? `${m.from}\n${JSON.stringify(m.headers)}` : m.from;
  let composer = composers.get(key);
  if (!composer) {
    if (composers.size >= COMPOSERS) composers.delete(composers.keys().next().value!);
    composers.set(key, (composer = new MessageComposer(m.from, m.headers)));
  }
  return composer;
}

/**
 * Builds the raw RFC 5322 message; with `signing`, DKIM-signs it with the From domain's key
 * (aligned for DMARC) and sets the return-path envelope sender.
 */
export async function composeMessage(m: MessageToCompose, signing?: Signing | null): Promise<ComposedMessage> {
  return composerFor(m).compose(m, signing);
}
