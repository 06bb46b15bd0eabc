import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ComposedMessage } from '../sending/compose.ts';
import { TransportError, type SendOptions, type SendResult, type Transport } from './transport.ts';

/** Development transport: every message becomes `<dir>/<message id>.eml`; nothing leaves the machine. */
export function captureTransport(dir: string): Transport {
  let ready: Promise<unknown> | undefined;
  return {
    name: 'capture',
    async send(message: ComposedMessage, options: SendOptions = {}): Promise<SendResult> {
      if (options.signal?.aborted) throw new TransportError('send deadline passed before the send started', false);
      ready ??= mkdir(dir, { recursive: true });
      await ready;
      const file = path.join(dir, `${message.id}.eml`);
      // Write then rename, so a reader never sees half a message.
      await writeFile(`${file}.tmp`, message.raw);
      await rename(`${file}.tmp`, file);
      return { providerMessageId: `capture-${message.id}` };
    },
    async close() {},
  };
}

export interface CapturedMessage {
  file: string;
  time: Date;
  to: string;
  subject: string;
}

function headerValue(head: string, name: string): string {
  const match = head.match(new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im'));
  return match ? match[1].replace(/\r?\n[ \t]/g, ' ') : '';
}

/** The captured messages, newest first (what `send-engine inbox` prints). */
export async function listCaptured(dir: string, limit = 50): Promise<CapturedMessage[]> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith('.eml'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  // uuid v7 names sort by creation time.
  files.sort().reverse();
  return Promise.all(
    files.slice(0, limit).map(async (f) => {
      const file = path.join(dir, f);
      const [content, info] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
      const head = content.split(/\r?\n\r?\n/, 1)[0];
      return { file, time: info.mtime, to: headerValue(head, 'To'), subject: headerValue(head, 'Subject') };
    }),
  );
}
