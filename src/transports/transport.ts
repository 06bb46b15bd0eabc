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
}

export interface Transport {
  readonly name: string;
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
