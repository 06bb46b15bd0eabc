import { createRequire } from 'node:module';
import type { Pdu, Session } from 'smpp';
import type { Logger } from '../../log.ts';
import { TransportError } from '../../transports/transport.ts';
import type { ChannelSend, ChannelTransport, Receipt } from '../types.ts';
import { maskPhone } from './phone.ts';

// The smpp package is loaded by the first SMPP connection, not by every engine (docs/operations.md#memory).
const require = createRequire(import.meta.url);

/**
 * An SMPP 3.4 ESME (the `smpp` package): one bind_transceiver session to a carrier or aggregator,
 * submit_sm with registered_delivery, deliver_sm receipts turned into delivered/failed receipts,
 * inbound deliver_sm (MO) handed on (STOP/START), ESME_RTHROTTLED retried with backoff inside the
 * send's deadline, and a lost bind restored by reconnecting with backoff. Submits are pipelined
 * (any number in flight on the one session: the SMSC answers by sequence number).
 */
export interface SmppOptions {
  /** smpp://host:port (ssmpp:// for TLS). */
  url: string;
  systemId: string;
  password: string;
  systemType?: string;
  /** How often an idle session is probed with enquire_link. */
  enquireLinkMs?: number;
  /** ESME_RTHROTTLED / ESME_RMSGQFUL: how many times one submit is tried again, first after this many ms, doubling. */
  throttleRetries?: number;
  throttleBaseMs?: number;
  /** Reconnect backoff after a lost bind: this, doubling to 30 s. */
  reconnectBaseMs?: number;
  onReceipts: (receipts: Receipt[]) => Promise<void>;
  /** A mobile-originated message (deliver_sm that is not a receipt): STOP/START keywords. */
  onInbound?: (message: { from: string; to: string; text: string }) => Promise<void>;
  log: Logger;
}

// Statuses that will not change on a retry: the message itself is wrong.
const PERMANENT = new Set([0x01, 0x0a, 0x0b, 0x33, 0x48, 0x49, 0x50, 0x51, 0x61, 0x62]);
const THROTTLED = new Set([0x58, 0x14]);
// deliver_sm receipt states (SMPP 3.4 5.2.28 message_state; the text receipt's stat:).
const FINAL_STAT: Record<string, Receipt['outcome']> = {
  DELIVRD: 'delivered', UNDELIV: 'failed', REJECTD: 'failed', EXPIRED: 'failed', DELETED: 'failed', UNKNOWN: 'failed',
};
const FINAL_STATE: Record<number, Receipt['outcome']> = { 2: 'delivered', 3: 'failed', 4: 'failed', 5: 'failed', 7: 'failed', 8: 'failed' };

// Receipts are not urgent: written in batches of up to this long, which also lets the dispatcher
// record the sends first (a receipt can come back within a millisecond of its submit_sm_resp).
const RECEIPT_FLUSH_MS = 250;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener('abort', abort, { once: true });
  });

function text(field: unknown): string {
  if (typeof field === 'string') return field;
  if (field && typeof field === 'object' && 'message' in field) {
    const message = (field as { message: unknown }).message;
    return typeof message === 'string' ? message : Buffer.isBuffer(message) ? message.toString('latin1') : '';
  }
  return Buffer.isBuffer(field) ? field.toString('latin1') : '';
}

/** A deliver_sm receipt: TLVs when the SMSC sends them, else the Appendix B text ("id:… stat:DELIVRD err:000"). */
export function parseDeliveryReceipt(pdu: Pdu): Omit<Receipt, 'channel'> | undefined {
  const body = text(pdu.short_message) || text(pdu.message_payload);
  const id = (typeof pdu.receipted_message_id === 'string' && pdu.receipted_message_id) || /\bid:(\S+)/i.exec(body)?.[1];
  if (!id) return undefined;
  const stat = /\bstat:(\w+)/i.exec(body)?.[1]?.toUpperCase();
  const outcome = typeof pdu.message_state === 'number' ? FINAL_STATE[pdu.message_state] : stat ? FINAL_STAT[stat] : undefined;
  if (!outcome) return undefined;
  const err = /\berr:(\w+)/i.exec(body)?.[1];
  return { providerMessageId: id, outcome, error: outcome === 'failed' ? `smpp ${stat ?? `state ${pdu.message_state}`}${err ? ` err:${err}` : ''}` : undefined };
}

export class SmppTransport implements ChannelTransport {
  readonly name = 'smpp';
  private session?: Session;
  private bound = false;
  private waiters: Array<() => void> = [];
  private closed = false;
  private reconnectFailures = 0;
  private reconnectTimer?: NodeJS.Timeout;
  /** submit_sm in flight on the current session: rejected if it is lost before they are answered. */
  private pending = new Set<(err: Error) => void>();
  private receipts: Receipt[] = [];
  private receiptTimer?: NodeJS.Timeout;

  constructor(private readonly options: SmppOptions) {
    this.connect();
  }

  /** True while a bind is up (tests and /_health-like probes). */
  get isBound() {
    return this.bound;
  }

