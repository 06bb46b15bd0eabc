import { TransportError } from '../../transports/transport.ts';
import type { WebhookHttpClient } from '../../webhooks/http-client.ts';
import type { ChannelSend, ChannelTransport, Receipt } from '../types.ts';

/**
 * An HTTP SMS provider in the shape of Twilio's Messages API: POST
 * {base}/2010-04-01/Accounts/{sid}/Messages.json (form-encoded To, From, Body, StatusCallback; HTTP
 * Basic auth) answering 201 {sid, status}. Through the engine's SSRF-guarded client. A 4xx is the
 * message's fault (permanent) except 429; 5xx and connection trouble are retried.
 */
export interface HttpSmsOptions {
  baseUrl: string;
  accountSid: string;
  authToken: string;
  /** Where the provider posts status updates (our /v1/webhooks/sms/provider), if set. */
  statusCallbackUrl?: string;
}

export class HttpSmsTransport implements ChannelTransport {
  readonly name = 'http-sms';
  constructor(
    private readonly options: HttpSmsOptions,
    private readonly client: WebhookHttpClient,
  ) {}

  async send(message: ChannelSend): Promise<{ providerMessageId: string }> {
    const { body, senderId } = message.content;
    if (!body || !senderId) throw new TransportError('http-sms: message without body or sender id', true);
    const form = new URLSearchParams({ To: message.recipient, From: senderId, Body: body });
    if (this.options.statusCallbackUrl) form.set('StatusCallback', this.options.statusCallbackUrl);
    const url = `${this.options.baseUrl.replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(this.options.accountSid)}/Messages.json`;
    let answer;
    try {
      answer = await this.client.post(url, {
        authorization: `Basic ${Buffer.from(`${this.options.accountSid}:${this.options.authToken}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      }, form.toString());
    } catch (err) {
      throw new TransportError(`http-sms: ${(err as Error).message}`, false);
    }
    let json: { sid?: unknown; code?: unknown; message?: unknown } = {};
    try {
      json = JSON.parse(answer.excerpt);
    } catch {
      // Not JSON: judged by the status alone.
    }
    if (answer.status >= 200 && answer.status < 300 && typeof json.sid === 'string') return { providerMessageId: json.sid };
    const detail = `http-sms: ${answer.status}${json.code ? ` code ${json.code}` : ''}${typeof json.message === 'string' ? `: ${json.message.slice(0, 200)}` : ''}`;
    throw new TransportError(detail, answer.status >= 400 && answer.status < 500 && answer.status !== 429);
  }

  async close() {
    this.client.close();
  }
}

const STATUS_CALLBACK: Record<string, Receipt['outcome'] | undefined> = { delivered: 'delivered', undelivered: 'failed', failed: 'failed', read: 'read', sent: 'sent' };

/** A status callback's MessageStatus, as a receipt (queued/sending/sent confirm what we know). */
export function receiptFromStatusCallback(body: Record<string, unknown>): Receipt | undefined {
  const sid = body.MessageSid ?? body.SmsSid;
  const status = typeof body.MessageStatus === 'string' ? body.MessageStatus.toLowerCase() : undefined;
  if (typeof sid !== 'string' || !sid || !status) return undefined;
  const outcome = STATUS_CALLBACK[status];
  if (!outcome) return undefined;
  const code = body.ErrorCode ?? body.ErrorMessage;
  return { channel: 'sms', providerMessageId: sid, outcome, error: outcome === 'failed' ? `provider ${status}${code ? ` (${String(code).slice(0, 100)})` : ''}` : undefined };
}
