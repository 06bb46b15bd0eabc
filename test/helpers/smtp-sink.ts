import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerAddress } from 'smtp-server';

export interface SinkMessage {
  /** SMTP MAIL FROM (the return path). */
  envelopeFrom: string;
  envelopeTo: string[];
  raw: Buffer;
  parsed: ParsedMail;
  /** Our X-Send-Engine-Message-Id header. */
  messageId: string;
  /** Date.now() when the sink accepted it. */
  receivedAt: number;
}

export interface SmtpSink {
  port: number;
  url: string;
  messages: SinkMessage[];
  /** Resolves once at least n messages have arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<SinkMessage[]>;
  close(): Promise<void>;
}

export interface SinkOptions {
  /** Decides per recipient: undefined accepts; a number is the SMTP reply code to refuse with. */
  onRecipient?: (address: string) => number | undefined;
  /** Milliseconds to wait before accepting each message's data. */
  delayMs?: number;
  /** Milliseconds to wait before answering one RCPT TO (by its 0-based order of arrival), e.g. a stalling relay. */
  rcptDelayMs?: (address: string, index: number) => number;
  /** Called as the first bytes of a message's data arrive (before the end of DATA). */
  onDataStart?: () => void;
  /** Awaited once a message's data has ended, before the sink answers 250 (takes the message). */
  beforeAccept?: (messageId: string) => Promise<void>;
}

/** A real SMTP server (smtp-server) on 127.0.0.1 that keeps what it receives. */
export async function startSmtpSink(options: SinkOptions = {}): Promise<SmtpSink> {
  const messages: SinkMessage[] = [];
  const waiters: Array<() => void> = [];
  let rcptCount = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    size: 50 * 1024 * 1024,
    onRcptTo(address: SMTPServerAddress, _session, callback) {
      const answer = () => {
        const code = options.onRecipient?.(address.address);
        if (code) return callback(Object.assign(new Error(`${code} refused by test sink`), { responseCode: code }));
        callback();
      };
      const delay = options.rcptDelayMs?.(address.address, rcptCount++) ?? 0;
      if (delay) setTimeout(answer, delay);
      else answer();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => {
        if (!chunks.length) options.onDataStart?.();
        chunks.push(c);
      });
      stream.on('end', async () => {
        const raw = Buffer.concat(chunks);
        const parsed = await simpleParser(raw);
        const messageId = String(parsed.headers.get('x-send-engine-message-id') ?? '');
        if (options.beforeAccept) await options.beforeAccept(messageId);
        const accept = () => {
          messages.push({ envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', envelopeTo: session.envelope.rcptTo.map((r) => r.address), raw, parsed, messageId, receivedAt: Date.now() });
          waiters.splice(0).forEach((w) => w());
          callback(null, `Ok: queued as sink-${messages.length}`);
        };
        if (options.delayMs) setTimeout(accept, options.delayMs);
        else accept();
      });
    },
  });
  // A client killed mid-session (worker-process test) resets its socket; that is expected, not a test failure.
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    messages,
    async waitFor(n, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < n) {
        if (Date.now() > deadline) throw new Error(`sink got ${messages.length} of ${n} messages in ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
      return messages;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
