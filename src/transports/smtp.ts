import net from 'node:net';
import nodemailer from 'nodemailer';
import { parseConnectionUrl } from 'nodemailer/lib/shared/index.js';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import type { ComposedMessage } from '../sending/compose.ts';
import { TransportError, type SendOptions, type SendResult, type Transport } from './transport.ts';

export interface SmtpOptions {
  url: string;
  maxConnections: number;
  dkim?: { domainName: string; keySelector: string; privateKey: string };
  /**
   * Upper bound of each wait in the dialogue (connect, greeting, socket inactivity), derived from
   * the dispatch lease (transportTimeoutMs in src/dispatch/dispatcher.ts); default nodemailer's.
   */
  timeoutMs?: number;
}

/** What the abort path reaches inside nodemailer's pool (7.x; test/transports/smtp.test.ts covers it). */
interface PoolEntry {
  mail: { data: { sendEngineId?: string } };
  callback: (err: Error) => void;
}
interface PoolInternals {
  _queue: PoolEntry[];
  _connections: Array<{ queueEntry: PoolEntry | false; connection?: { _socket?: net.Socket; close(): void } }>;
}

// nodemailer errors without an SMTP reply that no retry can fix; connection trouble is retried.
const PERMANENT_CODES = new Set(['EENVELOPE', 'EMESSAGE']);

type SocketCallback = (err: Error | null, socket?: { connection: net.Socket } | false) => void;

/**
 * nodemailer opens sockets with Nagle's algorithm on; an SMTP dialogue of small writes then waits on
 * the peer's delayed ACK (about 40 ms a message). We hand it sockets with TCP_NODELAY instead
 * (measured: 210 -> 1,460 msgs/s into Postfix's smtp-sink over 10 connections). TLS, when the URL
 * asks for it, is layered on this socket by nodemailer as usual.
 */
export function noDelaySocket(target: { host?: string; port?: number; connectionTimeout?: number }, callback: SocketCallback) {
  const socket = net.connect({ host: target.host ?? '127.0.0.1', port: target.port ?? 25 });
  socket.setNoDelay(true);
  // On failure let nodemailer connect by itself: it then reports the error as usual, whereas an
  // error handed back from getSocket leaves its pool waiting forever.
  const timer = target.connectionTimeout ? setTimeout(() => socket.destroy(new Error('connect timeout')), target.connectionTimeout) : undefined;
  const onError = () => {
    clearTimeout(timer);
    callback(null);
  };
  socket.once('error', onError);
  socket.once('connect', () => {
    clearTimeout(timer);
    socket.removeListener('error', onError);
    callback(null, { connection: socket });
  });
}

/**
 * Ends one send of the pool for good: out of the queue if it waits for a connection, else its
 * connection is destroyed (no further byte of it leaves), so it cannot complete after we gave up.
 */
function abortPooledSend(pool: PoolInternals, id: string, reason: Error) {
  const waiting = pool._queue.findIndex((e) => e.mail.data.sendEngineId === id);
  if (waiting >= 0) return pool._queue.splice(waiting, 1)[0].callback(reason);
  const resource = pool._connections.find((c) => c.queueEntry && c.queueEntry.mail.data.sendEngineId === id);
  resource?.connection?._socket?.destroy();
  resource?.connection?.close();
}

/** Pooled SMTP through nodemailer; DKIM-signs when a key is configured. */
export function smtpTransport(options: SmtpOptions): Transport {
  // The URL is parsed here, not passed as `url`: given a `url`, createTransport keeps only what the
  // URL says and silently drops pool, maxConnections, getSocket and dkim (one connection a message).
  const transporter = nodemailer.createTransport({
    ...parseConnectionUrl(options.url),
    pool: true,
    maxConnections: options.maxConnections,
    maxMessages: Infinity,
    // A send whose connection closed fails (and the dispatcher retries it under its lease) rather
    // than being re-queued inside nodemailer, where it could go out after the lease has passed.
    maxRequeues: 0,
    ...(options.timeoutMs ? { connectionTimeout: options.timeoutMs, greetingTimeout: options.timeoutMs, socketTimeout: options.timeoutMs } : {}),
    dkim: options.dkim,
    getSocket: (target: { host?: string; port?: number }, callback: SocketCallback) => noDelaySocket({ ...target, connectionTimeout: options.timeoutMs }, callback),
  } as SMTPPool.Options);
  const pool = (transporter as unknown as { transporter: PoolInternals }).transporter;
  return {
    name: 'smtp',
    async send(message: ComposedMessage, sendOptions: SendOptions = {}): Promise<SendResult> {
      const { signal } = sendOptions;
      let onAbort: (() => void) | undefined;
      try {
        if (signal?.aborted) throw new TransportError('send deadline passed before the send started', false);
        const sent = transporter.sendMail({ envelope: { from: message.envelopeFrom ?? message.from, to: [message.to] }, raw: message.raw, sendEngineId: message.id } as nodemailer.SendMailOptions);
        // After an abort, the pool's own failure of this send arrives late and means nothing more.
        sent.catch(() => {});
        const aborted = new Promise<never>((_, reject) => {
          onAbort = () => {
            const err = new TransportError('send deadline reached (lease ending); connection closed', false);
            abortPooledSend(pool, message.id, err);
            reject(err);
          };
          signal?.addEventListener('abort', onAbort, { once: true });
        });
        await Promise.race([sent, aborted]);
        // The Message-ID we sent, not the relay's queue id: what DSNs and provider events quote.
        return { providerMessageId: message.messageId };
      } catch (err) {
        if (err instanceof TransportError) throw err;
        const e = err as Error & { responseCode?: number; code?: string; response?: string };
        const reason = (e.response ?? e.message).slice(0, 500);
        if (typeof e.responseCode === 'number') throw new TransportError(reason, e.responseCode >= 500);
        throw new TransportError(reason, PERMANENT_CODES.has(e.code ?? ''));
      } finally {
        if (onAbort) signal?.removeEventListener('abort', onAbort);
      }
    },
    async close() {
      transporter.close();
    },
  };
}
