import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { parseConnectionUrl } from 'nodemailer/lib/shared/index.js';
import type { ComposedMessage } from '../sending/compose.ts';
import { signRaw, type DkimKey } from '../sending/dkim.ts';
import { TransportError, type SendOptions, type SendResult, type Transport } from './transport.ts';

export interface SmtpOptions {
  /** smtp://[user:pass@]host[:port] (STARTTLS when offered) or smtps://… (TLS from the start); nodemailer's URL syntax. */
  url: string;
  maxConnections: number;
  /** A key for messages that arrive unsigned (DKIM_DOMAIN/DKIM_PRIVATE_KEY); domain-signed ones are left as they are. */
  dkim?: DkimKey;
  /**
   * Upper bound of each wait in the dialogue (connect, greeting, each reply) and of a connection's
   * idleness, derived from the dispatch lease (transportTimeoutMs in src/dispatch/lease.ts).
   */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const END_OF_DATA = Buffer.from('.\r\n');
const CRLF_END_OF_DATA = Buffer.from('\r\n.\r\n');
const DOT = Buffer.from('.');

interface Reply {
  code: number;
  text: string;
}

/** An SMTP reply that ends a send: 5xx is permanent, 4xx is worth a retry. */
class ReplyError extends TransportError {
  constructor(command: string, reply: Reply) {
    super(`${command.split(':')[0]}: ${reply.text}`.slice(0, 500), reply.code >= 500);
  }
}

/**
 * One SMTP connection: replies are read in order as they arrive, so a group of pipelined commands
 * (RFC 2920) is written at once and its replies are taken one by one. Any error, timeout or close
 * fails what waits for a reply and makes the connection unusable.
 */
class Connection {
  private socket: net.Socket;
  private partial?: Buffer;
  private readonly lines: string[] = [];
  private readonly replies: Reply[] = [];
  private readonly waiters: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
  private failure?: Error;
  /** Waits of `unlessBroken`, failed with the connection. */
  private readonly holds = new Set<(err: Error) => void>();
  extensions = new Set<string>();
  authMethods = new Set<string>();
  idleTimer?: NodeJS.Timeout;

  constructor(
    socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    this.socket = this.attach(socket);
  }

  get broken(): boolean {
    return this.failure !== undefined;
  }

  private attach(socket: net.Socket): net.Socket {
    socket.setNoDelay(true);
    socket.setTimeout(this.timeoutMs);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('timeout', () => this.destroy(new TransportError(`SMTP timeout: no answer within ${this.timeoutMs} ms`, false)));
    socket.on('error', (err) => this.destroy(new TransportError(`SMTP connection: ${err.message}`, false)));
    socket.on('close', () => this.destroy(new TransportError('SMTP connection closed', false)));
    return socket;
  }

  private read(chunk: Buffer) {
    // Lines are cut from the bytes; only an unfinished line is kept (and joined to the next chunk).
    const data = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
    let from = 0;
    for (let at = data.indexOf(10); at >= 0; from = at + 1, at = data.indexOf(10, from)) {
      const line = data.toString('utf8', from, at > from && data[at - 1] === 13 ? at - 1 : at);
      // "250-..." continues a reply, "250 ..." (or a bare code) ends it.
      if (line.charCodeAt(3) === 45) {
        this.lines.push(line);
        continue;
      }
      const text = this.lines.length ? `${this.lines.splice(0).join(' | ')} | ${line}` : line;
      const reply = { code: Number(line.slice(0, 3)) || 0, text };
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(reply);
      else this.replies.push(reply);
    }
    this.partial = from < data.length ? Buffer.from(data.subarray(from)) : undefined;
  }

  /** The next reply, in order. */
  next(): Promise<Reply> {
    if (this.replies.length) return Promise.resolve(this.replies.shift()!);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  write(...chunks: Array<string | Buffer>) {
    this.socket.cork();
    for (const c of chunks) this.socket.write(c);
    this.socket.uncork();
  }

  async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.next();
  }

  /** STARTTLS: the same dialogue continues over TLS on this socket. */
  async upgrade(options: tls.ConnectionOptions): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data').removeAllListeners('timeout').removeAllListeners('close').removeAllListeners('error');
    plain.setTimeout(0);
    const secure = tls.connect({ ...options, socket: plain });
    this.socket = this.attach(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
  }