  private connect() {
    if (this.closed) return;
    const session = (require('smpp') as typeof import('smpp')).connect({ url: this.options.url, auto_enquire_link_period: this.options.enquireLinkMs ?? 30_000 });
    this.session = session;
    session.on('connect', () => {
      session.bind_transceiver({ system_id: this.options.systemId, password: this.options.password, system_type: this.options.systemType ?? '' }, (pdu) => {
        if (pdu.command_status !== 0) {
          this.options.log.error({ status: pdu.command_status }, 'smpp bind refused');
          session.destroy();
          return;
        }
        this.bound = true;
        this.reconnectFailures = 0;
        this.options.log.info({ url: this.options.url.replace(/\/\/.*@/, '//***@') }, 'smpp bound');
        for (const wake of this.waiters.splice(0)) wake();
      });
    });
    session.on('deliver_sm', (pdu: Pdu) => this.onDeliver(session, pdu));
    session.on('enquire_link', (pdu: Pdu) => session.send(pdu.response()));
    session.on('unbind', (pdu: Pdu) => {
      session.send(pdu.response());
      session.close();
    });
    session.on('error', (err: Error) => this.options.log.warn({ err: err.message }, 'smpp session error'));
    session.on('close', () => {
      if (this.session !== session) return;
      this.bound = false;
      this.session = undefined;
      const lost = new TransportError('smpp: session lost before the SMSC answered', false);
      for (const reject of this.pending) reject(lost);
      this.pending.clear();
      if (this.closed) return;
      const delay = Math.min(30_000, (this.options.reconnectBaseMs ?? 500) * 2 ** this.reconnectFailures++);
      this.options.log.warn({ retry_in_ms: delay }, 'smpp bind lost; reconnecting');
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
  }

  private onDeliver(session: Session, pdu: Pdu) {
    session.send(pdu.response());
    // esm_class bits 2-5: 0x04 SMSC delivery receipt, 0x08/0x10/0x20 other acknowledgements.
    if ((pdu.esm_class & 0x3c) !== 0) {
      const receipt = parseDeliveryReceipt(pdu);
      if (receipt) this.queueReceipt({ channel: 'sms', ...receipt });
      return;
    }
    const from = `+${String(pdu.source_addr ?? '').replace(/^\+/, '')}`;
    const inbound = { from, to: String(pdu.destination_addr ?? ''), text: text(pdu.short_message) || text(pdu.message_payload) };
    this.options.onInbound?.(inbound).catch((err) => this.options.log.error({ err: (err as Error).message, from: maskPhone(from) }, 'smpp inbound message not recorded'));
  }

  /** Receipts are written in batches (a busy SMSC sends thousands a second). */
  private queueReceipt(receipt: Receipt) {
    this.receipts.push(receipt);
    this.receiptTimer ??= setTimeout(() => void this.flushReceipts(), RECEIPT_FLUSH_MS);
  }

  private async flushReceipts(attempt = 0): Promise<void> {
    this.receiptTimer = undefined;
    const batch = this.receipts.splice(0);
    if (!batch.length) return;
    try {
      await this.options.onReceipts(batch);
    } catch (err) {
      this.options.log.error({ err: (err as Error).message, count: batch.length }, 'smpp receipts not recorded; retrying');
      if (attempt < 5) setTimeout(() => {
        this.receipts.unshift(...batch);
        void this.flushReceipts(attempt + 1);
      }, 1000 * 2 ** attempt);
    }
  }

  private untilBound(signal?: AbortSignal): Promise<void> {
    if (this.bound) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const abort = () => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        reject(new TransportError('smpp: not bound (SMSC unreachable) before the send deadline', false));
      };
      const wake = () => {
        signal?.removeEventListener('abort', abort);
        resolve();
      };
      if (signal?.aborted) return abort();
      signal?.addEventListener('abort', abort, { once: true });
      this.waiters.push(wake);
    });
  }

  private submitOnce(fields: Record<string, unknown>): Promise<Pdu> {
    const session = this.session;
    if (!session || !this.bound) return Promise.reject(new TransportError('smpp: not bound', false));
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      this.pending.add(fail);
      const written = session.submit_sm(fields, (pdu) => {
        this.pending.delete(fail);
        resolve(pdu);
      });
      if (!written) {
        this.pending.delete(fail);
        reject(new TransportError('smpp: session not writable', false));
      }
    });
  }

  async send(message: ChannelSend, options: { signal?: AbortSignal } = {}): Promise<{ providerMessageId: string }> {
    const { body, senderId, segments } = message.content;
    if (!body || !senderId) throw new TransportError('smpp: message without body or sender id', true);
    const alphanumeric = /[A-Za-z]/.test(senderId);
    const fields: Record<string, unknown> = {
      source_addr: senderId.replace(/^\+/, ''),
      source_addr_ton: alphanumeric ? 5 : 1,
      source_addr_npi: alphanumeric ? 0 : 1,
      destination_addr: message.recipient.replace(/^\+/, ''),
      dest_addr_ton: 1,
      dest_addr_npi: 1,
      registered_delivery: 1,
      // Longer than one segment: the whole text in message_payload; the SMSC splits it.
      ...((segments ?? 1) > 1 ? { message_payload: body } : { short_message: body }),
    };
    const retries = this.options.throttleRetries ?? 5;
    for (let attempt = 0; ; attempt++) {
      await this.untilBound(options.signal);
      const pdu = await this.submitOnce(fields);
      if (pdu.command_status === 0) return { providerMessageId: String(pdu.message_id) };
      const status = `0x${pdu.command_status.toString(16).padStart(2, '0')}`;
      if (THROTTLED.has(pdu.command_status) && attempt < retries) {
        try {
          await sleep((this.options.throttleBaseMs ?? 100) * 2 ** attempt, options.signal);
        } catch {
          throw new TransportError(`smpp: throttled (${status}) until the send deadline`, false);
        }
        continue;
      }
      throw new TransportError(`smpp: submit_sm refused with status ${status}`, PERMANENT.has(pdu.command_status));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    if (this.receiptTimer) {
      clearTimeout(this.receiptTimer);
      await this.flushReceipts();
    }
    const session = this.session;
    if (!session) return;
    await new Promise<void>((resolve) => {
      const done = () => resolve();
      const timer = setTimeout(() => session.destroy(done), 1000);
      if (!this.bound) return session.destroy(done);
      session.unbind({}, () => {
        clearTimeout(timer);
        session.close(done);
      });
    });
  }
}
