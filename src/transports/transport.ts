import type { ComposedMessage } from '../sending/compose.ts';

export interface SendResult {
  /** The provider's id for the message (SES MessageId, SMTP queue id, capture file name). */
  providerMessageId: string;
}

export interface Transport {
  readonly name: string;
  send(message: ComposedMessage): Promise<SendResult>;
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