  /** `promise`, unless the connection breaks (an abort, the server's close) before it settles. */
  async unlessBroken<T>(promise: Promise<T>): Promise<T> {
    if (this.failure) throw this.failure;
    let fail!: (err: Error) => void;
    const broken = new Promise<never>((_, reject) => (fail = reject));
    this.holds.add(fail);
    try {
      return await Promise.race([promise, broken]);
    } finally {
      this.holds.delete(fail);
    }
  }

  destroy(err: Error) {
    clearTimeout(this.idleTimer);
    this.failure ??= err;
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
    for (const hold of this.holds) hold(this.failure);
    this.socket.destroy();
  }

  quit() {
    clearTimeout(this.idleTimer);
    if (this.failure) return;
    this.failure = new TransportError('SMTP connection closed', false);
    this.socket.end('QUIT\r\n');
    this.socket.setTimeout(1000, () => this.socket.destroy());
  }
}

/**
 * The message as DATA carries it: lines starting with '.' doubled (RFC 5321 §4.5.2), then the end
 * of data (a CRLF first if the message lacks its final one) as the last buffer, on its own.
 */
export function dotStuffed(raw: Buffer): Buffer[] {
  const end = raw.length >= 2 && raw[raw.length - 2] === 13 && raw[raw.length - 1] === 10 ? END_OF_DATA : CRLF_END_OF_DATA;
  if (raw[0] !== 0x2e && raw.indexOf('\n.') < 0) return [raw, end];
  const parts: Buffer[] = [];
  let from = 0;
  if (raw[0] === 0x2e) parts.push(DOT);
  for (let at = raw.indexOf('\n.'); at >= 0; at = raw.indexOf('\n.', at + 1)) {
    parts.push(raw.subarray(from, at + 1), DOT);
    from = at + 1;
  }
  parts.push(raw.subarray(from), end);
  return parts;
}

const isAscii = (s: string) => /^[\x00-\x7f]*$/.test(s);

interface Send {
  message: ComposedMessage;
  acceptAfter?: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
  connection?: Connection;
  settled: boolean;
}

/**
 * Pooled SMTP over node:net/tls: up to `maxConnections` connections, kept open between messages;
 * a message's MAIL, RCPT and DATA go out in one write when the server offers PIPELINING (RFC
 * 2920), so a message costs two round trips, and its bytes go out as composed (one write, no
 * copy unless a line needs dot-stuffing). Measured against nodemailer's pooled client in
 * docs/architecture.md ("The send path").
 *
 * Abort (the dispatcher's lease deadline): a send waiting for a connection leaves the queue; one in
 * flight has its connection destroyed, so no further byte of it leaves. Either way it fails with a
 * transient TransportError, as do connection errors, timeouts and 4xx replies; 5xx is permanent.
 */
export function smtpTransport(options: SmtpOptions): Transport {
  const url = parseConnectionUrl(options.url) as {
    host?: string; port?: number; secure?: boolean; auth?: { user?: string; pass?: string };
    tls?: tls.ConnectionOptions; ignoreTLS?: boolean; requireTLS?: boolean; name?: string;
  };
  const host = url.host ?? '127.0.0.1';
  const port = url.port ?? (url.secure ? 465 : 587);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const tlsOptions: tls.ConnectionOptions = { ...(net.isIP(host) ? {} : { servername: host }), ...url.tls };
  const user = url.auth?.user ? decodeURIComponent(url.auth.user) : undefined;
  const pass = url.auth?.pass ? decodeURIComponent(url.auth.pass) : '';
  const heloName = url.name ?? os.hostname();
  const queue: Send[] = [];
  const idle: Connection[] = [];
  /** Open or opening (counted from the start of connect). */
  let connections = 0;
  let opening = 0;
  let closed = false;

  async function connect(): Promise<Connection> {
    const socket = url.secure ? tls.connect({ host, port, ...tlsOptions }) : net.connect({ host, port });
    const connection = new Connection(socket, timeoutMs);
    try {
      const expect = async (reply: Promise<Reply>, ok: (code: number) => boolean, what: string) => {
        const r = await reply;
        if (!ok(r.code)) throw new ReplyError(what, r);
        return r;
      };
      await expect(connection.next(), (c) => c === 220, 'greeting');
      const ehlo = async () => {
        const r = await connection.command(`EHLO ${heloName}`);
        if (r.code !== 250) {
          await expect(connection.command(`HELO ${heloName}`), (c) => c === 250, 'HELO');
          connection.extensions = new Set();
          return;
        }
        const lines = r.text.split(' | ').slice(1).map((l) => l.slice(4).toUpperCase());
        connection.extensions = new Set(lines.map((l) => l.split(' ')[0]));
        connection.authMethods = new Set(lines.find((l) => l.startsWith('AUTH'))?.split(/[ =]/).slice(1) ?? []);
      };
      await ehlo();
      if (!url.secure && !url.ignoreTLS && (connection.extensions.has('STARTTLS') || url.requireTLS)) {
        await expect(connection.command('STARTTLS'), (c) => c === 220, 'STARTTLS');
        await connection.upgrade(tlsOptions);
        await ehlo();
      }
      if (user) {
        if (connection.authMethods.has('PLAIN') || !connection.authMethods.has('LOGIN')) {
          await expect(connection.command(`AUTH PLAIN ${Buffer.from(`\0${user}\0${pass}`).toString('base64')}`), (c) => c === 235, 'AUTH');
        } else {
          await expect(connection.command('AUTH LOGIN'), (c) => c === 334, 'AUTH');
          await expect(connection.command(Buffer.from(user).toString('base64')), (c) => c === 334, 'AUTH');
          await expect(connection.command(Buffer.from(pass).toString('base64')), (c) => c === 235, 'AUTH');
        }
      }
      return connection;
    } catch (err) {
      connection.destroy(err as Error);
      throw err instanceof TransportError ? err : new TransportError(`SMTP connection: ${(err as Error).message}`, false);
    }
  }

  /** One message on a ready connection; the connection is reusable afterwards unless it broke. */
  async function deliver(connection: Connection, message: ComposedMessage, acceptAfter?: Promise<void>): Promise<void> {
    // Resolved by the time the server answers DATA (an event-loop turn later) if it already was.
    let gateOpen = false;
    acceptAfter?.then(() => (gateOpen = true), () => {});
    let raw = message.raw;
    // A configured key signs what no domain key signed (the domain's own key wins).
    if (options.dkim && !message.envelopeFrom) raw = signRaw(raw, options.dkim);
    const from = message.envelopeFrom ?? message.from;
    const utf8 = connection.extensions.has('SMTPUTF8') && !isAscii(from + message.to) ? ' SMTPUTF8' : '';
    const envelope = [`MAIL FROM:<${from}>${utf8}`, `RCPT TO:<${message.to}>`, 'DATA'];
    const replies: Reply[] = [];
    if (connection.extensions.has('PIPELINING')) {
      connection.write(`${envelope.join('\r\n')}\r\n`);
      for (let i = 0; i < envelope.length; i++) {
        // A server that refuses with 421 closes the connection before the rest of the group is
        // answered: the refusal is the reason, not the close.
        const reply = await connection.next().catch((err: Error) => {
          const refused = replies.findIndex((r) => r.code >= 400);
          throw refused >= 0 ? new ReplyError(envelope[refused], replies[refused]) : err;
        });
        replies.push(reply);
      }
    } else {
      for (const command of envelope) {
        const r = await connection.command(command);
        replies.push(r);
        if (r.code >= 400) break;
      }
    }
    const failed = replies.findIndex((r, i) => (i < 2 ? r.code !== 250 && r.code !== 251 : r.code !== 354));
    if (failed >= 0) {
      // A server that took DATA despite a refused recipient gets an empty message ended at once.
      if (replies[2]?.code === 354) {
        connection.write(END_OF_DATA);
        await connection.next();
      }
      const reset = await connection.command('RSET');
      if (reset.code !== 250) connection.destroy(new ReplyError('RSET', reset));
      throw new ReplyError(envelope[failed], replies[failed]);
    }
    const data = dotStuffed(raw);
    if (acceptAfter && !gateOpen) {
      // Everything but the end of data goes out now; the server takes the message (and this lane's
      // send counts as confirmed) only once the lane's previous outcome is durable.
      const endOfData = data.pop()!;
      connection.write(...data);
      // Aborted (lease ending) or closed while waiting: the message was never taken.
      await connection.unlessBroken(acceptAfter);
      connection.write(endOfData);
    } else {
      // Already durable: body and end of data in one write.
      connection.write(...data);
    }
    const done = await connection.next();
    if (done.code !== 250) throw new ReplyError('DATA', done);
  }

  function release(connection: Connection) {
    if (connection.broken || closed) {
      connections--;
      if (!connection.broken) connection.quit();
      return pump();
    }
    // Closed by us before the server times it out, so a send never races the server's close.
    connection.idleTimer = setTimeout(() => {
      const at = idle.indexOf(connection);
      if (at >= 0) idle.splice(at, 1);
      connections--;
      connection.quit();
    }, timeoutMs).unref();
    idle.push(connection);
    pump();
  }

  function run(connection: Connection, send: Send) {
    clearTimeout(connection.idleTimer);
    send.connection = connection;
    deliver(connection, send.message, send.acceptAfter).then(
      () => settle(send),
      (err) => settle(send, err instanceof TransportError ? err : new TransportError(`SMTP: ${(err as Error).message}`, false)),
    ).finally(() => release(connection));
  }

  function pump() {
    while (queue.length && idle.length) {
      const connection = idle.pop()!;
      // Closed by the server (or timed out) while idle: dropped, never handed a send.
      if (connection.broken) connections--;
      else run(connection, queue.shift()!);
    }
    // One new connection per waiting send not already waiting for one, up to the limit.
    for (let n = Math.min(queue.length - opening, options.maxConnections - connections); n > 0; n--) {
      connections++;
      opening++;
      connect().then(
        (connection) => {
          opening--;
          release(connection);
        },
        (err: TransportError) => {
          opening--;
          connections--;
          // The server cannot be reached or refused us: every send waiting for it fails now
          // (retried by the dispatcher with backoff) rather than each waiting its own timeout.
          if (connections === 0) for (const send of queue.splice(0)) settle(send, err);
          else if (queue.length) settle(queue.shift()!, err);
        },
      );
    }
  }

  function settle(send: Send, err?: Error) {
    if (send.settled) return;
    send.settled = true;
    if (err) send.reject(err);
    else send.resolve();
  }

  return {
    name: 'smtp',
    defersAcceptance: true,
    async send(message: ComposedMessage, sendOptions: SendOptions = {}): Promise<SendResult> {
      const { signal, acceptAfter } = sendOptions;
      if (signal?.aborted) throw new TransportError('send deadline passed before the send started', false);
      if (closed) throw new TransportError('SMTP transport closed', false);
      let onAbort: (() => void) | undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          const send: Send = { message, acceptAfter, resolve, reject, settled: false };
          onAbort = () => {
            const waiting = queue.indexOf(send);
            if (waiting >= 0) queue.splice(waiting, 1);
            send.connection?.destroy(new TransportError('send aborted', false));
            settle(send, new TransportError('send deadline reached (lease ending); connection closed', false));
          };
          signal?.addEventListener('abort', onAbort, { once: true });
          queue.push(send);
          pump();
        });
      } finally {
        if (onAbort) signal?.removeEventListener('abort', onAbort);
      }
      // The Message-ID we sent, not the relay's queue id: what DSNs and provider events quote.
      return { providerMessageId: message.messageId };
    },
    async close() {
      closed = true;
      for (const send of queue.splice(0)) settle(send, new TransportError('SMTP transport closed', false));
      for (const connection of idle.splice(0)) {
        connections--;
        connection.quit();
      }
    },
  };
}

/**
 * A socket with TCP_NODELAY for nodemailer's `getSocket` (the bare-nodemailer baselines of the
 * benches): with Nagle's algorithm on, an SMTP dialogue of small writes waits on the peer's delayed
 * ACK (about 40 ms a message).
 */
export function noDelaySocket(target: { host?: string; port?: number }, callback: (err: Error | null, socket?: { connection: net.Socket } | false) => void) {
  const socket = net.connect({ host: target.host ?? '127.0.0.1', port: target.port ?? 25 });
  socket.setNoDelay(true);
  const onError = () => callback(null);
  socket.once('error', onError);
  socket.once('connect', () => {
    socket.removeListener('error', onError);
    callback(null, { connection: socket });
  });
}
