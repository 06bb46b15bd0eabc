import type { SESv2Client } from '@aws-sdk/client-sesv2';
import type { ComposedMessage } from '../sending/compose.ts';
import { TransportError, type SendOptions, type SendResult, type Transport } from './transport.ts';

export interface SesOptions {
  region: string;
  endpoint?: string;
  /** Per request: connect and response timeouts, derived from the dispatch lease (src/dispatch/dispatcher.ts). */
  timeoutMs?: number;
}

// SES answers that say "not now" rather than "never".
const TRANSIENT = new Set(['TooManyRequestsException', 'LimitExceededException', 'SendingPausedException', 'ThrottlingException', 'InternalFailure', 'ServiceUnavailable']);

/** Amazon SES v2 SendEmail with the raw MIME we composed (so our headers reach the recipient as built). */
export function sesTransport(options: SesOptions): Transport {
  // The AWS SDK is loaded with the first send, not at start: a process that sends through SMTP never
  // carries it (about 6 MB of resident memory, docs/operations.md#memory).
  let sdk: Promise<{ client: SESv2Client; SendEmailCommand: typeof import('@aws-sdk/client-sesv2').SendEmailCommand }> | undefined;
  const load = () =>
    (sdk ??= import('@aws-sdk/client-sesv2').then(({ SESv2Client, SendEmailCommand }) => ({
      // The SDK's own retries cover blips; our backoff handles anything longer.
      client: new SESv2Client({
        region: options.region,
        endpoint: options.endpoint,
        maxAttempts: 2,
        // requestTimeout only warns unless told to throw; the deadline signal bounds the SDK's retry too.
        ...(options.timeoutMs
          ? { requestHandler: { connectionTimeout: options.timeoutMs, requestTimeout: options.timeoutMs, socketTimeout: options.timeoutMs, throwOnRequestTimeout: true } }
          : {}),
      }),
      SendEmailCommand,
    })));
  return {
    name: 'ses',
    async send(message: ComposedMessage, sendOptions: SendOptions = {}): Promise<SendResult> {
      try {
        if (sendOptions.signal?.aborted) throw new TransportError('send deadline passed before the send started', false);
        const { client, SendEmailCommand } = await load();
        const out = await client.send(
          new SendEmailCommand({
            FromEmailAddress: message.from,
            Destination: { ToAddresses: [message.to] },
            Content: { Raw: { Data: message.raw } },
          }),
          // The lease's deadline aborts the request (and the SDK's own retry) in flight.
          { abortSignal: sendOptions.signal },
        );
        if (!out.MessageId) throw new TransportError('SES returned no MessageId', false);
        return { providerMessageId: out.MessageId };
      } catch (err) {
        if (err instanceof TransportError) throw err;
        const e = err as Error & { $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
        const status = e.$metadata?.httpStatusCode;
        const transient = TRANSIENT.has(e.name) || Boolean(e.$retryable) || status === undefined || status >= 500 || status === 429;
        throw new TransportError(`${e.name}: ${e.message}`.slice(0, 500), !transient);
      }
    },
    async close() {
      if (sdk) (await sdk).client.destroy();
    },
  };
}
