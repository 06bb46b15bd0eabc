import type { Queryable } from '../db/pool.ts';
import { invalid } from '../errors.ts';
import { validateHeaderValue } from './headers.ts';

/** POST /v1/send-jobs `attachments[]` as sent. */
export interface AttachmentInput {
  filename: string;
  /** Base64 (RFC 4648, no line breaks). */
  content: string;
  content_type?: string;
}

/** An attachment as stored (once per send) and composed into every copy. */
export interface Attachment {
  filename: string;
  contentType: string;
  content: Buffer;
}

/**
 * Per send: SES takes 40 MB of raw message and most receivers 25 MB; base64 adds a third, so 10 MB
 * of attachments keeps a message under both with room for the body.
 */
export const ATTACHMENT_LIMITS = { count: 10, bytes: 5 * 1024 * 1024, totalBytes: 10 * 1024 * 1024 } as const;

/** Executable file types (as file-type names them): refused whatever the declared type or name says. */
const EXECUTABLE_TYPES = new Set([
  'exe', 'elf', 'macho', 'wasm', 'class', 'apk', 'dex', 'msi', 'cab', 'deb', 'rpm', 'dmg', 'lnk', 'jar', 'xpi', 'crx', 'swf',
]);
const EXECUTABLE_MIME = /^application\/(x-msdownload|x-ms-?dos-executable|x-executable|x-elf|x-mach-binary|vnd\.microsoft\.portable-executable|x-msi|x-ms-installer|x-sh|x-bat|x-msdos-program|java-archive|x-java-archive|wasm|x-apple-diskimage|vnd\.android\.package-archive|x-dosexec)$/i;
/** Scripts and installers that have no magic bytes to sniff: refused by name. */
const EXECUTABLE_NAME = /\.(exe|com|bat|cmd|scr|pif|cpl|msi|msp|mst|dll|sys|vbs|vbe|js|jse|wsf|wsh|ws|ps1|psm1|hta|jar|sh|bash|csh|app|apk|dmg|pkg|deb|rpm|lnk|reg|inf|scf|gadget|appx|msix|elf|run|wasm|iso)$/i;
// A flat character class: no backtracking state per character, whatever the length.
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const MIME = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i;

const refused = (index: number, why: string) => invalid(`attachments[${index}]: ${why}`, 'attachment_type_refused');

/**
 * Decodes and checks attachments: base64, the size limits, and the content type sniffed from the
 * bytes (file-type): the sniffed type wins over the declared one, and executables are refused
 * (422 `attachment_type_refused`) by their bytes, their declared type or their name.
 */
export async function prepareAttachments(inputs: AttachmentInput[] | undefined): Promise<Attachment[]> {
  if (!inputs?.length) return [];
  if (inputs.length > ATTACHMENT_LIMITS.count) throw invalid(`at most ${ATTACHMENT_LIMITS.count} attachments per send`, 'attachment_too_large');
  const out: Attachment[] = [];
  let total = 0;
  for (const [i, input] of inputs.entries()) {
    validateHeaderValue(`attachments[${i}].filename`, input.filename);
    if (input.content.length > Math.ceil(ATTACHMENT_LIMITS.bytes / 3) * 4 + 4) {
      throw invalid(`attachments[${i}] is over ${ATTACHMENT_LIMITS.bytes} bytes`, 'attachment_too_large');
    }
    if (input.content.length % 4 !== 0 || !BASE64.test(input.content)) throw invalid(`attachments[${i}].content must be base64 (RFC 4648, no line breaks)`, 'invalid_attachment');
    const content = Buffer.from(input.content, 'base64');
    if (content.length > ATTACHMENT_LIMITS.bytes) throw invalid(`attachments[${i}] is over ${ATTACHMENT_LIMITS.bytes} bytes`, 'attachment_too_large');
    total += content.length;
    if (total > ATTACHMENT_LIMITS.totalBytes) throw invalid(`attachments total over ${ATTACHMENT_LIMITS.totalBytes} bytes`, 'attachment_too_large');
    if (input.content_type !== undefined && !MIME.test(input.content_type)) throw invalid(`attachments[${i}].content_type must be a MIME type such as application/pdf`, 'invalid_attachment');
    // file-type (ESM only) is loaded by the first attachment, not by every engine (docs/operations.md#memory).
    const sniffed = await (await import('file-type')).fileTypeFromBuffer(content);
    if (sniffed && EXECUTABLE_TYPES.has(sniffed.ext)) throw refused(i, `executable content (${sniffed.mime}) is not sent`);
    if (input.content_type && EXECUTABLE_MIME.test(input.content_type)) throw refused(i, `executable type ${input.content_type} is not sent`);
    if (EXECUTABLE_NAME.test(input.filename)) throw refused(i, 'executable or script file names are not sent');
    out.push({ filename: input.filename, contentType: sniffed?.mime ?? input.content_type?.toLowerCase() ?? 'application/octet-stream', content });
  }
  return out;
}

// Attachments the dispatcher keeps at hand: every copy of a send to many recipients reuses them.
const CACHE_BYTES = 64 * 1024 * 1024;

/** Loads a send's attachments once for all its copies (bounded by bytes, oldest dropped first). */
export class AttachmentCache {
  private readonly entries = new Map<string, Promise<Attachment[]>>();
  private readonly sizes = new Map<string, number>();
  private bytes = 0;

  constructor(private readonly db: Queryable) {}

  load(proxyJobId: string): Promise<Attachment[]> {
    const hit = this.entries.get(proxyJobId);
    if (hit) return hit;
    const loading = this.db
      .query<{ filename: string; content_type: string; content: Buffer }>(
        'SELECT filename, content_type, content FROM proxy_job_attachments WHERE proxy_job_id = $1 ORDER BY position',
        [proxyJobId],
      )
      .then(({ rows }) => {
        const attachments = rows.map((r) => ({ filename: r.filename, contentType: r.content_type, content: r.content }));
        this.remember(proxyJobId, attachments.reduce((n, a) => n + a.content.length, 0));
        return attachments;
      });
    this.entries.set(proxyJobId, loading);
    // A failed load is not kept: the next copy tries again.
    loading.catch(() => this.entries.delete(proxyJobId));
    return loading;
  }

  private remember(id: string, size: number) {
    this.sizes.set(id, size);
    this.bytes += size;
    for (const [oldest, oldSize] of this.sizes) {
      if (this.bytes <= CACHE_BYTES || oldest === id) break;
      this.sizes.delete(oldest);
      this.entries.delete(oldest);
      this.bytes -= oldSize;
    }
  }
}
