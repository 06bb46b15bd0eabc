import type { ComposedMessage } from '../sending/compose.ts';

export interface SendResult {
  /** The provider's id for the message (SES MessageId, the SMTP Message-ID we sent, capture file name). */
  providerMessageId: string;
}

export interface SendOptions {
  /**
   * Aborted when the send must end: the dispatcher's lease on the message is about to run out, and
   * past it another worker may send the message too. A transport stops the send (closes its
   * connection, aborts its request) and throws a transient TransportError.
   */
  signal?: AbortSignal;
  /**
   * The server must not take responsibility for the message (SMTP: the end of DATA; an API: the
   * call) before this resolves: the dispatcher's lane passes its previous send's outcome write, so
   * a crash can repeat at most one confirmed send per lane while the next send's dialogue and bytes
   * already overlap that write. Given only to transports that declare `defersAcceptance`; for
   * the others the dispatcher awaits it before calling send.
   */
  acceptAfter?: Promise<void>;
}

export interface Transport {
  readonly name: string;
  /** True when send() honours `acceptAfter` itself (it overlaps its own work with the wait). */
  readonly defersAcceptance?: boolean;
  send(message: ComposedMessage, options?: SendOptions): Promise<SendResult>;
  close(): Promise<void>;
}

/**
 * A send that did not go through. `permanent` failures (SMTP 5xx, a rejected message) are not
 * retried; everything else (4xx, connection trouble, throttling) is, with backoff.
 */
export class TransportError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}
